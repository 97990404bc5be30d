"""Replay of a recording: sender processes give the same records as in-process sending; pacing; stop."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from crypto_assets.broker import LocalBroker
from crypto_assets_tests.producer.live_support import consume_all
from producer.recording import Recorder
from producer.run import datetime_to_ms, run_offline_source
from producer.synthetic import SyntheticConfig, generate_frames


def _topics(settings):
    tag = uuid.uuid4().hex[:8]
    s = dataclasses.replace(settings, trades_topic=f"p{tag}.trades", ticker_topic=f"p{tag}.ticker",
                            deadletter_topic=f"p{tag}.dead")
    LocalBroker(s).ensure_topics()
    return s


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "session.ndjson"
    rec = Recorder(path)
    config = SyntheticConfig(products=("BTC-USD", "ETH-USD", "SOL-USD"), seed=12, duration_s=240,
                             start=datetime(2026, 5, 1, tzinfo=timezone.utc))
    frames = list(generate_frames(config))
    for i, f in enumerate(frames):
        rec.write(f.text, datetime_to_ms(f.received_at) * 1_000_000, "conn-a" if i < len(frames) // 2 else "conn-b")
        if i == 100:
            rec.write("{broken", datetime_to_ms(f.received_at) * 1_000_000, "conn-a")
    rec.close()
    return path, frames


def _comparable(records, settings):
    kinds = {settings.trades_topic: "trades", settings.ticker_topic: "ticker", settings.deadletter_topic: "dead"}
    out = {}
    for r in records:
        out.setdefault((kinds[r.topic], r.key), []).append((r.value, r.timestamp, r.headers))
    return out


def test_sender_processes_publish_exactly_what_in_process_sending_does(fresh_settings, recording):
    path, frames = recording
    results = {}
    for workers in (0, 2):
        s = _topics(fresh_settings)
        summary = run_offline_source(s, "replay", str(path), seed=0, duration_s=0, speed=0, workers=workers)
        assert summary.frames == len(frames) + 1 and summary.lost == 0
        assert summary.pipeline.sink.stats.acked == summary.records
        records = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
        assert len(records) == summary.records
        results[workers] = (_comparable(records, s), summary)
    assert results[2][0] == results[0][0]  # same records, same per-key order
    assert len(results[0][0]) == 7  # 3 products x 2 topics + the dead letter
    h0, h2 = results[0][1].pipeline.health, results[2][1].pipeline.health
    assert (h2.sequence_gaps, h2.trades_missing_count) == (h0.sequence_gaps, h0.trades_missing_count) == (0, 0)


def test_paced_replay_follows_the_recorded_clock(fresh_settings, tmp_path):
    path = tmp_path / "short.ndjson"
    rec = Recorder(path)
    base = 1_790_000_000_000_000_000
    for i in range(21):  # 2 s of recorded time
        rec.write(f'{{"channel":"heartbeats","sequence_num":{i},"events":[]}}', base + i * 100_000_000, "c")
    rec.close()
    s = _topics(fresh_settings)
    t0 = time.monotonic()
    summary = run_offline_source(s, "replay", str(path), seed=0, duration_s=0, speed=4.0, workers=0)
    elapsed = time.monotonic() - t0
    assert summary.frames == 21
    assert 0.45 <= summary.seconds and elapsed < 5  # 2 s of feed at 4x speed: 0.5 s
    assert summary.seconds < 1.5


def test_stop_interrupts_a_replay_and_flushes_what_was_read(fresh_settings, recording):
    path, frames = recording
    s = _topics(fresh_settings)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    summary = run_offline_source(s, "replay", str(path), seed=0, duration_s=0, speed=20.0, stop=stop, workers=0)
    assert summary.interrupted and 0 < summary.frames < len(frames)
    records = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
    assert len(records) == summary.records == summary.pipeline.sink.stats.acked


def test_a_missing_topic_is_one_clear_error(fresh_settings):
    from producer.kafka_sink import KafkaSink, SinkUnavailableError

    with pytest.raises(SinkUnavailableError, match=r"has no topic 'no.such.topic'.*crypto-pipeline kafka up"):
        KafkaSink(fresh_settings.kafka_bootstrap, topics=("no.such.topic",), max_block_ms=1000)
