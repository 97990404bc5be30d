"""The Arrow Bronze path (kafka-python + Python, no JVM) against the Spark path: the same rows for every
malformed reason and odd value Spark's from_json meets, the same commit provenance, and a small Bronze
materialization through Dagster that starts no Spark session."""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import date

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize
from kafka import KafkaProducer

from crypto_assets.bronze.arrow_source import Ambiguous, bronze_rows, read_bronze_window
from crypto_assets.bronze.build import build_bronze_day
from crypto_assets.bronze.transforms import filter_ingest_day, kafka_to_bronze
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import bronze_schema, bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.orchestration.resources.spark import SparkResource
from crypto_assets_tests.support.records import ticker_frame, trades_frame, ts

DAY = "2026-04-07"
T = f"{DAY}T10:00:00Z"
Record = namedtuple("Record", "topic partition offset timestamp key value headers")
H = [("source", b"test"), ("connection_id", b"conn-1")]


def _env(events, channel="market_trades", **extra) -> bytes:
    return json.dumps({"channel": channel, "timestamp": T, "sequence_num": 3, "events": events, **extra}).encode()


def _trade(product="BTC-USD", **fields):
    return {"product_id": product, "trade_id": "1", "price": "1.5", "size": "2", "side": "BUY", "time": T, **fields}


# (key, value, headers): every malformed reason, and the values from_json turns into text.
TRADE_VALUES = [
    ("BTC-USD", trades_frame("BTC-USD", [1, 2], T).encode(), H),
    ("BTC-USD", None, H),  # empty_value (a tombstone)
    ("BTC-USD", b"", H),  # empty_value
    ("BTC-USD", b"   ", H),  # blank: from_json gives null, not a corrupt record -> missing_channel
    ("BTC-USD", b"\x00\xffgarbage{", H),  # not_json
    ("BTC-USD", b'{"channel":"market_trades"', H),  # not_json, everything null
    ("BTC-USD", b'[{"channel":"market_trades"}]', H),
    ("BTC-USD", b'"text"', H),
    ("BTC-USD", b"null", H),
    ("BTC-USD", b"123", H),
    ("BTC-USD", b'{"channel":"market_trades","sequence_num":01}', H),  # leading zero: syntax error
    ("BTC-USD", b'{"timestamp":"2026-04-07T10:00:00Z","events":[]}', H),  # missing_channel
    ("BTC-USD", ticker_frame("BTC-USD", T).encode(), H),  # unexpected_channel
    ("BTC-USD", b'{"channel":"market_trades","events":[{"type":"u","trades":[{"product_id":"BTC-USD"}]}]}', H),
    ("BTC-USD", b'{"channel":"market_trades","timestamp":"t","sequence_num":3}', H),  # missing_events
    ("BTC-USD", _env([]), H),
    ("BTC-USD", _env(None), H),
    ("BTC-USD", _env([{"type": "update", "trades": []}]), H),  # no_trades
    ("BTC-USD", _env([{"type": "update"}]), H),
    ("BTC-USD", _env([None, {"type": "update", "trades": [None]}]), H),  # missing_product_id, event_type null
    ("ETH-USD", _env([{"type": "update", "trades": [{"trade_id": "5"}]}]), H),  # missing_product_id, key as product
    ("BTC-USD", _env([{"type": "update", "trades": [_trade(), _trade("ETH-USD")]}]), H),  # mixed_products
    ("BTC-USD", _env([{"type": "update", "trades": [_trade(), None, _trade(price="2")]}]), H),
    ("BTC-USD", _env([{"type": "snapshot", "trades": [_trade()]}, {"type": "update", "trades": [_trade(trade_id="9")]}]), H),
    # Values of other JSON types in string fields: Jackson's text of them.
    ("BTC-USD", _env([{"type": "update", "trades": [_trade(trade_id=123, price=1.10, size=100.0, side=True, time=None)]}]), H),
    ("BTC-USD", _env([{"type": {"a": [1, 2.5, "x\u00e9\n/\"\\\u0001"], "b": None}, "trades": [_trade(size=[1, False])]}]), H),
    ("BTC-USD", b'{"channel":"market_trades","timestamp":0.001,"sequence_num":-0,"client_id":-0.0,'
                b'"events":[{"type":"u","trades":[{"product_id":"BTC-USD","price":12345678901234567890123,'
                b'"size":9999999.5,"trade_id":-1.0E3}]}]}', H),
    # sequence_num as Spark's try_cast gives it.
    *[("BTC-USD", _env([{"type": "update", "trades": [_trade()]}], sequence_num=s), H)
      for s in ["12", " 12 ", "+12", "12.9", "1e3", "x", 1.5, 99999999999999999999, "9223372036854775807", "\u000b7"]],
    # Partial results: a field of the wrong type flags the record, fields parsed around it stay.
    ("BTC-USD", b'{"channel":"market_trades","timestamp":"t","events":"abc"}', H),
    ("BTC-USD", b'{"events":[{"type":"u","trades":["x"]}],"channel":"market_trades","timestamp":"t"}', H),
    ("BTC-USD", b'{"channel":"market_trades","events":[{"type":"u","trades":{"product_id":"A"}}]}', H),
    ("BTC-USD", b'{"channel":"market_trades","events":[{"type":"u","trades":[{"product_id":"A"}]},{"type":"v","tickers":[1]}]}', H),
    ("BTC-USD", b'{"channel":"market_trades","events":[{"type":"u"}, 5]}', H),
    ("BTC-USD", b'{"events":"abc","channel":"market_trades","events":[{"type":"w","trades":[]}]}', H),
    ("BTC-USD", b'{"events":[{"type":"w","trades":[]}],"channel":"market_trades","events":"abc"}', H),
    ("BTC-USD", b'{"channel":"a","channel":"market_trades","_corrupt_record":"x","Timestamp":"t"}', H),
    # What follows the first JSON value is never read; leading whitespace is skipped.
    ("BTC-USD", trades_frame("BTC-USD", [3], T).encode() + b" trailing", H),
    ("BTC-USD", b" \n" + trades_frame("BTC-USD", [4], T).encode() + b"{}", H),
    ("BTC-USD", b"\xef\xbb\xbf" + trades_frame("BTC-USD", [5], T).encode(), H),  # BOM: not_json
    # Keys and headers: none, null values, repeated names (the first one counts).
    (None, trades_frame("SOL-USD", [6], T).encode(), []),
    ("BTC-USD", trades_frame("BTC-USD", [7], T).encode(), [("source", None), ("source", b"second"), ("x", b"\xc3\xa9")]),
]


