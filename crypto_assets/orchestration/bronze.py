"""Bronze assets: the raw Kafka records of one UTC ingest day, exactly once per offset.

The `compute` resource builds the day (locally on Spark, or as a Glue job run): one Iceberg commit
replacing the day's partition, whose snapshot id the materialization names; the products seen join
the dynamic product partitions.
"""


from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    asset,
)

from crypto_assets.contracts.names import BRONZE_TABLE, KINDS, bronze_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.kafka_topics import OWNER, topic_asset_key
from crypto_assets.orchestration.partitions import PRODUCTS, ingest_date_partitions
from crypto_assets.orchestration.resources.compute import ComputeResource, asset_kinds
from crypto_assets.orchestration.resources.lake import LakeResource


def reported_products(result: MaterializeResult) -> list[str]:
    """The products a Bronze day saw, from the metadata it reported (`bronze_report`'s `products`)."""
    entry = (result.metadata or {}).get("products")
    return list(entry.value) if entry is not None else []


def register_products(instance, products: list[str]) -> list[str]:
    """Adds products seen in Bronze to the dynamic product partitions of Silver and Gold."""
    new = [p for p in products if not instance.has_dynamic_partition(PRODUCTS.name, p)]
    if new:
        instance.add_dynamic_partitions(PRODUCTS.name, new)
    return new


def build_bronze_asset(kind: str, settings: Settings) -> AssetsDefinition:
    table = BRONZE_TABLE[kind]
    rules = SilverRules.from_settings(settings)

    @asset(
        name=bronze_asset(kind),
        description=(
            f"Raw `{settings.trades_topic if kind == 'trades' else settings.ticker_topic}` records of one UTC "
            f"ingest day, one row per Kafka offset: topic, partition, offset, Kafka timestamp, raw value, "
            f"ingest headers and the parsed envelope. Unparseable records are kept and flagged "
            f"(`is_malformed`, `malformed_reason`). The `ingest_date` partition of the Iceberg table `bronze.{table}`, "
            f"replaced in one commit."
        ),
        partitions_def=ingest_date_partitions(settings),
        group_name="bronze",
        kinds=asset_kinds(settings, "spark", "kafka", "iceberg"),
        owners=[OWNER],
        deps=[topic_asset_key(kind)],
        tags={"layer": "bronze"},
    )
    def _bronze(
        context: AssetExecutionContext, compute: ComputeResource, lake: LakeResource,
    ) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        result = compute.bronze_day(context, kind, day, rules)
        register_products(context.instance, reported_products(result))
        return result

    return _bronze


def bronze_assets(settings: Settings) -> list[AssetsDefinition]:
    return [build_bronze_asset(kind, settings) for kind in KINDS]
