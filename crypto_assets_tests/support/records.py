"""Small builders shared by tests: Coinbase-format frames and a Kafka writer that returns offsets."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from kafka import KafkaProducer


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def trades_frame(product: str, trade_ids: list[int], when: str, seq: int = 1, event_type: str = "update",
                 price: str = "64589.41", side: str = "SELL") -> str:
    """A market_trades frame (newest first), in the exact key order of the live samples."""
    trades = [
        {"product_id": product, "trade_id": str(t), "price": price, "size": "0.0004088",
         "time": when, "side": side}
        for t in sorted(trade_ids, reverse=True)
    ]
    msg = {"channel": "market_trades", "client_id": "", "timestamp": when, "sequence_num": seq,
           "events": [{"type": event_type, "trades": trades}]}
    return json.dumps(msg, separators=(",", ":"))


def ticker_frame(product: str, when: str, seq: int = 1, price: str = "64281.7", event_type: str = "update") -> str:
    msg = {"channel": "ticker", "client_id": "", "timestamp": when, "sequence_num": seq,
           "events": [{"type": event_type, "tickers": [{
               "type": "ticker", "product_id": product, "price": price, "volume_24_h": "3974.98800786",
               "low_24_h": "63454", "high_24_h": "64727.27", "low_52_w": "59073.01", "high_52_w": "126296",
               "price_percent_chg_24_h": "1.21471769193719", "best_bid": price, "best_bid_quantity": "0.21558849",
               "best_ask": "64281.71", "best_ask_quantity": "0.02287045"}]}]}
    return json.dumps(msg, separators=(",", ":"))


def send_records(bootstrap: str, records: list[tuple[str, str | None, bytes | str, datetime]],
                 headers: list[tuple[str, bytes]] | None = None) -> list[tuple[int, int]]:
    """Writes (topic, key, value, timestamp) records; returns their (partition, offset) in order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = []
    for topic, key, value, when in records:
        futures.append(producer.send(
            topic, key=key.encode() if key else None,
            value=value.encode() if isinstance(value, str) else value,
            timestamp_ms=int(when.timestamp() * 1000),
            headers=headers or [("source", b"test"), ("connection_id", b"conn-1")],
        ))
    producer.flush()
    out = [(f.get(timeout=30).partition, f.get(timeout=30).offset) for f in futures]
    producer.close()
    return out


def break_silver_dedup(monkeypatch) -> None:
    """A deliberately broken dedup: every copy of a trade reaches Silver, so its blocking uniqueness
    check must fail."""
    import numpy as np

    import crypto_assets.silver.transforms as silver_transforms

    monkeypatch.setattr(silver_transforms, "duplicate_flags",
                        lambda valid, key_ids, order: (np.zeros(len(valid), bool), np.full(len(valid), -1)))
