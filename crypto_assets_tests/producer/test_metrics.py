"""Prometheus metrics: the text format, the HTTP endpoint, and the counters the pipeline keeps."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crypto_assets_tests.support.fake_sinks import RecordingSink, parse_exposition
from crypto_assets_tests.support.records import trades_frame
from producer.metrics import Family, LatencyHistogram, MetricsServer, render
from producer.pipeline import FeedPipeline

SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "samples_advanced_trade.ndjson"
LINES = SAMPLES.read_text().splitlines()
WHEN = "2026-11-24T23:50:00.5Z"


def test_render_escapes_labels_and_types_every_family():
    text = render([
        Family("x_total", "counter", "things").add(3, reason='bad "quote"\nand \\ slash'),
        Family("y", "gauge", "level").add(1.5),
    ])
    assert text.endswith("\n")
    assert '# TYPE x_total counter' in text and '# TYPE y gauge' in text
    assert 'x_total{reason="bad \\"quote\\"\\nand \\\\ slash"} 3' in text
    parsed = parse_exposition(text)
    assert parsed[("y", frozenset())] == 1.5


def test_histogram_buckets_are_cumulative_and_quantiles_sensible():
    h = LatencyHistogram()
    for ms in [1, 2, 2, 3, 4, 5, 8, 9, 40, 400]:
        h.observe_ns(ms * 1_000_000)
    fam = Family("lat_seconds", "histogram", "latency")
    fam.samples = h.samples("lat_seconds")
    parsed = parse_exposition(render([fam]))
    assert parsed[("lat_seconds_bucket", frozenset({("le", "0.001")}))] == 1
    assert parsed[("lat_seconds_bucket", frozenset({("le", "0.005")}))] == 6
    assert parsed[("lat_seconds_bucket", frozenset({("le", "+Inf")}))] == 10
    assert parsed[("lat_seconds_count", frozenset())] == 10
    assert parsed[("lat_seconds_sum", frozenset())] == pytest.approx(0.474)
    assert 0.0025 <= h.quantile_s(0.5) <= 0.005
    assert 0.25 <= h.quantile_s(0.99) <= 0.5


def _pipeline():
    sink = RecordingSink()
    p = FeedPipeline("trades", "ticker", "dead", sink, "coinbase")
    p.handle(LINES[7], 1_000_000_000, "conn-1", t0_ns=1)  # heartbeat, seq 1
    p.handle(trades_frame("BTC-USD", [100, 101], WHEN, seq=2), 2_000_000_000, "conn-1", t0_ns=1)
    p.handle(trades_frame("BTC-USD", [105], WHEN, seq=5), 3_000_000_000, "conn-1", t0_ns=1)  # both gaps
    p.handle(b"\x00garbage", 4_000_000_000, "conn-1", t0_ns=1)
    p.handle(LINES[19], 5_000_000_000, "conn-1", t0_ns=1)  # Coinbase error
    return p, sink


def test_endpoint_serves_the_pipeline_counters():
    pipeline, _ = _pipeline()
    server = MetricsServer(0, pipeline.metric_families).start()
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            metrics = parse_exposition(resp.read().decode())
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/nope", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()

    def m(name, **labels):
        return metrics[(f"crypto_producer_{name}", frozenset(labels.items()))]

    assert m("messages_total", source="coinbase", channel="market_trades") == 2
    assert m("messages_total", source="coinbase", channel="heartbeats") == 1
    assert m("messages_total", source="coinbase", channel="invalid") == 1
    assert m("messages_total", source="coinbase", channel="error") == 1
    assert m("records_sent_total", topic="trades") == 2
    assert m("records_sent_total", topic="dead") == 2
    assert m("records_acked_total") == 4
    assert m("deadletters_total", reason="not_json") == 1
    assert m("deadletters_total", reason="coinbase_error") == 1
    assert m("coinbase_errors_total") == 1
    assert m("sequence_gaps_total") == 1 and m("sequence_gap_messages_total") == 2
    assert m("trade_id_gaps_total", product_id="BTC-USD") == 1
    assert m("trade_id_gap_trades_total", product_id="BTC-USD") == 3
    assert m("heartbeat_counter") == 66987
    assert m("buffer_records") == 0 and m("buffer_limit_records") == 1000
    assert m("send_latency_seconds_count") == 4
    assert m("send_latency_seconds_bucket", le="0.0025") == 4


def test_status_line_has_every_counter():
    pipeline, _ = _pipeline()
    line = pipeline.status_line()
    assert "\n" not in line
    for part in ("market_trades=2", "heartbeats=1", "kafka sent=4 acked=4 lost=0", "errors=2",
                 "dead letters 2", "coinbase 1", "reconnects=0", "sequence=1 (2 msgs)", "trade_id=1 (3 trades)",
                 "buffer 0 records", "send latency p50"):
        assert part in line, (part, line)


def test_port_in_use_is_one_clear_error():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(OSError) as err:
            MetricsServer(port, list)
    assert f"metrics port {port}" in str(err.value) and "--metrics-port" in str(err.value)


def test_a_failing_collector_answers_500_and_keeps_serving():
    calls = []

    def collect():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return [Family("ok", "gauge", "fine").add(1)]

    server = MetricsServer(0, collect).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url, timeout=5)
        assert err.value.code == 500
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert b"ok 1" in resp.read()
    finally:
        server.stop()


def test_pipeline_routes_same_records_as_router():
    """The pipeline adds counting, not changes: records equal the router's."""
    _, sink = _pipeline()
    values = [json.loads(r.value)["sequence_num"] for r in sink.records if r.topic == "trades"]
    assert values == [2, 5]
