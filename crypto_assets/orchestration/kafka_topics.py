"""The Kafka topics as external assets: the producer writes them, Dagster only shows them in lineage."""

from __future__ import annotations

from dagster import AssetKey, AssetSpec

from crypto_assets.contracts.settings import Settings

OWNER = "team:data-platform"


def topic_asset_key(kind: str) -> AssetKey:
    return AssetKey(["kafka", f"crypto_{kind}_raw"])


def kafka_topic_specs(settings: Settings) -> list[AssetSpec]:
    topics = {"trades": settings.trades_topic, "ticker": settings.ticker_topic}
    return [
        AssetSpec(
            key=topic_asset_key(kind),
            description=(
                f"Kafka topic `{topic}`: Coinbase Advanced Trade `{'market_trades' if kind == 'trades' else 'ticker'}` "
                f"messages, one record per message per product, key = product_id, timestamp = ingest time. "
                f"Written by the producer (`crypto-pipeline produce`)."
            ),
            group_name="kafka",
            kinds={"kafka"},
            owners=[OWNER],
            metadata={"topic": topic, "bootstrap": settings.kafka_bootstrap},
        )
        for kind, topic in topics.items()
    ]
