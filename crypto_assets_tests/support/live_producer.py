"""Shared by the live-producer tests: read topics back, run the producer in a thread, expected records."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from crypto_assets.contracts.settings import ProducerSettings
from producer.live import run_live


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int
    headers: tuple

    @property
    def header(self) -> dict[str, bytes]:
        return dict(self.headers)


def consume_all(bootstrap: str, topics, timeout_s: float = 30.0) -> list[Consumed]:
    """Every record now in `topics`, in (topic, partition, offset) order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[Consumed] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError("could not read the topics back in time")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    out.append(Consumed(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp,
                                        tuple((k, v) for k, v in r.headers)))
        return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))
    finally:
        consumer.close()


def expected_records(messages, trades_topic: str, ticker_topic: str) -> dict[tuple[str, bytes], list[bytes]]:
    """(topic, key) -> values in order, computed independently of the router from what the server sent."""
    out: dict[tuple[str, bytes], list[bytes]] = {}
    for msg, text in messages:
        channel = msg["channel"]
        topic, items_key = (trades_topic, "trades") if channel == "market_trades" else (ticker_topic, "tickers")
        products = []
        for event in msg["events"]:
            for item in event[items_key]:
                if item["product_id"] not in products:
                    products.append(item["product_id"])
        for pid in products:
            if len(products) == 1:
                value = text.encode()
            else:
                part = dict(msg)
                part["events"] = [
                    dict(e, **{items_key: [i for i in e[items_key] if i["product_id"] == pid]})
                    for e in msg["events"] if any(i["product_id"] == pid for i in e[items_key])
                ]
                value = json.dumps(part, separators=(",", ":")).encode()
            out.setdefault((topic, pid.encode()), []).append(value)
    return out


def by_key(records) -> dict[tuple[str, bytes], list[bytes]]:
    out: dict[tuple[str, bytes], list[bytes]] = {}
    for r in records:
        out.setdefault((r.topic, r.key), []).append(r.value)
    return out


class LiveRun:
    """`run_live` in a thread; `stop()` ends it like SIGTERM would and returns the pipeline."""

    def __init__(self, settings, options: ProducerSettings, credentials=None):
        self.stop_event = threading.Event()
        self.pipeline = None
        self.metrics = None
        self.error: BaseException | None = None
        self._ready = threading.Event()

        def ready(pipeline, metrics):
            self.pipeline, self.metrics = pipeline, metrics
            self._ready.set()

        def target():
            try:
                run_live(settings, options, self.stop_event, credentials, on_ready=ready)
            except BaseException as exc:  # noqa: BLE001 - handed to the test by stop()
                self.error = exc
                self._ready.set()

        self._thread = threading.Thread(target=target, name="live-producer", daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "producer did not start"
        if self.error:
            raise self.error

    def wait_for(self, condition, timeout_s: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.error:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; {self.pipeline.status_line()}")
            time.sleep(0.02)

    def stop(self):
        self.stop_event.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "producer did not stop"
        if self.error:
            raise self.error
        return self.pipeline


def fast_options(url: str, **kw) -> ProducerSettings:
    """Test timings: quick reconnects, no fixed metrics port."""
    base = {"ws_url": url, "metrics_port": 0, "backoff_base_s": 0.05, "backoff_cap_s": 0.2,
            "min_connect_interval_s": 0.05, "status_interval_s": 1.0, "watchdog_s": 5.0, "close_timeout_s": 10.0}
    base.update(kw)
    return ProducerSettings(**base)
