"""Offline sources into Kafka: a seeded synthetic market, or a replayed NDJSON recording.

A recording line is either `{"received_at": RFC3339, "connection_id": str, "frame": str}`
(what `--record` writes) or a bare Coinbase frame, whose envelope timestamp then stands in
for the ingest time. Replay keeps each frame's ingest time as the Kafka timestamp, so a
replayed session lands in the same Bronze partitions as the live run did.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from crypto_assets.settings import Settings
from producer.kafka_sink import KafkaSink
from producer.routing import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedFrame:
    received_at: datetime
    text: str
    connection_id: str = ""


@dataclass
class PublishSummary:
    source: str
    frames: int = 0
    records: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    deadletters: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    seconds: float = 0.0
    first_ts: datetime | None = None
    last_ts: datetime | None = None

    def __str__(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        span = f"{self.first_ts:%Y-%m-%dT%H:%M:%SZ} .. {self.last_ts:%Y-%m-%dT%H:%M:%SZ}" if self.first_ts else "-"
        return (
            f"{self.source}: {self.frames} frames -> {self.records} Kafka records in {self.seconds:.1f} s "
            f"({rate:,.0f} frames/s); kinds {self.by_kind}; dead letters {self.deadletters or 0}; "
            f"failed sends {self.failed}; ingest times {span}"
        )


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    text = text.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, tail = text.partition(".")
    if sep:
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def read_recording(path: str | Path) -> Iterator[TimedFrame]:
    session = f"replay-{uuid.uuid5(uuid.NAMESPACE_URL, str(Path(path).resolve()))}"
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}:{n}: not a JSON line; expected a recorded frame") from None
            if isinstance(obj, dict) and "frame" in obj and "received_at" in obj:
                yield TimedFrame(parse_rfc3339(obj["received_at"]), obj["frame"], obj.get("connection_id") or session)
            elif isinstance(obj, dict) and isinstance(obj.get("timestamp"), str):
                yield TimedFrame(parse_rfc3339(obj["timestamp"]), line, session)
            else:
                raise ValueError(f"{path}:{n}: line has neither received_at+frame nor an envelope timestamp")


def publish_frames(
    frames: Iterable[TimedFrame], settings: Settings, source: str, speed: float = 0.0, sink: KafkaSink | None = None
) -> PublishSummary:
    """Routes and sends every frame; `speed` > 0 paces sends to the recorded times divided by speed."""
    router = Router(settings.trades_topic, settings.ticker_topic, settings.deadletter_topic)
    own_sink = sink is None
    sink = sink or KafkaSink(settings.kafka_bootstrap)
    summary = PublishSummary(source=source)
    started = time.monotonic()
    first = None
    try:
        for frame in frames:
            if speed > 0:
                first = first or frame.received_at
                due = (frame.received_at - first).total_seconds() / speed
                lag = due - (time.monotonic() - started)
                if lag > 0:
                    time.sleep(lag)
            ts_ms = int(frame.received_at.timestamp() * 1000)
            routed = router.route(frame.text, ts_ms, source, frame.connection_id or source)
            summary.frames += 1
            summary.by_kind[routed.kind] = summary.by_kind.get(routed.kind, 0) + 1
            if routed.kind == "deadletter":
                summary.deadletters[routed.reason] = summary.deadletters.get(routed.reason, 0) + 1
            for record in routed.records:
                sink.send(record)
                summary.records += 1
            summary.first_ts = summary.first_ts or frame.received_at
            summary.last_ts = frame.received_at
        sink.flush()
    finally:
        if own_sink:
            sink.close()
    summary.failed = sink.stats.failed
    summary.seconds = time.monotonic() - started
    return summary


def synthetic_frames(settings: Settings, seed: int, duration_s: float, start: datetime) -> Iterator[TimedFrame]:
    from producer.synthetic import SyntheticConfig, generate_frames

    config = SyntheticConfig(products=tuple(settings.products), seed=seed, start=start, duration_s=duration_s)
    connection = f"synthetic-{seed}-{start:%Y%m%dT%H%M%S}"
    for frame in generate_frames(config):
        yield TimedFrame(frame.received_at, frame.text, connection)


def run_offline_source(
    settings: Settings, source: str, path: str | None, seed: int, duration_s: float, speed: float
) -> PublishSummary:
    if source == "replay":
        if not path:
            raise FileNotFoundError("replay needs a recording: crypto-pipeline produce --source replay FILE")
        if not Path(path).exists():
            raise FileNotFoundError(f"recording {path} not found")
        return publish_frames(read_recording(path), settings, "replay", speed=speed)
    now = datetime.now(timezone.utc)
    # Synthetic data carries current times: as fast as possible, the session ends now; paced, it starts now.
    start = now if speed > 0 else now - timedelta(seconds=duration_s)
    return publish_frames(synthetic_frames(settings, seed, duration_s, start), settings, "synthetic", speed=speed)