def _records(values, day=DAY, topic="t"):
    out, when = [], int(ts(f"{day}T00:00:00Z").timestamp() * 1000)
    for i, (key, value, headers) in enumerate(values):
        out.append(Record(topic, i % 3, 100 + i, when + 1000 * i, key and key.encode(), value, headers))
    # Outside the day on both sides (kept out by the exact filter), and the day's last millisecond.
    out.append(Record(topic, 0, 90, when - 1, b"BTC-USD", trades_frame("BTC-USD", [8], T).encode(), H))
    out.append(Record(topic, 1, 91, when + 86_400_000, b"BTC-USD", trades_frame("BTC-USD", [9], T).encode(), H))
    out.append(Record(topic, 2, 92, when + 86_399_999, b"BTC-USD", trades_frame("BTC-USD", [10], T).encode(), H))
    return out


def _spark_rows(spark, records, kind, day) -> pa.Table:
    """What the Spark path's transform gives for the records (as Spark's Kafka source would present them)."""
    from datetime import datetime, timezone

    rows = [(r.topic, r.partition, r.offset, datetime.fromtimestamp(r.timestamp / 1000, timezone.utc), r.key, r.value,
             [(k, v) for k, v in r.headers]) for r in records]
    df = spark.createDataFrame(rows, "topic string, partition int, offset long, timestamp timestamp, key binary, "
                                     "value binary, headers array<struct<key:string,value:binary>>")
    out = kafka_to_bronze(filter_ingest_day(df, day), kind).orderBy("partition", "offset")
    return pa.Table.from_batches(out._collect_as_arrow(), schema=None).cast(bronze_schema(kind))


def _sorted(t: pa.Table) -> pa.Table:
    return t.sort_by([("partition", "ascending"), ("offset", "ascending")])


@pytest.mark.parametrize("kind", ["trades", "ticker"])
def test_arrow_rows_equal_spark_rows_for_every_odd_record(spark, kind):
    day = date.fromisoformat(DAY)
    values = TRADE_VALUES if kind == "trades" else [
        ("BTC-USD", ticker_frame("BTC-USD", T, seq=4).encode(), H),
        ("BTC-USD", trades_frame("BTC-USD", [1], T).encode(), H),  # unexpected_channel
        ("BTC-USD", json.dumps({"channel": "ticker", "timestamp": T, "events": [{"type": "update", "tickers": [
            {"product_id": "BTC-USD", "price": 1.25, "best_bid": None, "volume_24_h": {"v": 1}}]}]}).encode(), H),
        ("BTC-USD", json.dumps({"channel": "ticker", "timestamp": T, "events": [{"type": "update", "tickers": []}]}).encode(), H),
        *TRADE_VALUES[1:12],
    ]
    records = _records(values)
    arrow = bronze_rows(records, kind, day)
    expected = _spark_rows(spark, records, kind, day)
    assert arrow.schema == bronze_schema(kind)
    assert arrow.num_rows == len(values) + 1  # the day's last millisecond is in, its neighbours out
    for name in arrow.schema.names:
        got, want = _sorted(arrow)[name].to_pylist(), _sorted(expected)[name].to_pylist()
        assert got == want, f"column {name}: {[(g, w) for g, w in zip(got, want) if g != w][:3]}"
    if kind == "trades":  # every reason occurs
        assert set(arrow["malformed_reason"].to_pylist()) == {
            None, "empty_value", "not_json", "missing_channel", "unexpected_channel", "missing_timestamp",
            "missing_events", "no_trades", "missing_product_id", "mixed_products"}


