"""Routing of Coinbase frames to Kafka records, on the real samples in producer/samples/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.routing import Router

SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "samples_advanced_trade.ndjson"
LINES = SAMPLES.read_text().splitlines()
router = Router("trades", "ticker", "dead")


def route(line: str):
    return router.route(line, 1_700_000_000_000, "replay", "conn-7")


def test_single_product_trade_message_keeps_its_bytes():
    line = LINES[28]  # live capture: 4 BTC-USD trades newest first
    routed = route(line)
    assert routed.kind == "data" and len(routed.records) == 1
    rec = routed.records[0]
    assert (rec.topic, rec.key, rec.value, rec.timestamp_ms) == ("trades", b"BTC-USD", line.encode(), 1_700_000_000_000)
    assert dict(rec.headers) == {"source": b"replay", "connection_id": b"conn-7"}


def test_ticker_goes_to_ticker_topic():
    routed = route(LINES[11])
    assert [(r.topic, r.key) for r in routed.records] == [("ticker", b"BTC-USD")]


@pytest.mark.parametrize("n, kind", [(0, "heartbeat"), (6, "subscriptions"), (7, "heartbeat"), (8, "subscriptions"), (18, "heartbeat"),
                                     (17, "subscriptions")])
def test_health_frames_are_not_published(n, kind):
    routed = route(LINES[n])
    assert routed.kind == kind and routed.records == []


def test_multi_product_message_is_split_per_product_keeping_envelope_and_order():
    msg = json.loads(LINES[28])
    eth = [dict(t, product_id="ETH-USD", trade_id=str(9000 + i)) for i, t in enumerate(msg["events"][0]["trades"][:2])]
    msg["events"][0]["trades"] = [msg["events"][0]["trades"][0], eth[0], msg["events"][0]["trades"][1], eth[1]]
    line = json.dumps(msg, separators=(",", ":"))
    routed = route(line)
    assert [r.key for r in routed.records] == [b"BTC-USD", b"ETH-USD"]
    parts = [json.loads(r.value) for r in routed.records]
    for part in parts:
        assert list(part) == list(msg)  # envelope keys in the original order
        assert part["sequence_num"] == msg["sequence_num"] and part["timestamp"] == msg["timestamp"]
    assert [t["trade_id"] for t in parts[0]["events"][0]["trades"]] == ["1056309468", "1056309467"]
    assert [t["trade_id"] for t in parts[1]["events"][0]["trades"]] == ["9000", "9001"]
    # Nothing lost or invented by the split.
    assert sum(len(p["events"][0]["trades"]) for p in parts) == 4
    assert routed.records[0].value == json.dumps(parts[0], separators=(",", ":")).encode()


@pytest.mark.parametrize("frame, reason", [
    (b"\xff\xfe not json", "not_json"),
    ("[1, 2]", "not_json_object"),
    ('{"type":"error","message":"authentication failure"}', "coinbase_error"),
    ('{"channel":"l2_data","events":[]}', "unknown_channel"),
    ('{"events":[]}', "missing_channel"),
    ('{"channel":"market_trades","timestamp":"x","sequence_num":1,"events":[]}', "missing_events"),
    ('{"channel":"market_trades","events":[{"type":"update","trades":[{"trade_id":"1"}]}]}', "missing_product_id"),
    ('{"channel":"ticker","events":[{"type":"update"}]}', "missing_tickers"),
])
def test_unroutable_frames_go_to_dead_letter_with_reason(frame, reason):
    routed = route(frame)
    assert routed.reason == reason
    (rec,) = routed.records
    raw = frame.encode() if isinstance(frame, str) else frame
    assert rec.topic == "dead" and rec.value == raw and dict(rec.headers)["reason"] == reason.encode()


def test_error_sample_is_dead_lettered_as_error():
    routed = route(LINES[19])
    assert routed.kind == "error" and routed.records[0].topic == "dead"


@pytest.mark.parametrize("channel, items", [("market_trades", "trades"), ("ticker", "tickers")])
def test_an_empty_snapshot_is_a_health_frame(channel, items):
    frame = json.dumps({"channel": channel, "timestamp": "2026-07-15T03:40:10Z", "sequence_num": 3,
                        "events": [{"type": "snapshot", items: []}]})
    routed = route(frame)
    assert (routed.kind, routed.records, routed.reason) == ("empty_snapshot", [], None)
    assert routed.message["sequence_num"] == 3
    update = frame.replace('"snapshot"', '"update"')
    assert route(update).reason == f"no_{items}"


def test_dead_letters_keep_the_parsed_message_for_sequence_counting():
    routed = route(LINES[31])  # l2_data, sequence_num 192
    assert routed.reason == "unknown_channel" and routed.message["sequence_num"] == 192
    assert route("[1, 2]").message is None
