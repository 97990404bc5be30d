"""What a sink has done with the records handed to it: counts, bytes and an exact loss account.

:class:`SinkStats` counts records (and bytes) sent, acknowledged, failed and dropped, so the
records buffered (sent, not yet acknowledged) are a difference of counters. :class:`LossLedger`
keeps every lost record by reason and groups losses into episodes whose description says which
data is missing (topics, products, trade_id and sequence_num ranges, ingest times). Both sinks,
``producer.kafka_sink.KafkaSink`` and ``producer.parallel_sink.ParallelKafkaSink``, keep them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from producer.routing import KafkaRecord

__all__ = ["LossEpisode", "LossLedger", "SinkStats"]


@dataclass
class SinkStats:
    sent: int = 0  # handed to the Kafka client
    acked: int = 0  # acknowledged by the broker (acks=all)
    failed: int = 0  # rejected by Kafka after retries (or not delivered when closing)
    dropped: int = 0  # refused because the buffer was full (live) or the client raised
    by_topic: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None
    sent_bytes: int = 0
    acked_bytes: int = 0
    failed_bytes: int = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked - self.failed

    @property
    def in_flight_bytes(self) -> int:
        return self.sent_bytes - self.acked_bytes - self.failed_bytes

    @property
    def lost(self) -> int:
        return self.failed + self.dropped


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LossEpisode:
    """What was lost between two moments, precise enough to say which data is missing."""

    def __init__(self) -> None:
        self.count = 0
        self.by_reason: dict[str, int] = defaultdict(int)
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.per_key: dict[tuple[str, str], list] = {}  # (topic, key) -> [records, trades, min id, max id]
        self.seq: dict[str, list[int]] = {}  # connection_id -> [min, max]
        self.started = time.monotonic()

    def add(self, record: KafkaRecord, reason: str) -> None:
        self.count += 1
        self.by_reason[reason] += 1
        ts = record.timestamp_ms
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        key = record.key.decode(errors="replace") if record.key else "-"
        entry = self.per_key.setdefault((record.topic, key), [0, 0, None, None])
        entry[0] += 1
        try:  # loss is rare: parsing here costs nothing on the normal path
            msg = json.loads(record.value)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        seq = msg.get("sequence_num")
        conn = dict(record.headers).get("connection_id", b"").decode(errors="replace")
        if isinstance(seq, int):
            rng = self.seq.setdefault(conn, [seq, seq])
            rng[0], rng[1] = min(rng[0], seq), max(rng[1], seq)
        for event in msg.get("events") or ():
            for trade in (event.get("trades") or ()) if isinstance(event, dict) else ():
                try:
                    tid = int(trade["trade_id"])
                except (KeyError, TypeError, ValueError):
                    continue
                entry[1] += 1
                entry[2] = tid if entry[2] is None else min(entry[2], tid)
                entry[3] = tid if entry[3] is None else max(entry[3], tid)

    def describe(self) -> str:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(self.by_reason.items()))
        parts = [f"LOST {self.count:,} Kafka records ({reasons})"]
        if self.first_ts is not None:
            parts.append(f"ingest times {_fmt_ms(self.first_ts)} .. {_fmt_ms(self.last_ts)}")
        for (topic, key), (n, trades, lo, hi) in sorted(self.per_key.items()):
            text = f"{topic} {key}: {n:,} records"
            if trades:
                text += f", {trades:,} trades, trade_id {lo}..{hi}"
            parts.append(text)
        for conn, (lo, hi) in sorted(self.seq.items()):
            parts.append(f"sequence_num {lo}..{hi} on connection {conn}")
        return "; ".join(parts)


class LossLedger:
    """Every lost record, by reason, grouped into episodes that are reported when they end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_reason: dict[str, int] = defaultdict(int)
        self._episode: LossEpisode | None = None

    def add(self, record: KafkaRecord, reason: str) -> bool:
        """Returns True when this record starts a new episode."""
        with self._lock:
            self.by_reason[reason] += 1
            new = self._episode is None
            if new:
                self._episode = LossEpisode()
            self._episode.add(record, reason)
            return new

    def take_episode(self) -> LossEpisode | None:
        with self._lock:
            episode, self._episode = self._episode, None
            return episode

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

