"""The live producer against a local Coinbase-protocol WebSocket server and the real Kafka broker."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import urllib.request
import uuid

import pytest

from crypto_assets.tools.broker import LocalBroker
from crypto_assets_tests.support.fake_exchange import (
    ERROR_SAMPLE,
    L2_SAMPLE,
    Action,
    FakeCoinbase,
    Market,
)
from crypto_assets_tests.support.fake_sinks import parse_exposition
from crypto_assets_tests.support.live_producer import (
    LiveRun,
    by_key,
    consume_all,
    expected_records,
    fast_options,
)
from producer.live import install_stop_signals
from producer.run import run_offline_source


def _all_delivered(run: LiveRun, server: FakeCoinbase):
    def done():
        if not server.exhausted.is_set():
            return False
        sent = sum(len(c.sent) + len(c.sent_binary) for c in server.connections)
        stats = run.pipeline.sink.stats
        return run.pipeline.frames >= sent and stats.acked == stats.sent == run.pipeline.records
    return done


def _data(records, settings):
    return [r for r in records if r.topic in (settings.trades_topic, settings.ticker_topic)]


def test_every_trade_and_ticker_arrives_exactly_and_bad_frames_are_dead_lettered(fresh_settings):
    s = fresh_settings
    market = Market(duration_s=45, seed=3)
    plan = {0: [Action(20, "garbage", "not json {"), Action(30, "binary_garbage", b"\xff\xfe\x00junk"),
                Action(40, "error"), Action(50, "unknown_channel")]}
    t_start = time.time_ns() // 1_000_000
    with FakeCoinbase(market, plan, client_id_absent=True) as server:
        run = LiveRun(s, fast_options(server.url))
        run.wait_for(_all_delivered(run, server), what="every message acknowledged by Kafka")
        with urllib.request.urlopen(run.metrics.url, timeout=5) as resp:
            metrics = parse_exposition(resp.read().decode())
        pipeline = run.stop()
    t_end = time.time_ns() // 1_000_000

    sent = [(m, text) for _, m, text in server.sent_data_messages()]
    assert len(sent) > 300
    records = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
    data = _data(records, s)
    assert by_key(data) == expected_records(sent, s.trades_topic, s.ticker_topic)  # content, key, topic, order
    conn_id = pipeline.connection.connection_id
    for r in data:
        assert r.header == {"source": b"coinbase", "connection_id": conn_id.encode()}
        assert t_start <= r.timestamp <= t_end
    snapshots = [json.loads(r.value) for r in data if b'"type":"snapshot"' in r.value]
    assert sorted((m["channel"], m["events"][0]["type"]) for m in snapshots) == [
        ("market_trades", "snapshot")] * 2 + [("ticker", "snapshot")] * 2

    dead = {r.value: r.header["reason"] for r in records if r.topic == s.deadletter_topic}
    assert dead == {b"not json {": b"not_json", b"\xff\xfe\x00junk": b"not_json",
                    ERROR_SAMPLE.encode(): b"coinbase_error", L2_SAMPLE.encode(): b"unknown_channel"}

    def m(name, **labels):
        return metrics[(f"crypto_producer_{name}", frozenset(labels.items()))]

    n_trades = sum(1 for msg, _ in sent if msg["channel"] == "market_trades")
    assert m("messages_total", source="coinbase", channel="market_trades") == n_trades
    assert m("messages_total", source="coinbase", channel="ticker") == len(sent) - n_trades
    assert m("records_acked_total") == len(data) + 4
    assert m("deadletters_total", reason="not_json") == 2 and m("coinbase_errors_total") == 1
    assert m("connected") == 1 and m("connections_total") == 1
    assert not [k for k in metrics if k[0] == "crypto_producer_reconnects_total"]
    assert pipeline.health.sequence_gaps == 0 and pipeline.health.trade_id_gap_count == 0


def _trade_ids_sent(server: FakeCoinbase) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {}
    for _, msg, _ in server.sent_data_messages():
        if msg["channel"] == "market_trades":
            for event in msg["events"]:
                for t in event["trades"]:
                    ids.setdefault(t["product_id"], set()).add(int(t["trade_id"]))
    return ids


def test_disconnects_resubscribe_count_gaps_publish_snapshots_and_replay_reproduces(fresh_settings, tmp_path):
    s = fresh_settings
    market = Market(duration_s=90, seed=11)
    plans = {
        0: [Action(40, "skip_seq", 3), Action(100, "close", (1001, 120))],  # restart; market moves on meanwhile
        1: [Action(30, "lose", 6), Action(60, "abrupt", 10)],  # lost messages, then a TCP drop (1006)
    }
    recording = tmp_path / "live.ndjson"
    with FakeCoinbase(market, plans) as server:
        run = LiveRun(s, fast_options(server.url, record=str(recording)))
        run.wait_for(_all_delivered(run, server), what="every message acknowledged by Kafka")
        pipeline = run.stop()

    # Resubscribed everything, in time, on every connection.
    assert len(server.connections) == 3
    for conn in server.connections:
        subs = [msg for _, msg in conn.subscribes]
        assert [m["channel"] for m in subs] == ["market_trades", "ticker", "heartbeats"]
        assert [m.get("product_ids") for m in subs] == [list(s.products), list(s.products), None]
        assert max(t for t, _ in conn.subscribes) < 5.0
    assert dict(pipeline.connection.reconnects_by_reason) == {"close_1001": 1, "close_1006": 1}

    # The gaps it was shown, counted exactly.
    h = pipeline.health
    lost_seq = sum(c.skipped_seq for c in server.connections)
    assert lost_seq == 3 + 6
    assert (h.sequence_gaps, h.sequence_missing) == (2, lost_seq)
    sent_ids = _trade_ids_sent(server)
    for pid, ids in sent_ids.items():
        never_sent = set(range(min(ids), max(ids) + 1)) - ids
        assert h.trades_still_missing.get(pid, 0) == len(never_sent), pid
    assert h.trades_missing_count > 0  # the plan did lose trades
    assert sum(h.trades_recovered.values()) > 0  # some came back in a later snapshot
    assert sum(h.snapshot_overlap.values()) > 0  # and the reconnect snapshots repeated seen ones: not gaps

    # Every message, snapshots included, in Kafka exactly as sent.
    records = consume_all(s.kafka_bootstrap, [s.trades_topic, s.ticker_topic, s.deadletter_topic])
    data = _data(records, s)
    sent = [(m, text) for _, m, text in server.sent_data_messages()]
    assert by_key(data) == expected_records(sent, s.trades_topic, s.ticker_topic)
    snapshot_conns = sorted(r.header["connection_id"] for r in data
                            if r.topic == s.trades_topic and b'"type":"snapshot"' in r.value)
    assert len(snapshot_conns) == 3 * len(s.products) and len(set(snapshot_conns)) == 3
    assert not [r for r in records if r.topic == s.deadletter_topic]

    # Replaying the recording gives the same records (the source header says replay).
    tag = uuid.uuid4().hex[:8]
    replay_settings = s.replace(trades_topic=f"r{tag}.trades", ticker_topic=f"r{tag}.ticker",
                                          deadletter_topic=f"r{tag}.dead")
    LocalBroker(replay_settings).ensure_topics()
    summary = run_offline_source(replay_settings, "replay", str(recording), seed=0, duration_s=0, speed=0)
    assert summary.frames == pipeline.frames and summary.lost == 0
    replayed = consume_all(s.kafka_bootstrap, [replay_settings.trades_topic, replay_settings.ticker_topic])

    def comparable(rs, trades_topic):
        out = {}
        for r in rs:
            kind = "trades" if r.topic == trades_topic else "ticker"
            headers = dict(r.header, source=None)
            out.setdefault((kind, r.key), []).append((r.value, r.timestamp, tuple(sorted(headers.items()))))
        return out

    assert comparable(replayed, replay_settings.trades_topic) == comparable(data, s.trades_topic)
    assert {r.header["source"] for r in replayed} == {b"replay"}
    rh = summary.pipeline.health
    assert (rh.sequence_gaps, rh.trades_missing_count) == (h.sequence_gaps, h.trades_missing_count)


def test_watchdog_reconnects_when_nothing_arrives(fresh_settings):
    market = Market(duration_s=20, seed=5)
    plans = {0: [Action(15, "pause", 2.5)]}  # not even a heartbeat for 2.5 s
    with FakeCoinbase(market, plans, heartbeat_idle_s=0.1) as server:
        run = LiveRun(fresh_settings, fast_options(server.url, watchdog_s=1.0))
        run.wait_for(_all_delivered(run, server), what="every message acknowledged by Kafka")
        pipeline = run.stop()
    assert pipeline.connection.reconnects_by_reason["watchdog"] == 1
    assert len(server.connections) == 2 and server.connections[1].updates_sent > 0
    assert pipeline.health.sequence_gaps == 0


def test_server_closes_a_client_that_does_not_subscribe():
    import websocket

    with FakeCoinbase(Market(duration_s=5), subscribe_timeout_s=0.3) as server:
        ws = websocket.create_connection(server.url, timeout=5)
        opcode, frame = ws.recv_data_frame(True)
        assert opcode == 0x8 and int.from_bytes(frame.data[:2], "big") == 1008
        ws.close()


@pytest.mark.parametrize("absent", [True, False])
def test_client_id_may_be_absent(fresh_settings, absent):
    market = Market(duration_s=8, seed=9)
    with FakeCoinbase(market, client_id_absent=absent) as server:
        run = LiveRun(fresh_settings, fast_options(server.url))
        run.wait_for(_all_delivered(run, server), what="every message acknowledged by Kafka")
        pipeline = run.stop()
    assert pipeline.deadletters == {}
    assert pipeline.records == sum(len(v) for v in expected_records(
        [(m, t) for _, m, t in server.sent_data_messages()], "t", "k").values())


def test_a_live_shutdown_reports_the_log_lines_it_suppressed(fresh_settings, caplog):
    market = Market(duration_s=8, seed=9)
    plan = {0: [Action(5 + i, "garbage", f"not json {i}") for i in range(15)]}  # 15 dead letters, 10 logged
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"), FakeCoinbase(market, plan) as server:
        run = LiveRun(fresh_settings, fast_options(server.url))
        run.wait_for(_all_delivered(run, server), what="every message acknowledged by Kafka")
        pipeline = run.stop()
    assert pipeline.deadletters == {"not_json": 15}
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dead letter (not_json)")]
    suppressed = [r.getMessage() for r in caplog.records if "suppressed" in r.getMessage()]
    assert len(logged) == 10
    assert len(suppressed) == 1 and suppressed[0].startswith("(5 more deadletter lines suppressed in the last ")


def test_stop_signals_say_what_stopping_means(caplog):
    stop = threading.Event()
    restore = install_stop_signals(stop, stopping="stopping the Bronze stream after its micro-batch",
                                   aborting="aborting the Bronze stream (it resumes from its checkpoints)")
    try:
        with caplog.at_level(logging.INFO, logger="producer.live"):
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(5)
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler runs between bytecodes of this thread
    finally:
        restore()
    assert [r.getMessage() for r in caplog.records] == [
        "SIGTERM received: stopping the Bronze stream after its micro-batch",
        "SIGTERM again: aborting the Bronze stream (it resumes from its checkpoints)"]
