"""Coinbase Advanced Trade frames -> Kafka records: one record per message per product.

The record contract (documented in README "Kafka record contract"):
- topic: `market_trades` -> trades topic, `ticker` -> ticker topic; anything unroutable ->
  the dead-letter topic with a `reason` header.
- key: the product_id (UTF-8), so per-product order holds within a Kafka partition.
- value: the message as received. A message carrying several products is split: each part
  keeps the envelope and only that product's items, re-serialized compactly; a message with
  one product keeps its original bytes.
- timestamp: the producer's receive (ingest) time, in ms (CreateTime).
- headers: `source` (coinbase | replay | synthetic), `connection_id` (one per WebSocket
  connection or replay session); dead letters also carry `reason`.
Heartbeats, subscription acknowledgements and empty snapshots (a `market_trades` or `ticker`
snapshot without any trade or ticker) are health signals, not market data. A dead letter that
parsed as a JSON object keeps it as `message`, so its sequence_num still counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

DATA_CHANNELS = {"market_trades": "trades", "ticker": "tickers"}
HEALTH_CHANNELS = {"heartbeats", "subscriptions"}

# The C scanner behind json.loads, called directly: the hot path parses every frame once.
_scan_once = json.JSONDecoder().scan_once
_JSON_SPACE = " \t\n\r"


def _parse_json(text: str):
    """json.loads(text) without its per-call Python overhead; ValueError if it is not one JSON value."""
    if not text or text[0] in _JSON_SPACE:
        return json.loads(text)
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        raise ValueError("extra data after the JSON value")
    return obj


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Routed:
    """What one frame turned into."""

    kind: str  # "data" | "heartbeat" | "subscriptions" | "empty_snapshot" | "error" | "deadletter"
    records: list[KafkaRecord] = field(default_factory=list)
    message: dict | None = None  # the parsed JSON object, for health tracking (sequence numbers, trade ids)
    reason: str | None = None


class Router:
    def __init__(self, trades_topic: str, ticker_topic: str, deadletter_topic: str):
        self.topics = {"market_trades": trades_topic, "ticker": ticker_topic}
        self.deadletter_topic = deadletter_topic
        # One connection's data records all share one headers tuple: built once, not per frame.
        self._header_cache: dict[tuple[str, str], tuple] = {}

    def _headers(self, source: str, connection_id: str, reason: str | None = None) -> tuple:
        if reason is None:
            cached = self._header_cache.get((source, connection_id))
            if cached is not None:
                return cached
        headers = [("source", source.encode()), ("connection_id", connection_id.encode())]
        if reason:
            headers.append(("reason", reason.encode()))
            return tuple(headers)
        if len(self._header_cache) >= 64:
            self._header_cache.clear()
        cached = self._header_cache[(source, connection_id)] = tuple(headers)
        return cached

    def dead_letter(self, raw: bytes, ts_ms: int, source: str, connection_id: str, reason: str,
                    message: dict | None = None) -> Routed:
        record = KafkaRecord(self.deadletter_topic, None, raw, ts_ms, self._headers(source, connection_id, reason))
        return Routed("deadletter", [record], message=message, reason=reason)

    def route(self, frame: str | bytes, ts_ms: int, source: str, connection_id: str) -> Routed:
        try:
            if isinstance(frame, str):
                text, raw = frame, frame.encode()
            else:
                raw = frame
                text = raw.decode()
            msg = _parse_json(text)
        except UnicodeEncodeError:  # a str frame holding undecodable bytes (surrogate escapes)
            raw = frame.encode("utf-8", "surrogateescape")
            return self.dead_letter(raw, ts_ms, source, connection_id, "not_json")
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.dead_letter(raw, ts_ms, source, connection_id, "not_json")
        if not isinstance(msg, dict):
            return self.dead_letter(raw, ts_ms, source, connection_id, "not_json_object")
        if msg.get("type") == "error":
            routed = self.dead_letter(raw, ts_ms, source, connection_id, "coinbase_error")
            routed.kind, routed.message = "error", msg
            return routed
        channel = msg.get("channel")
        if channel == "heartbeats":
            return Routed("heartbeat", message=msg)
        if channel == "subscriptions":
            return Routed("subscriptions", message=msg)
        if channel not in DATA_CHANNELS:
            reason = "missing_channel" if channel is None else "unknown_channel"
            return self.dead_letter(raw, ts_ms, source, connection_id, reason, msg)
        return self._split(raw, msg, channel, ts_ms, source, connection_id)

    def _split(self, raw: bytes, msg: dict, channel: str, ts_ms: int, source: str, connection_id: str) -> Routed:
        items_key = DATA_CHANNELS[channel]
        events = msg.get("events")
        if not isinstance(events, list) or not events:
            return self.dead_letter(raw, ts_ms, source, connection_id, "missing_events", msg)
        products: list[str] = []
        for event in events:
            items = event.get(items_key) if isinstance(event, dict) else None
            if not isinstance(items, list):
                return self.dead_letter(raw, ts_ms, source, connection_id, f"missing_{items_key}", msg)
            for item in items:
                pid = item.get("product_id") if isinstance(item, dict) else None
                if not isinstance(pid, str) or not pid:
                    return self.dead_letter(raw, ts_ms, source, connection_id, "missing_product_id", msg)
                if pid not in products:
                    products.append(pid)
        if not products:
            if all(event.get("type") == "snapshot" for event in events):  # nothing to report yet: health, not data
                return Routed("empty_snapshot", message=msg)
            return self.dead_letter(raw, ts_ms, source, connection_id, f"no_{items_key}", msg)

        topic = self.topics[channel]
        headers = self._headers(source, connection_id)
        if len(products) == 1:
            return Routed("data", [KafkaRecord(topic, products[0].encode(), raw, ts_ms, headers)], message=msg)
        records = []
        for pid in products:
            part = {k: v for k, v in msg.items() if k != "events"}
            part["events"] = [
                {**e, items_key: [i for i in e[items_key] if i["product_id"] == pid]}
                for e in events
                if any(i["product_id"] == pid for i in e[items_key])
            ]
            # Keep the envelope's key order: events goes back where it was.
            ordered = {k: (part["events"] if k == "events" else part[k]) for k in msg}
            value = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
            records.append(KafkaRecord(topic, pid.encode(), value, ts_ms, headers))
        return Routed("data", records, message=msg)
