"""Asynchronous, batched Kafka publishing with acks=all, bounded buffering and an exact loss account.

`send` never waits for the broker: kafka-python batches records (linger_ms, batch_size) and
retries them until they are acknowledged. Records handed over but not yet acknowledged are
the buffer; while the broker is unreachable it grows. Its bound (records and bytes) decides
what happens next: `when_full="drop"` (live: never stall the WebSocket) refuses new records
and accounts for each one lost (count, topics, products, trade_id and sequence_num ranges,
ingest times); `when_full="block"` (offline sources) waits, so nothing is lost and memory
stays bounded.

This module owns `KafkaSink`: opening the client (one clear `SinkUnavailableError` when the
broker or a topic is missing), the buffer bound, sending, the delivery callbacks (run on
Kafka's sender thread), health logging and shutdown. The client's configuration is
`producer.kafka_client`; the counters and the loss ledger are `producer.sink_accounting`.
"""

from __future__ import annotations

import functools
import logging
import time

from producer.kafka_client import client_config
from producer.metrics import LatencyHistogram
from producer.routing import KafkaRecord
from producer.sink_accounting import LossLedger, SinkStats

log = logging.getLogger(__name__)


class SinkUnavailableError(RuntimeError):
    """The broker could not be reached; the message names the address and what to do."""


