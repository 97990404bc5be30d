"""Kafka access without Dagster: reachability checks with clear errors, and offset windows by time.

Bronze reads a day of Kafka records by offsets: the offsets whose timestamps fall in the day,
looked up per partition with the broker's time index and widened by the allowed timestamp
skew; Spark then filters the records exactly by timestamp. The Dagster `KafkaResource` and
the Glue Bronze batch job (`KafkaClient`) share these operations through `KafkaAccess`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

# Every Spark read of a topic (batch Bronze, the local stream, the Glue stream) uses these: the
# record headers (source, connection id), and a read that meets offsets already deleted by
# retention (or lost by the broker) fails with Spark's data-loss error instead of skipping them.
SPARK_READ_OPTIONS = {"includeHeaders": "true", "failOnDataLoss": "true"}


class KafkaUnavailableError(RuntimeError):
    """The broker cannot be reached or a topic is missing; the message says what to do."""


@dataclass(frozen=True)
class OffsetWindow:
    topic: str
    start: dict[int, int]  # partition -> first offset to read
    end: dict[int, int]  # partition -> offset after the last one to read
    earliest: dict[int, int]  # partition -> earliest offset the broker still holds
    latest: dict[int, int]  # partition -> next offset to be written

    @property
    def record_count(self) -> int:
        return sum(self.end[p] - self.start[p] for p in self.start)

    def spark_options(self) -> dict[str, str]:
        return {
            "subscribe": self.topic,
            "startingOffsets": json.dumps({self.topic: {str(p): o for p, o in sorted(self.start.items())}}),
            "endingOffsets": json.dumps({self.topic: {str(p): o for p, o in sorted(self.end.items())}}),
        }


def _to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


class KafkaAccess:
    """Operations on the Kafka cluster. Subclasses provide the connection fields below."""

    bootstrap_servers: str
    trades_topic: str
    ticker_topic: str
    timestamp_skew_minutes: int
    connect_timeout_ms: int
    security_protocol: str
    sasl_mechanism: str

    def sasl_credentials(self) -> tuple[str, str] | None:
        """SASL user name and password; None reads them from the environment (see `kafka_security`)."""
        return None

    def topic_for(self, kind: str) -> str:
        return {"trades": self.trades_topic, "ticker": self.ticker_topic}[kind]

    def spark_options(self) -> dict[str, str]:
        """Options for Spark's Kafka source: the connection (with TLS/SASL options for a managed cluster)
        and `SPARK_READ_OPTIONS`; the caller adds what to read (topic, offsets)."""
        from crypto_assets.contracts.kafka_security import spark_kafka_options

        return {
            **SPARK_READ_OPTIONS,
            "kafka.bootstrap.servers": self.bootstrap_servers,
            **spark_kafka_options(self.security_protocol, self.sasl_mechanism, credentials=self.sasl_credentials()),
        }

    def _unreachable(self) -> KafkaUnavailableError:
        return KafkaUnavailableError(
            f"Kafka broker not reachable at {self.bootstrap_servers}: start it with "
            f"`crypto-pipeline kafka up` (or point CRYPTO_KAFKA_BOOTSTRAP at a running broker)"
        )

    def _consumer(self):
        from kafka import KafkaConsumer
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError

        from crypto_assets.contracts.kafka_security import kafka_python_config

        try:
            return KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                enable_auto_commit=False,
                client_id="crypto-assets",
                request_timeout_ms=max(self.connect_timeout_ms, 5000) + 1000,
                bootstrap_timeout_ms=self.connect_timeout_ms,
                **kafka_python_config(self.security_protocol, self.sasl_mechanism,
                                       credentials=self.sasl_credentials()),
            )
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            log.debug("kafka connect failed: %r", exc)
            raise self._unreachable() from None

    def _missing_topic(self, topic: str) -> KafkaUnavailableError:
        return KafkaUnavailableError(
            f"Kafka topic {topic!r} does not exist on {self.bootstrap_servers}: "
            f"create it with `crypto-pipeline kafka up` (it creates the project's topics)"
        )

    def require_topics(self, topics: list[str]) -> None:
        """Fails with one line if the broker is unreachable or a topic is missing."""
        from kafka.errors import KafkaError

        consumer = self._consumer()
        try:
            for topic in topics:
                if not consumer.partitions_for_topic(topic):
                    raise self._missing_topic(topic)
        except KafkaError as exc:
            log.debug("kafka metadata lookup failed: %r", exc)
            raise self._unreachable() from None
        finally:
            consumer.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Next offset to be written, per partition of the topic."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        consumer = self._consumer()
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise self._missing_topic(topic)
            return {tp.partition: o for tp, o in consumer.end_offsets([TopicPartition(topic, p) for p in partitions]).items()}
        except KafkaError as exc:
            log.debug("kafka offset lookup failed: %r", exc)
            raise self._unreachable() from None
        finally:
            consumer.close()

    def offset_window(self, topic: str, start: datetime, end: datetime) -> OffsetWindow:
        """Offsets per partition covering records with timestamps in [start, end) (widened by the skew)."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError

        consumer = self._consumer()
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise self._missing_topic(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            earliest = consumer.beginning_offsets(tps)
            latest = consumer.end_offsets(tps)
            skew = timedelta(minutes=self.timestamp_skew_minutes)
            lo = consumer.offsets_for_times({tp: max(0, _to_ms(start - skew)) for tp in tps})
            hi = consumer.offsets_for_times({tp: _to_ms(end + skew) for tp in tps})
        except KafkaError as exc:
            log.debug("kafka offset lookup failed: %r", exc)
            raise self._unreachable() from None
        finally:
            consumer.close()

        def pick(found, tp):
            return found[tp].offset if found.get(tp) is not None else latest[tp]

        return OffsetWindow(
            topic=topic,
            start={tp.partition: pick(lo, tp) for tp in tps},
            end={tp.partition: pick(hi, tp) for tp in tps},
            earliest={tp.partition: earliest[tp] for tp in tps},
            latest={tp.partition: latest[tp] for tp in tps},
        )


@dataclass
class KafkaClient(KafkaAccess):
    """Kafka access where Dagster is not installed (the Glue Bronze batch job); credentials, when given,
    come from Secrets Manager instead of the environment."""

    bootstrap_servers: str
    trades_topic: str = "crypto.trades.raw"
    ticker_topic: str = "crypto.ticker.raw"
    timestamp_skew_minutes: int = 60
    connect_timeout_ms: int = 8000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    credentials: tuple[str, str] | None = None

    def sasl_credentials(self) -> tuple[str, str] | None:
        return self.credentials
