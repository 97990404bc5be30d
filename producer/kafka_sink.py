"""Asynchronous, batched Kafka publishing with acks=all; never waits per message."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from producer.routing import KafkaRecord

log = logging.getLogger(__name__)


class SinkUnavailableError(RuntimeError):
    """The broker could not be reached; the message names the address and what to do."""


@dataclass
class SinkStats:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None


class KafkaSink:
    def __init__(self, bootstrap_servers: str, linger_ms: int = 20, batch_size: int = 512 * 1024, **extra):
        from kafka import KafkaProducer
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError

        self.bootstrap_servers = bootstrap_servers
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers,
                acks="all",
                retries=2_147_483_647,
                linger_ms=linger_ms,
                batch_size=batch_size,
                max_in_flight_requests_per_connection=5,
                enable_idempotence=True,
                client_id="crypto-producer",
                **extra,
            )
        except (KafkaConnectionError, KafkaTimeoutError):
            raise SinkUnavailableError(
                f"Kafka broker not reachable at {bootstrap_servers}: start it with `crypto-pipeline kafka up` "
                f"(or set CRYPTO_KAFKA_BOOTSTRAP)"
            ) from None
        self.stats = SinkStats()
        self._lock = threading.Lock()

    def _on_success(self, _metadata) -> None:
        with self._lock:
            self.stats.acked += 1

    def _on_error(self, exc) -> None:
        with self._lock:
            self.stats.failed += 1
            self.stats.last_error = repr(exc)
        log.error("Kafka send failed: %r", exc)

    def send(self, record: KafkaRecord) -> None:
        future = self._producer.send(
            record.topic,
            key=record.key,
            value=record.value,
            timestamp_ms=record.timestamp_ms,
            headers=list(record.headers),
        )
        future.add_callback(self._on_success)
        future.add_errback(self._on_error)
        self.stats.sent += 1
        self.stats.by_topic[record.topic] = self.stats.by_topic.get(record.topic, 0) + 1

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        self._producer.flush(timeout=timeout_s)
        self._producer.close(timeout=timeout_s)
