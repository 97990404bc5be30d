"""Replay of a recording: sender processes give the same records as in-process sending; pacing; stop."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crypto_assets.tools.broker import LocalBroker
from crypto_assets_tests.support.live_producer import consume_all
from producer.recording import Recorder
from producer.run import datetime_to_ms, parse_rfc3339, run_offline_source
from producer.synthetic import SyntheticConfig, generate_frames


def _topics(settings):
    tag = uuid.uuid4().hex[:8]
    s = settings.replace(trades_topic=f"p{tag}.trades", ticker_topic=f"p{tag}.ticker",
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


DATA = Path(__file__).resolve().parent / "data" / "replay_level2_error.ndjson"  # see data/SOURCES.md
SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "samples_advanced_trade.ndjson"


def _value(row: tuple) -> bytes:
    return row[2]


def test_replay_of_real_captures_with_level2_and_an_error_frame(fresh_settings, caplog):
    sample = SAMPLES.read_text().splitlines()
    lines = DATA.read_text().splitlines()
    # The file, by sample line: error 20; one connection (bare frames): 25-29, l2 32, 30, 31;
    # another connection (recorder lines, frames verbatim): l2 21, acks 22, 23, heartbeat 24.
    bare = [sample[n - 1] for n in (20, 25, 26, 27, 28, 29, 32, 30, 31)]
    wrapped = [json.loads(line) for line in lines[9:]]
    assert lines[:9] == bare and [w["frame"] for w in wrapped] == [sample[n - 1] for n in (21, 22, 23, 24)]

    s = _topics(fresh_settings)
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"):
        summary = run_offline_source(s, "replay", str(DATA), seed=0, duration_s=0, speed=0, workers=0)
    assert (summary.frames, summary.untimed, summary.lost, summary.failed) == (13, 1, 0, 0)
    assert summary.by_kind == {"error": 1, "data": 7, "deadletter": 2, "subscriptions": 2, "heartbeat": 1}
    assert summary.deadletters == {"coinbase_error": 1, "unknown_channel": 2}
    assert "untimed lines 1" in str(summary)

    def ms(frame: str) -> int:
        return datetime_to_ms(parse_rfc3339(json.loads(frame)["timestamp"]))

    session = f"replay-{uuid.uuid5(uuid.NAMESPACE_URL, str(DATA.resolve()))}".encode()
    other = b"capture-2026-07-16-level2"
    records = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
    got = [(r.topic, r.key, r.value, r.timestamp, r.header) for r in records]
    trades = [(s.trades_topic, b"BTC-USD", line.encode(), ms(line), {"source": b"replay", "connection_id": session})
              for line in bare if '"market_trades"' in line]
    assert [g for g in got if g[0] == s.trades_topic] == trades  # one key, one partition: in file order
    dead = [
        # The error frame has no time: it takes the first usable one, sample line 25's.
        (s.deadletter_topic, None, bare[0].encode(), ms(bare[1]),
         {"source": b"replay", "connection_id": session, "reason": b"coinbase_error"}),
        (s.deadletter_topic, None, bare[6].encode(), ms(bare[6]),
         {"source": b"replay", "connection_id": session, "reason": b"unknown_channel"}),
        (s.deadletter_topic, None, wrapped[0]["frame"].encode(), ms(wrapped[0]["frame"]),
         {"source": b"replay", "connection_id": other, "reason": b"unknown_channel"}),
    ]
    # Dead letters have no key, so they spread over partitions: compared in value order.
    assert sorted((g for g in got if g[0] == s.deadletter_topic), key=_value) == sorted(dead, key=_value)
    assert len(got) == 10  # nothing on the ticker topic

    # Sequence gaps, by hand from the sequence_num values (every frame that has one counts, l2 too):
    #   session: (error: none) 165, 173, 180, 188, 191, 192 (l2), 193, 197
    #            -> 166..172 (7), 174..179 (6), 181..187 (7), 189..190 (2), 194..196 (3): 5 gaps, 25 messages
    #   capture-2026-07-16-level2: 1 (l2), 5, 6, 33 -> 2..4 (3), 7..32 (26): 2 gaps, 29 messages
    # (Counting only routed frames would give a gap at 192 and none at 2..4: 52 messages.)
    h = summary.pipeline.health
    assert (h.sequence_gaps, h.sequence_missing, h.sequence_out_of_order) == (7, 54, 0)
    assert (h.trade_id_gap_count, h.last_trade_id) == (0, {"BTC-USD": 1056309471})  # ids 61..71, dense
    logged = [re.search(r"gap on connection (\S+): (\d+)\.\.(\d+) missing", r.getMessage()) for r in caplog.records]
    assert [(m[1].encode(), int(m[2]), int(m[3])) for m in logged if m] == [
        (session, 166, 172), (session, 174, 179), (session, 181, 187), (session, 189, 190), (session, 194, 196),
        (other, 2, 4), (other, 7, 32)]