class KafkaSink:
    """Kafka client of the producer: acks=all, idempotent, retried until delivered, bounded buffer.

    `topics` are looked up at start, so a missing topic or an unreachable broker fails at once
    with one clear line, and `send` never waits for metadata later.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        *,
        max_buffered_records: int = 100_000,
        max_buffered_bytes: int = 64 * 1024**2,
        when_full: str = "block",
        topics: tuple[str, ...] | list[str] = (),
        track_latency: bool = False,
        keep_latency_samples: bool = False,
        stall_warning_s: float = 5.0,
        producer=None,
        **extra,
    ):
        from kafka import KafkaProducer
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError

        if when_full not in ("block", "drop"):
            raise ValueError(f"when_full must be 'block' or 'drop', not {when_full!r}")
        self.bootstrap_servers = bootstrap_servers
        self.max_buffered_records = max_buffered_records
        self.max_buffered_bytes = max_buffered_bytes
        self.when_full = when_full
        self.stall_warning_s = stall_warning_s
        config = client_config(bootstrap_servers, linger_ms, batch_size, **extra)
        try:
            # `producer` lets tests drive acknowledgements; otherwise a real client.
            self._producer = producer if producer is not None else KafkaProducer(**config)
            for topic in topics:  # fetch metadata now: send() must never wait for it later
                self._producer.partitions_for(topic)
        except (KafkaConnectionError, KafkaTimeoutError):
            client = getattr(self, "_producer", None)
            if client is not None:
                client.close(timeout=1)
                raise SinkUnavailableError(
                    f"Kafka at {bootstrap_servers} has no topic {topic!r} (or does not answer): create the "
                    f"topics with `crypto-pipeline kafka up`, or check CRYPTO_*_TOPIC"
                ) from None
            raise SinkUnavailableError(
                f"Kafka broker not reachable at {bootstrap_servers}: start it with `crypto-pipeline kafka up` "
                f"(or set CRYPTO_KAFKA_BOOTSTRAP)"
            ) from None
        self.stats = SinkStats()
        self.losses = LossLedger()
        self.latency = LatencyHistogram() if track_latency or keep_latency_samples else None
        self.latency_samples_ns: list[int] | None = [] if keep_latency_samples else None
        self._headers: dict[int, tuple[tuple, list]] = {}
        self._last_ack_mono = time.monotonic()
        self._stalled_since: float | None = None
        self._next_stall_log = 0.0
        self._closing = False
        self._on_ack_timed = self._on_ack_latency if self.latency is not None else None

    # ---- callbacks (Kafka's sender thread) ---------------------------------------------------

    def _on_ack(self, metadata) -> None:
        stats = self.stats
        stats.acked += 1
        stats.acked_bytes += metadata.serialized_value_size
        self._last_ack_mono = time.monotonic()

    def _on_ack_latency(self, t0_ns: int, metadata) -> None:
        stats = self.stats
        stats.acked += 1
        stats.acked_bytes += metadata.serialized_value_size
        now = time.monotonic_ns()
        self._last_ack_mono = now / 1e9
        self.latency.observe_ns(now - t0_ns)
        if self.latency_samples_ns is not None:
            self.latency_samples_ns.append(now - t0_ns)

    def _on_error(self, record: KafkaRecord, exc) -> None:
        stats = self.stats
        stats.failed += 1
        stats.failed_bytes += len(record.value)
        stats.last_error = repr(exc)
        reason = "not_delivered_at_exit" if self._closing else "kafka_error"
        if self.losses.add(record, reason):
            log.error("Kafka send failed (%s): %r; counting lost records until sends succeed again", reason, exc)

    # ---- sending (caller's thread) ---------------------------------------------------------

    def _header_list(self, headers: tuple) -> list:
        # kafka-python wants a list; the router reuses one tuple per connection.
        hit = self._headers.get(id(headers))
        if hit is not None and hit[0] is headers:
            return hit[1]
        if len(self._headers) > 256:
            self._headers.clear()
        as_list = list(headers)
        self._headers[id(headers)] = (headers, as_list)
        return as_list

    def _full(self, size: int) -> bool:
        stats = self.stats
        return (
            stats.sent - stats.acked - stats.failed >= self.max_buffered_records
            or stats.sent_bytes - stats.acked_bytes - stats.failed_bytes + size > self.max_buffered_bytes
        )

    def _wait_for_room(self, size: int) -> None:
        started = time.monotonic()
        warned = False
        while self._full(size):
            if self.stats.in_flight == 0:
                return  # one record larger than the byte bound: send it alone
            time.sleep(0.0005)
            if not warned and time.monotonic() - started > self.stall_warning_s:
                warned = True
                log.warning(
                    "waiting for Kafka at %s: %s records (%.1f MiB) not yet acknowledged (bound %s records / %.1f MiB)",
                    self.bootstrap_servers, f"{self.stats.in_flight:,}", self.stats.in_flight_bytes / 2**20,
                    f"{self.max_buffered_records:,}", self.max_buffered_bytes / 2**20,
                )

    def send(self, record: KafkaRecord, t0_ns: int | None = None) -> bool:
        """Hands one record to Kafka; False if it was refused (buffer full in drop mode, client error)."""
        stats = self.stats
        size = len(record.value)
        if self._full(size):
            if self.when_full == "block":
                self._wait_for_room(size)
            elif stats.in_flight:
                self._drop(record, "buffer_full")
                return False
        try:
            future = self._producer.send(
                record.topic,
                key=record.key,
                value=record.value,
                timestamp_ms=record.timestamp_ms,
                headers=self._header_list(record.headers),
            )
        except Exception as exc:  # noqa: BLE001 - a client-side refusal (record too large, closed producer, ...)
            stats.last_error = repr(exc)
            self._drop(record, "send_error", exc)
            return False
        if t0_ns is not None and self._on_ack_timed is not None:
            future.add_callback(self._on_ack_timed, t0_ns)
        else:
            future.add_callback(self._on_ack)
        future.add_errback(functools.partial(self._on_error, record))
        stats.sent += 1
        stats.sent_bytes += size
        by_topic = stats.by_topic
        by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
        return True

    def send_batch(self, batch) -> None:
        """`send` for many (topic, key, value, timestamp_ms, headers) tuples, with less per-record overhead.

        The sender processes of ParallelKafkaSink use it: no KafkaRecord is built unless one is lost.
        """
        producer_send = self._producer.send
        on_ack = self._on_ack
        on_error = self._on_error_item
        header_list = self._header_list
        partial = functools.partial
        stats = self.stats
        by_topic = stats.by_topic
        full = self._full
        for item in batch:
            topic, key, value, ts, headers = item
            size = len(value)
            if full(size):
                if self.when_full == "block":
                    self._wait_for_room(size)
                elif stats.in_flight:
                    self._drop(KafkaRecord(*item), "buffer_full")
                    continue
            try:
                future = producer_send(topic, key=key, value=value, timestamp_ms=ts, headers=header_list(headers))
            except Exception as exc:  # noqa: BLE001 - as in send()
                stats.last_error = repr(exc)
                self._drop(KafkaRecord(*item), "send_error", exc)
                continue
            future.add_callback(on_ack)
            future.add_errback(partial(on_error, item))
            stats.sent += 1
            stats.sent_bytes += size
            by_topic[topic] = by_topic.get(topic, 0) + 1

    def _on_error_item(self, item: tuple, exc) -> None:
        self._on_error(KafkaRecord(*item), exc)

    def _drop(self, record: KafkaRecord, reason: str, exc: Exception | None = None) -> None:
        self.stats.dropped += 1
        if self.losses.add(record, reason):
            if reason == "buffer_full":
                log.error(
                    "buffer full: %s records (%.1f MiB) wait for Kafka at %s (bound %s records / %.1f MiB); "
                    "dropping new records until Kafka accepts again - the loss is reported when it ends",
                    f"{self.stats.in_flight:,}", self.stats.in_flight_bytes / 2**20, self.bootstrap_servers,
                    f"{self.max_buffered_records:,}", self.max_buffered_bytes / 2**20,
                )
            else:
                log.error("Kafka client refused a record (%s): %r", reason, exc)

    # ---- health (call about once a second) -------------------------------------------------

    @property
    def stalled(self) -> bool:
        """True from the "has not acknowledged anything" warning until the "acknowledges again" one."""
        return self._stalled_since is not None

    def poll(self) -> None:
        """Logs buffering while the broker does not acknowledge, its end, and finished loss episodes."""
        stats = self.stats
        now = time.monotonic()
        in_flight = stats.in_flight
        silent_for = now - self._last_ack_mono
        if in_flight and silent_for >= self.stall_warning_s:
            if self._stalled_since is None:
                self._stalled_since = now - silent_for
                self._next_stall_log = now
            if now >= self._next_stall_log:
                self._next_stall_log = now + 10.0
                log.warning(
                    "Kafka at %s has not acknowledged anything for %.0f s: buffering %s records (%.1f MiB) "
                    "in memory, bound %s records / %.1f MiB; delivery resumes when the broker is back",
                    self.bootstrap_servers, silent_for, f"{in_flight:,}", stats.in_flight_bytes / 2**20,
                    f"{self.max_buffered_records:,}", self.max_buffered_bytes / 2**20,
                )
        elif self._stalled_since is not None and silent_for < self.stall_warning_s:
            log.warning(
                "Kafka at %s acknowledges again after %.0f s; %s records still buffered",
                self.bootstrap_servers, now - self._stalled_since, f"{in_flight:,}",
            )
            self._stalled_since = None
        # A loss episode ends once the buffer has room again (or at close).
        if not self._full(0) or self._closing:
            episode = self.losses.take_episode()
            if episode is not None:
                log.error(episode.describe())

    # ---- lifecycle -------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> bool:
        """Waits until every record is acknowledged; False if `timeout_s` passed first."""
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            return False
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        delivered = self.flush(timeout_s)
        self._closing = True
        if not delivered:
            log.error(
                "Kafka at %s did not acknowledge %s records within %.0f s of shutting down; they are lost",
                self.bootstrap_servers, f"{self.stats.in_flight:,}", timeout_s,
            )
        self._producer.close(timeout=0 if not delivered else timeout_s)
        self.poll()
