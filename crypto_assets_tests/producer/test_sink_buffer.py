"""The sink's bounded buffer and loss account, with acknowledgements under the test's control."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from crypto_assets_tests.support.records import ticker_frame, trades_frame
from producer.kafka_sink import KafkaSink
from producer.routing import KafkaRecord

HEADERS = (("source", b"coinbase"), ("connection_id", b"conn-9"))


class HeldProducer:
    """Takes records like KafkaProducer.send and acknowledges only when told to."""

    def __init__(self):
        self.pending: list[tuple[Future, int]] = []
        self.sent = []
        self.closed = False

    def send(self, topic, key=None, value=None, timestamp_ms=None, headers=None):
        assert isinstance(headers, list)
        future = Future()
        self.pending.append((future, len(value)))
        self.sent.append((topic, key, value, timestamp_ms))
        return future

    def ack(self, n=None):
        n = len(self.pending) if n is None else n
        done, self.pending = self.pending[:n], self.pending[n:]
        for future, size in done:
            future.success(SimpleNamespace(serialized_value_size=size))

    def fail(self, exc):
        done, self.pending = self.pending, []
        for future, _ in done:
            future.failure(exc)

    def flush(self, timeout=None):
        if self.pending:
            raise KafkaTimeoutError("not acknowledged")

    def close(self, timeout=None):
        self.closed = True
        self.fail(KafkaTimeoutError("producer closed"))


def trade_record(tid: int, seq: int, ts: int, product="BTC-USD") -> KafkaRecord:
    value = trades_frame(product, [tid], "2026-11-24T23:50:00.1Z", seq=seq).encode()
    return KafkaRecord("trades", product.encode(), value, ts, HEADERS)


def ticker_record(seq: int, ts: int) -> KafkaRecord:
    return KafkaRecord("ticker", b"ETH-USD", ticker_frame("ETH-USD", "2026-11-24T23:50:00Z", seq=seq).encode(), ts,
                       HEADERS)


def make_sink(producer, **kw) -> KafkaSink:
    return KafkaSink("broker:9092", producer=producer, **kw)


def test_drop_mode_refuses_beyond_the_bound_and_reports_exactly_what_was_lost(caplog):
    producer = HeldProducer()
    sink = make_sink(producer, max_buffered_records=5, when_full="drop", track_latency=True)
    base = 1_795_000_000_000
    results = []
    for i in range(5):  # the broker does not answer: these wait in the buffer
        results.append(sink.send(trade_record(1000 + i, i, base + i), t0_ns=time.monotonic_ns()))
    with caplog.at_level(logging.ERROR, logger="producer.kafka_sink"):
        for i in range(5, 9):  # buffer full: lost, and accounted for
            results.append(sink.send(trade_record(1000 + i, i, base + i)))
        results.append(sink.send(ticker_record(9, base + 9)))
        assert results == [True] * 5 + [False] * 5
        assert (sink.stats.in_flight, sink.stats.dropped, sink.stats.lost) == (5, 5, 5)
        assert "buffer full: 5 records" in caplog.text and "dropping new records" in caplog.text
        sink.poll()  # still full: the episode is not over, no report yet
        assert "LOST" not in caplog.text
        producer.ack()
        sink.poll()
    assert (sink.stats.acked, sink.stats.in_flight) == (5, 0)
    assert sink.latency.count == 5
    report = [r.message for r in caplog.records if r.message.startswith("LOST")]
    assert report == [(
        "LOST 5 Kafka records (buffer_full 5); ingest times 2026-11-18T11:06:40.005Z .. 2026-11-18T11:06:40.009Z; "
        "ticker ETH-USD: 1 records; trades BTC-USD: 4 records, 4 trades, trade_id 1005..1008; "
        "sequence_num 5..9 on connection conn-9"
    )]
    assert dict(sink.losses.by_reason) == {"buffer_full": 5}
    assert [s[3] for s in producer.sent] == [base + i for i in range(5)]  # the first five went to Kafka
    assert sink.send(trade_record(2000, 10, base + 10))  # room again


def test_byte_bound_counts_value_bytes():
    producer = HeldProducer()
    rec = trade_record(1, 1, 0)
    sink = make_sink(producer, max_buffered_records=1000, max_buffered_bytes=3 * len(rec.value), when_full="drop")
    assert [sink.send(trade_record(i, i, 0)) for i in range(4)] == [True, True, True, False]
    assert sink.stats.in_flight_bytes == 3 * len(rec.value)


def test_block_mode_waits_for_room_and_loses_nothing():
    producer = HeldProducer()
    sink = make_sink(producer, max_buffered_records=3, when_full="block")
    for i in range(3):
        sink.send(trade_record(i, i, 0))
    acker = threading.Timer(0.3, producer.ack)
    acker.start()
    t0 = time.monotonic()
    assert sink.send(trade_record(3, 3, 0))  # waits until the broker acknowledges
    assert time.monotonic() - t0 >= 0.25
    assert (sink.stats.sent, sink.stats.lost) == (4, 0)


def test_kafka_errors_are_losses_with_reason(caplog):
    producer = HeldProducer()
    sink = make_sink(producer, when_full="drop")
    for i in range(3):
        sink.send(trade_record(500 + i, i, 1_795_000_000_000))
    with caplog.at_level(logging.ERROR, logger="producer.kafka_sink"):
        producer.fail(RuntimeError("MessageSizeTooLarge"))
        sink.poll()
    assert (sink.stats.failed, sink.stats.in_flight) == (3, 0)
    assert "Kafka send failed (kafka_error)" in caplog.text
    assert "LOST 3 Kafka records (kafka_error 3)" in caplog.text and "trade_id 500..502" in caplog.text


def test_records_unacknowledged_at_close_are_reported_lost(caplog):
    producer = HeldProducer()
    sink = make_sink(producer, when_full="drop")
    for i in range(2):
        sink.send(trade_record(700 + i, i, 1_795_000_000_000))
    with caplog.at_level(logging.ERROR, logger="producer.kafka_sink"):
        sink.close(timeout_s=0.1)
    assert producer.closed
    assert "did not acknowledge 2 records" in caplog.text
    assert "LOST 2 Kafka records (not_delivered_at_exit 2)" in caplog.text


def test_stalled_broker_is_logged_while_buffering_and_when_it_recovers(caplog):
    producer = HeldProducer()
    sink = make_sink(producer, when_full="drop", stall_warning_s=0.2)
    sink.send(trade_record(1, 1, 0))
    with caplog.at_level(logging.WARNING, logger="producer.kafka_sink"):
        time.sleep(0.25)
        sink.poll()
        assert "has not acknowledged anything" in caplog.text and "buffering 1 records" in caplog.text
        producer.ack()
        sink.poll()
    assert "acknowledges again" in caplog.text


def test_client_side_refusal_is_a_loss_not_a_crash():
    class Refusing(HeldProducer):
        def send(self, *a, **k):
            raise ValueError("record too large")

    sink = make_sink(Refusing(), when_full="drop")
    assert sink.send(trade_record(1, 1, 0)) is False
    assert dict(sink.losses.by_reason) == {"send_error": 1}


def test_when_full_must_be_known():
    with pytest.raises(ValueError):
        make_sink(HeldProducer(), when_full="sometimes")
