"""Offline sources into Kafka: a seeded synthetic market, or a replayed NDJSON recording.

`producer/replay.py` reads a recording (its line format, and what becomes of a line without a
usable time). Replay keeps each frame's ingest time as the Kafka timestamp, so a replayed
session lands in the same Bronze partitions as the live run did. Both sources go through the
same pipeline as the live feed (routing, gap counting, bounded buffer), with the sink waiting
for room instead of dropping: an offline source can always slow down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from crypto_assets.contracts.settings import Settings
from producer.kafka_sink import KafkaSink
from producer.pipeline import FeedPipeline
from producer.replay import Entry, datetime_to_ms, parse_rfc3339, read_entries, rfc3339_to_ms

__all__ = ["PublishSummary", "TimedFrame", "datetime_to_ms", "parse_rfc3339", "publish_entries", "publish_frames",
           "read_recording", "rfc3339_to_ms", "run_offline_source", "synthetic_frames"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class TimedFrame:
    received_at: datetime
    text: str | bytes
    connection_id: str = ""
    problem: str | None = None  # why the line had no usable time (replay); the frame's dead-letter reason


@dataclass
class PublishSummary:
    source: str
    frames: int = 0
    records: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    deadletters: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    lost: int = 0
    seconds: float = 0.0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    interrupted: bool = False
    untimed: int = 0
    pipeline: FeedPipeline | None = field(default=None, repr=False)

    def __str__(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        span = f"{self.first_ts:%Y-%m-%dT%H:%M:%SZ} .. {self.last_ts:%Y-%m-%dT%H:%M:%SZ}" if self.first_ts else "-"
        return (
            f"{self.source}: {self.frames} frames -> {self.records} Kafka records in {self.seconds:.1f} s "
            f"({rate:,.0f} frames/s); kinds {self.by_kind}; dead letters {self.deadletters or 0}; "
            f"failed sends {self.failed}; lost {self.lost}; ingest times {span}"
            f"{f'; untimed lines {self.untimed}' if self.untimed or self.source == 'replay' else ''}"
            f"{'; interrupted' if self.interrupted else ''}"
        )


def read_recording(path: str | Path) -> Iterator[TimedFrame]:
    for ts_ms, frame, connection_id, problem in read_entries(path):
        yield TimedFrame(_EPOCH + ts_ms * _MS, frame, connection_id, problem)


def _timed_entries(frames: Iterable[TimedFrame], source: str) -> Iterator[Entry]:
    for frame in frames:
        yield datetime_to_ms(frame.received_at), frame.text, frame.connection_id or source, frame.problem


def publish_frames(
    frames: Iterable[TimedFrame], settings: Settings, source: str, speed: float = 0.0, sink: KafkaSink | None = None,
    stop: threading.Event | None = None, status_interval_s: float = 0.0,
) -> PublishSummary:
    """Routes and sends every frame; `speed` > 0 paces sends to the recorded times divided by speed."""
    return publish_entries(_timed_entries(frames, source), settings, source, speed, sink, stop, status_interval_s)


# An offline source waits for room rather than drop: a small window keeps memory flat and is
# still hundreds of times what linger_ms needs to fill batches.
# linger_ms: latency does not matter offline; fuller batches cost the client and the broker less
# per record (measured: -10% CPU per message at 100 ms against 20 ms).
_OFFLINE_SINK = {"max_buffered_records": 20_000, "max_buffered_bytes": 32 * 1024**2, "linger_ms": 100}


def auto_workers() -> int:
    """Kafka sender processes for an offline source: two when there is a second core to share.

    Measured on 2 cores: the main process (read, route, count gaps) needs ~20 us per message and
    kafka-python ~30 us per record, so two senders keep the reader busy; more only add contention.
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 0


def _offline_sink(settings: Settings, workers: int) -> KafkaSink:
    from crypto_assets.contracts.kafka_security import producer_config

    topics = (settings.trades_topic, settings.ticker_topic, settings.deadletter_topic)
    security = producer_config(settings)
    if workers > 0:
        from producer.parallel_sink import ParallelKafkaSink

        return ParallelKafkaSink(settings.kafka_bootstrap, workers, topics=topics, **_OFFLINE_SINK, **security)
    return KafkaSink(settings.kafka_bootstrap, topics=topics, when_full="block", **_OFFLINE_SINK, **security)


