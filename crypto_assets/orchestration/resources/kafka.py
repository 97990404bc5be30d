"""The Kafka resource of the Dagster assets and sensors: the settings, with the operations of `KafkaAccess`."""

from __future__ import annotations

from dagster import ConfigurableResource

from crypto_assets.bronze.kafka_source import KafkaAccess, KafkaUnavailableError, OffsetWindow
from crypto_assets.contracts.settings import Settings

__all__ = ["KafkaResource", "KafkaUnavailableError", "OffsetWindow"]


class KafkaResource(ConfigurableResource, KafkaAccess):
    """Where Kafka is and which topics hold the market data. Every field but the client's connect timeout
    is a setting (`from_settings`), declared there only: the Glue Bronze jobs get these values as arguments."""

    bootstrap_servers: str
    trades_topic: str
    ticker_topic: str
    timestamp_skew_minutes: int
    security_protocol: str
    sasl_mechanism: str
    connect_timeout_ms: int = 8000

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaResource:
        return cls(
            bootstrap_servers=settings.kafka_bootstrap,
            trades_topic=settings.trades_topic,
            ticker_topic=settings.ticker_topic,
            timestamp_skew_minutes=settings.kafka_timestamp_skew_minutes,
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
        )
