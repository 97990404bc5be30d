"""Offline sources into Kafka: a seeded synthetic market, or a replayed NDJSON recording.

A recording line is either `{"received_at": RFC3339, "connection_id": str, "frame": str}`
(what `--record` writes; `"frame_encoding": "base64"` marks a frame that was not UTF-8) or a
bare Coinbase frame, whose envelope timestamp then stands in for the ingest time. Replay
keeps each frame's ingest time as the Kafka timestamp, so a replayed session lands in the
same Bronze partitions as the live run did. Both sources go through the same pipeline as
the live feed (routing, gap counting, bounded buffer), with the sink waiting for room
instead of dropping: an offline source can always slow down.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from json.decoder import scanstring
from pathlib import Path

from crypto_assets.settings import Settings
from producer.kafka_sink import KafkaSink
from producer.pipeline import FeedPipeline

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class TimedFrame:
    received_at: datetime
    text: str | bytes
    connection_id: str = ""


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
    pipeline: FeedPipeline | None = field(default=None, repr=False)

    def __str__(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        span = f"{self.first_ts:%Y-%m-%dT%H:%M:%SZ} .. {self.last_ts:%Y-%m-%dT%H:%M:%SZ}" if self.first_ts else "-"
        return (
            f"{self.source}: {self.frames} frames -> {self.records} Kafka records in {self.seconds:.1f} s "
            f"({rate:,.0f} frames/s); kinds {self.by_kind}; dead letters {self.deadletters or 0}; "
            f"failed sends {self.failed}; lost {self.lost}; ingest times {span}"
            f"{'; interrupted' if self.interrupted else ''}"
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


def datetime_to_ms(dt: datetime) -> int:
    """Exact epoch milliseconds (float timestamps can be one ms off)."""
    return (dt - _EPOCH) // _MS


_SECOND_CACHE: dict[str, int] = {}


def rfc3339_to_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 UTC time, exactly; fast for `...:SS[.fraction]Z`, the recorder's form."""
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and (len(text) == 20 or text[19] == "."):
        head = text[:19]
        sec = _SECOND_CACHE.get(head)
        if sec is None:
            try:
                sec = int(datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp())
            except ValueError:
                return datetime_to_ms(parse_rfc3339(text))
            if len(_SECOND_CACHE) > 4096:
                _SECOND_CACHE.clear()
            _SECOND_CACHE[head] = sec
        frac = text[20:-1]
        if frac and not frac.isdigit():
            return datetime_to_ms(parse_rfc3339(text))
        return sec * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)
    return datetime_to_ms(parse_rfc3339(text))


def _session_id(path: str | Path) -> str:
    return f"replay-{uuid.uuid5(uuid.NAMESPACE_URL, str(Path(path).resolve()))}"


_REC_HEAD = '{"received_at":"'
_REC_CONN = '","connection_id":"'
_REC_FRAME = '","frame":"'
_REC_TAILS = ("}\n", "}")


def _fast_line(line: str):
    """(received_at, connection_id, frame) of a line exactly as the recorder writes it, else None.

    Skips building a dict per line: the strings are decoded where they stand.
    """
    if not line.startswith(_REC_HEAD):
        return None
    try:
        received, i = scanstring(line, 16)
        if not line.startswith(_REC_CONN, i - 1):
            return None
        connection_id, i = scanstring(line, i + len(_REC_CONN) - 1)
        if not line.startswith(_REC_FRAME, i - 1):
            return None
        frame, i = scanstring(line, i + len(_REC_FRAME) - 1)
    except ValueError:
        return None
    return (received, connection_id, frame) if line[i:] in _REC_TAILS else None