def publish_entries(
    entries: Iterable[Entry], settings: Settings, source: str, speed: float = 0.0,
    sink: KafkaSink | None = None, stop: threading.Event | None = None, status_interval_s: float = 0.0,
    metrics_port: int | None = None, workers: int = 0,
) -> PublishSummary:
    """Publishes (ingest ms, frame, connection id, problem) entries; `workers` > 0 sends from that many processes.

    An entry with a `problem` (a replayed line without a usable time) is dead-lettered with it as the reason.
    """
    own_sink = sink is None
    if sink is None:
        sink = _offline_sink(settings, workers)
    pipeline = FeedPipeline.from_settings(settings, sink, source)
    summary = PublishSummary(source=source, pipeline=pipeline)
    metrics = None
    if metrics_port is not None:
        from producer.metrics import MetricsServer

        metrics = MetricsServer(metrics_port, pipeline.metric_families).start()
    started = time.monotonic()
    next_status = started + status_interval_s if status_interval_s > 0 else float("inf")
    next_poll = started + 1.0
    first_ms = None
    handle = pipeline.handle
    closed = False
    try:
        for i, (ts_ms, frame, connection_id, problem) in enumerate(entries):
            if speed > 0:
                first_ms = ts_ms if first_ms is None else first_ms
                lag = (ts_ms - first_ms) / 1000 / speed - (time.monotonic() - started)
                if lag > 0:
                    if stop is not None:
                        if stop.wait(lag):
                            summary.interrupted = True
                            break
                    else:
                        time.sleep(lag)
            handle(frame, ts_ms * 1_000_000, connection_id, None, problem)
            if not i & 1023:
                if stop is not None and stop.is_set():
                    summary.interrupted = True
                    break
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + 1.0
                    pipeline.poll()
                    if now >= next_status:
                        next_status = now + status_interval_s
                        log.info(pipeline.status_line())
        if own_sink:
            sink.close()
            closed = True
        else:
            sink.flush()
    finally:
        pipeline.flush_log()
        if own_sink and not closed:
            sink.close(timeout_s=5)
        if metrics is not None:
            metrics.stop()
    _fill(summary, pipeline, sink)
    summary.seconds = time.monotonic() - started
    return summary


def _fill(summary: PublishSummary, pipeline: FeedPipeline, sink: KafkaSink) -> None:
    summary.frames = pipeline.frames
    summary.records = pipeline.records
    summary.by_kind = dict(pipeline.by_kind)
    summary.deadletters = dict(pipeline.deadletters)
    summary.untimed = pipeline.untimed
    summary.failed = sink.stats.failed
    summary.lost = sink.stats.lost
    if pipeline.first_ts_ms is not None:
        summary.first_ts = _EPOCH + pipeline.first_ts_ms * _MS
        summary.last_ts = _EPOCH + pipeline.last_ts_ms * _MS


def synthetic_frames(settings: Settings, seed: int, duration_s: float, start: datetime) -> Iterator[TimedFrame]:
    from producer.synthetic import SyntheticConfig, generate_frames

    config = SyntheticConfig(products=tuple(settings.products), seed=seed, start=start, duration_s=duration_s)
    connection = f"synthetic-{seed}-{start:%Y%m%dT%H%M%S}"
    for frame in generate_frames(config):
        yield TimedFrame(frame.received_at, frame.text, connection)


def run_offline_source(
    settings: Settings, source: str, path: str | None, seed: int, duration_s: float, speed: float,
    stop: threading.Event | None = None, status_interval_s: float = 0.0, metrics_port: int | None = None,
    workers: int | None = None,
) -> PublishSummary:
    """`workers` None = `auto_workers()`; 0 = send from this process."""
    workers = auto_workers() if workers is None else workers
    if source == "replay":
        if not path:
            raise FileNotFoundError("replay needs a recording: crypto-pipeline produce --source replay FILE")
        entries = read_entries(path)  # OSError with a one-line message if the file cannot be read
    else:
        now = datetime.now(timezone.utc)
        # Synthetic data carries current times: as fast as possible, the session ends now; paced, it starts now.
        start = now if speed > 0 else now - timedelta(seconds=duration_s)
        entries = _timed_entries(synthetic_frames(settings, seed, duration_s, start), source)
    return publish_entries(entries, settings, source, speed=speed, stop=stop,
                           status_interval_s=status_interval_s, metrics_port=metrics_port, workers=workers)