@pytest.mark.parametrize("value", [
    b"{'channel':'market_trades'}", b'{"channel":"market_trades","timestamp":NaN}', b'{"channel":-INF}',
    b'{"channel":"market_trades","timestamp":1.0E23}', b'{"channel":"market_trades","timestamp":2.82879384806159E17}',
    b'{"channel":"market_trades","timestamp":"\xff"}', b'{"channel":"market_trades","timestamp":1e400}',
])
def test_records_spark_may_read_differently_are_left_to_spark(value):
    with pytest.raises(Ambiguous):
        bronze_rows(_records([("BTC-USD", value, H)]), "trades", date.fromisoformat(DAY))


def _send(bootstrap, topic, values, day=DAY):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    base = int(ts(f"{day}T00:00:00Z").timestamp() * 1000)
    for i, (key, value, headers) in enumerate(values):
        producer.send(topic, key=key and key.encode(), value=value, timestamp_ms=base + 1000 * i,
                      headers=[(k, b"" if v is None else v) for k, v in headers])  # kafka-python sends no null value
    producer.send(topic, key=b"BTC-USD", value=trades_frame("BTC-USD", [1], T).encode(), timestamp_ms=base - 1, headers=H)
    producer.flush()
    producer.close()


def _build(spark, settings, lake_root, limit):
    lake = LakeResource.from_settings(settings.replace(lake_root=lake_root))
    stats = build_bronze_day(lambda: spark if limit == 0 else pytest.fail("Spark asked for"),
                             KafkaResource.from_settings(settings), lake, "trades", date.fromisoformat(DAY),
                             SilverRules.from_settings(settings), arrow_max_records=limit)
    table = lake.table(bronze_table("trades"))
    rows = _sorted(snapshots.read(table, {"ingest_date": DAY}))
    return stats, rows, Provenance.of(table.snapshot_by_id(stats.snapshot_id))


def test_arrow_path_commits_what_the_spark_path_commits(fresh_settings, spark, tmp_path):
    s = fresh_settings
    _send(s.kafka_bootstrap, s.trades_topic, TRADE_VALUES)
    for round_ in range(2):  # the second time with more records: provenance names only what is new
        if round_:
            _send(s.kafka_bootstrap, s.trades_topic, [("ETH-USD", trades_frame("ETH-USD", [77], T).encode(), H)] * 3)
        a_stats, a_rows, a_prov = _build(spark, s, str(tmp_path / "arrow"), 10_000)
        s_stats, s_rows, s_prov = _build(spark, s, str(tmp_path / "spark"), 0)
        assert a_rows.num_rows == s_rows.num_rows == len(TRADE_VALUES) + 3 * round_
        for name in a_rows.schema.names:
            assert a_rows[name].to_pylist() == s_rows[name].to_pylist(), name
        for key in ("partitions", "offsets", "records", "writer"):
            assert a_prov.extra[key] == s_prov.extra[key], key
        assert json.loads(a_prov.extra["partitions"])
        for f in ("rows", "malformed", "malformed_by_reason", "offsets", "products", "new_rows", "kafka_window_records"):
            assert getattr(a_stats, f) == getattr(s_stats, f), f
        assert a_stats.files >= 1 and a_stats.bytes_written > 0


def test_small_bronze_materialization_starts_no_spark(fresh_settings, monkeypatch):
    s = fresh_settings
    _send(s.kafka_bootstrap, s.trades_topic, TRADE_VALUES[:5])

    def no_spark(self):
        raise AssertionError("a small Bronze day asked for a Spark session")

    monkeypatch.setattr(SparkResource, "get_session", no_spark)
    assets = [a for a in bronze_assets(s) if a.key.path[-1] == "bronze_trades"]
    result = materialize(assets, partition_key=DAY, resources=build_resources(s), instance=DagsterInstance.ephemeral())
    assert result.success
    table = LakeResource.from_settings(s).table(bronze_table("trades"))
    assert snapshots.read(table, {"ingest_date": DAY}).num_rows == 5


def test_read_bronze_window_leaves_an_ambiguous_window_to_spark(fresh_settings):
    s = fresh_settings
    _send(s.kafka_bootstrap, s.trades_topic, [("BTC-USD", b"{'channel':'market_trades'}", H)])
    kafka = KafkaResource.from_settings(s)
    from crypto_assets.contracts.partitioning import day_bounds

    window = kafka.offset_window(s.trades_topic, *day_bounds(date.fromisoformat(DAY)))
    assert window.record_count == 2
    assert read_bronze_window(kafka, window, "trades", date.fromisoformat(DAY)) is None