def _entries(path: str | Path) -> Iterator[tuple[int, str | bytes, str]]:
    """(ingest epoch ms, frame, connection id) per recorded line; the replay hot path."""
    session = _session_id(path)
    loads = json.loads
    fast = _fast_line
    to_ms = rfc3339_to_ms
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            hit = fast(line)
            if hit is not None:
                yield to_ms(hit[0]), hit[2], hit[1] or session
                continue
            if not line.strip():
                continue
            try:
                obj = loads(line)
            except ValueError:
                raise ValueError(f"{path}:{n}: not a JSON line; expected a recorded frame") from None
            if not isinstance(obj, dict):
                raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
                    f"{path}:{n}: line has neither received_at+frame nor an envelope timestamp")
            frame = obj.get("frame")
            received = obj.get("received_at")
            if isinstance(frame, str) and isinstance(received, str):
                if obj.get("frame_encoding") == "base64":
                    frame = base64.b64decode(frame)
                yield rfc3339_to_ms(received), frame, obj.get("connection_id") or session
            elif isinstance(obj.get("timestamp"), str):
                yield rfc3339_to_ms(obj["timestamp"]), line.rstrip("\n"), session
            else:
                raise ValueError(  # noqa: TRY004 - bad file content, not a bad argument
                    f"{path}:{n}: line has neither received_at+frame nor an envelope timestamp")


def read_recording(path: str | Path) -> Iterator[TimedFrame]:
    for ts_ms, frame, connection_id in _entries(path):
        yield TimedFrame(_EPOCH + ts_ms * _MS, frame, connection_id)


def _timed_entries(frames: Iterable[TimedFrame], source: str) -> Iterator[tuple[int, str | bytes, str]]:
    for frame in frames:
        yield datetime_to_ms(frame.received_at), frame.text, frame.connection_id or source


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


def publish_entries(
    entries: Iterable[tuple[int, str | bytes, str]], settings: Settings, source: str, speed: float = 0.0,
    sink: KafkaSink | None = None, stop: threading.Event | None = None, status_interval_s: float = 0.0,
    metrics_port: int | None = None, workers: int = 0,
) -> PublishSummary:
    """Publishes (ingest ms, frame, connection id) entries; `workers` > 0 sends from that many processes."""
    own_sink = sink is None
    if sink is None:
        from crypto_assets.kafka_security import producer_config

        topics = (settings.trades_topic, settings.ticker_topic, settings.deadletter_topic)
        security = producer_config(settings)
        if workers > 0:
            from producer.parallel_sink import ParallelKafkaSink

            sink = ParallelKafkaSink(settings.kafka_bootstrap, workers, topics=topics, **_OFFLINE_SINK, **security)
        else:
            sink = KafkaSink(settings.kafka_bootstrap, topics=topics, when_full="block", **_OFFLINE_SINK, **security)
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
        for i, (ts_ms, frame, connection_id) in enumerate(entries):
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
            handle(frame, ts_ms * 1_000_000, connection_id)
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
        if own_sink and not closed:
            sink.close(timeout_s=5)
        if metrics is not None:
            metrics.stop()
    summary.frames = pipeline.frames
    summary.records = pipeline.records
    summary.by_kind = dict(pipeline.by_kind)
    summary.deadletters = dict(pipeline.deadletters)
    summary.failed = sink.stats.failed
    summary.lost = sink.stats.lost
    if pipeline.first_ts_ms is not None:
        summary.first_ts = _EPOCH + pipeline.first_ts_ms * _MS
        summary.last_ts = _EPOCH + pipeline.last_ts_ms * _MS
    summary.seconds = time.monotonic() - started
    return summary


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
        if not Path(path).exists():
            raise FileNotFoundError(f"recording {path} not found")
        entries = _entries(path)
    else:
        now = datetime.now(timezone.utc)
        # Synthetic data carries current times: as fast as possible, the session ends now; paced, it starts now.
        start = now if speed > 0 else now - timedelta(seconds=duration_s)
        entries = _timed_entries(synthetic_frames(settings, seed, duration_s, start), source)
    return publish_entries(entries, settings, source, speed=speed, stop=stop,
                           status_interval_s=status_interval_s, metrics_port=metrics_port, workers=workers)
