"""Silver's marking (`mark_table`) on small hand-built Bronze: typing, every reason code, dedup, lateness,
and that Bronze's ANSI setting cannot change a result. The Bronze rows come from the real Bronze transform
(Spark), written as Parquet and read back with Arrow, as Silver reads them."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crypto_assets.bronze.transforms import kafka_to_bronze
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.silver.transforms import mark_table, quarantine_table, silver_table
from crypto_assets_tests.support.records import ticker_frame, ts

KAFKA_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp, "
    "timestampType int, headers array<struct<key:string,value:binary>>"
)
RULES = SilverRules(allowed_lateness_days=1)
UTC = timezone.utc


def bronze(spark, records, kind="trades"):
    """records: (key, value, ingest_time) -> a Bronze DataFrame through the real Bronze transform."""
    rows = [
        (k.encode() if k else None, v.encode() if isinstance(v, str) else v, f"crypto.{kind}.raw", 0, i,
         ts(when).replace(tzinfo=None), 0, [("source", b"test"), ("connection_id", b"c1")])
        for i, (k, v, when) in enumerate(records)
    ]
    return kafka_to_bronze(spark.createDataFrame(rows, KAFKA_SCHEMA), kind)


def marked(spark, folder, records, kind="trades") -> pa.Table:
    """`mark_table` on the Bronze rows of `records`, written by Spark and read back with Arrow."""
    path = folder / f"bronze-{uuid.uuid4().hex}"
    bronze(spark, records, kind).coalesce(1).write.parquet(str(path))
    return mark_table(pq.read_table(path), kind, RULES)


def trade(pid="BTC-USD", tid="100", price="64589.41", size="0.5", side="BUY", time="2026-03-10T12:00:00.123456Z"):
    return {"product_id": pid, "trade_id": tid, "price": price, "size": size, "time": time, "side": side}


def frame(*trades, event_type="update", when="2026-03-10T12:00:00.2Z"):
    return json.dumps({"channel": "market_trades", "client_id": "", "timestamp": when, "sequence_num": 5,
                       "events": [{"type": event_type, "trades": list(trades)}]}, separators=(",", ":"))


def test_typing_and_cleaning(spark, tmp_path):
    m = marked(spark, tmp_path, [("BTC-USD", frame(trade(side=" buy ", tid="00042")), "2026-03-10T12:00:00.3Z")])
    rows = silver_table(m, "trades")
    types = {f.name: f.type for f in rows.schema}
    assert types["trade_id"] == pa.int64() and types["trade_time"] == pa.timestamp("us", tz="UTC")
    assert types["price"] == types["size"] == types["notional"] == pa.float64()
    row = rows.to_pylist()[0]
    assert row["trade_id"] == 42 and row["side"] == "BUY"
    assert row["trade_time"] == datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)  # microseconds kept
    assert row["notional"] == pytest.approx(64589.41 * 0.5)
    assert (row["kafka_topic"], row["kafka_partition"], row["kafka_offset"], row["item_index"]) == (
        "crypto.trades.raw", 0, 0, 0)
    assert row["event_date"] == date(2026, 3, 10) and row["is_snapshot"] is False and row["source"] == "test"


@pytest.mark.parametrize("item, reason", [
    (trade(price="-1"), "non_positive_price"),
    (trade(price="0"), "non_positive_price"),
    (trade(price="abc"), "bad_price"),
    (trade(price="NaN"), "bad_price"),
    (trade(price="Infinity"), "bad_price"),
    (trade(size="0"), "non_positive_size"),
    (trade(size=None), "bad_size"),
    (trade(side="HOLD"), "unknown_side"),
    (trade(side=None), "unknown_side"),
    (trade(tid="12x"), "bad_trade_id"),
    (trade(tid="-5"), "bad_trade_id"),
    (trade(time="yesterday"), "missing_event_time"),
    (trade(time=None), "missing_event_time"),
    (trade(time="2014-01-01T00:00:00Z"), "event_time_before_listing"),
    (trade(time="2026-03-10T12:10:00Z"), "event_time_in_future"),  # ingested 12:00:00.3, skew 5 min
    (trade(pid="btc usd"), "bad_product_id"),
])
def test_every_validation_rule_has_its_reason(spark, tmp_path, item, reason):
    key = item["product_id"] if item["product_id"] == "BTC-USD" else None
    m = marked(spark, tmp_path, [(key, frame(item), "2026-03-10T12:00:00.3Z")])
    assert [(r["disposition"], r["reason"]) for r in m.to_pylist()] == [("quarantined", reason)]
    q = quarantine_table(m).to_pylist()[0]
    assert q["reason"] == reason and json.loads(q["item_json"])["trade_id"] == item["trade_id"]
    assert q["value"] is not None  # the raw Kafka record travels with it


def test_malformed_bronze_record_is_quarantined_with_bronze_reason(spark, tmp_path):
    q = quarantine_table(marked(spark, tmp_path, [("BTC-USD", "{not json", "2026-03-10T08:00:00Z")])).to_pylist()[0]
    assert (q["reason"], q["detail"], q["product_id"], q["event_date"]) == (
        "malformed_record", "not_json", "BTC-USD", date(2026, 3, 10))
    assert q["value"] == b"{not json"


def test_garbage_without_product_belongs_to_unknown_product(spark, tmp_path):
    m = marked(spark, tmp_path, [(None, "garbage", "2026-03-10T08:00:00Z")])
    assert [(r["product_id"], r["disposition"], r["reason"]) for r in m.to_pylist()] == [
        ("UNKNOWN", "quarantined", "malformed_record")]


def test_snapshot_replay_after_reconnect_is_a_duplicate_and_earliest_copy_wins(spark, tmp_path):
    t1, t2 = trade(tid="100"), trade(tid="101", time="2026-03-10T12:00:01Z")
    records = [
        ("BTC-USD", frame(t2, t1), "2026-03-10T12:00:02Z"),                          # live update
        ("BTC-USD", frame(t2, t1, event_type="snapshot"), "2026-03-10T12:05:00Z"),  # snapshot after reconnect
    ]
    m = marked(spark, tmp_path, records)
    assert Counter(m.column("disposition").to_pylist()) == {"silver": 2, "duplicate": 2}
    rows = sorted(silver_table(m, "trades").to_pylist(), key=lambda r: r["trade_id"])
    assert [r["kafka_offset"] for r in rows] == [0, 0] and not any(r["is_snapshot"] for r in rows)


def test_conflicting_content_still_dedups_on_trade_id(spark, tmp_path):
    records = [("BTC-USD", frame(trade(tid="7", price="1.0")), "2026-03-10T12:00:02Z"),
               ("BTC-USD", frame(trade(tid="7", price="2.0")), "2026-03-10T12:00:03Z")]
    rows = silver_table(marked(spark, tmp_path, records), "trades").to_pylist()
    assert [(r["trade_id"], r["price"]) for r in rows] == [(7, 1.0)]


def test_late_record_across_midnight_lands_in_its_event_day(spark, tmp_path):
    late = trade(tid="9", time="2026-03-10T23:59:59.999999Z")
    r = marked(spark, tmp_path, [("BTC-USD", frame(late), "2026-03-11T00:00:30Z")]).to_pylist()[0]
    assert (r["disposition"], r["event_date"], r["ingest_date"]) == ("silver", date(2026, 3, 10), date(2026, 3, 11))


def test_record_later_than_lateness_is_quarantined_by_its_ingest_day(spark, tmp_path):
    records = [("BTC-USD", frame(trade(time="2026-03-08T10:00:00Z")), "2026-03-10T00:00:01Z")]
    r = marked(spark, tmp_path, records).to_pylist()[0]
    assert (r["disposition"], r["reason"], r["event_date"]) == ("quarantined", "too_late", date(2026, 3, 10))


def test_event_a_moment_after_midnight_ingested_just_before_belongs_to_next_day(spark, tmp_path):
    early = trade(tid="3", time="2026-03-11T00:00:01Z")  # producer clock 3 s behind the exchange
    r = marked(spark, tmp_path, [("BTC-USD", frame(early), "2026-03-10T23:59:58Z")]).to_pylist()[0]
    assert (r["disposition"], r["event_date"], r["ingest_date"]) == ("silver", date(2026, 3, 11), date(2026, 3, 10))


def test_trade_id_is_a_64_bit_integer_ordered_numerically(spark, tmp_path):
    records = [("BTC-USD", frame(trade(tid="1000"), trade(tid="999"), trade(tid="9999999999")), "2026-03-10T12:00:02Z")]
    rows = silver_table(marked(spark, tmp_path, records), "trades").to_pylist()  # Silver's order: same time, by id
    assert [r["trade_id"] for r in rows] == [999, 1000, 9_999_999_999]


def test_ticker_typed_from_envelope_time_and_deduplicated_on_content(spark, tmp_path):
    f1 = ticker_frame("BTC-USD", "2026-03-10T05:35:45.435813533Z", seq=16)
    f1_other_conn = ticker_frame("BTC-USD", "2026-03-10T05:35:45.435813533Z", seq=99)  # same content, other seq
    f2 = ticker_frame("BTC-USD", "2026-03-10T05:35:46Z", seq=17, price="64282")
    m = marked(spark, tmp_path, [("BTC-USD", f1, "2026-03-10T05:35:45.5Z"),
                                 ("BTC-USD", f1_other_conn, "2026-03-10T05:35:45.6Z"),
                                 ("BTC-USD", f2, "2026-03-10T05:35:46.1Z")], "ticker")
    rows = silver_table(m, "ticker").to_pylist()  # Silver's order: by event time
    assert [(r["event_time"], r["price"]) for r in rows] == [
        (datetime(2026, 3, 10, 5, 35, 45, 435813, tzinfo=UTC), 64281.7),
        (datetime(2026, 3, 10, 5, 35, 46, tzinfo=UTC), 64282.0)]
    assert rows[0]["best_ask"] == 64281.71 and rows[0]["volume_24_h"] == 3974.98800786
    assert m.column("disposition").to_pylist().count("duplicate") == 1


def test_ticker_content_hash_tells_a_missing_field_from_a_shifted_one(spark, tmp_path):
    """Fields are hashed in schema order with a null marker: tickers that differ only in which
    field is missing, or in which field a value sits, are different content, not duplicates."""
    base = ticker_frame("BTC-USD", "2026-03-10T05:35:45Z")
    # Without a null marker both would hash "...63454..." in the same position.
    no_low = base.replace('"low_24_h":"63454",', "").replace('"high_24_h":"64727.27"', '"high_24_h":"63454"')
    no_high = base.replace('"high_24_h":"64727.27",', "")
    swapped = base.replace('"low_24_h":"63454"', '"low_24_h":"64727.27"').replace('"high_24_h":"64727.27"', '"high_24_h":"63454"')
    m = marked(spark, tmp_path, [("BTC-USD", f, f"2026-03-10T05:35:45.{i}Z")
                                 for i, f in enumerate([base, no_low, no_high, swapped, base])], "ticker")
    hashes = [r["content_hash"] for r in sorted(m.to_pylist(), key=lambda r: r["ingest_time"])]
    assert len(set(hashes[:4])) == 4 and hashes[4] == hashes[0]
    assert all(len(h) == 64 for h in hashes)  # hex SHA-256
    assert m.column("disposition").to_pylist().count("duplicate") == 1


def test_ticker_bad_quote_is_quarantined(spark, tmp_path):
    f = ticker_frame("BTC-USD", "2026-03-10T05:35:45Z").replace('"best_ask":"64281.71"', '"best_ask":"-1"')
    r = marked(spark, tmp_path, [("BTC-USD", f, "2026-03-10T05:35:45.5Z")], "ticker").to_pylist()[0]
    assert r["reason"] == "bad_quote"


def test_identical_with_ansi_on_and_off(spark, tmp_path):
    """Spark's ANSI mode changes how casts fail; Bronze (a Spark transform) must give Silver the same rows
    either way, garbage included."""
    records = [
        ("BTC-USD", frame(trade(tid="1"), trade(tid="x"), trade(price="1e400"), trade(size="--")), "2026-03-10T12:00:02Z"),
        ("BTC-USD", "[]", "2026-03-10T12:00:03Z"),
        ("BTC-USD", '{"channel":"market_trades","events":[]}', "2026-03-10T12:00:04Z"),
        ("ETH-USD", frame(trade(pid="ETH-USD", tid="99999999999999999999")), "2026-03-10T12:00:05Z"),
    ]
    results = []
    for ansi in ("true", "false"):
        spark.conf.set("spark.sql.ansi.enabled", ansi)
        try:
            results.append(sorted(map(str, marked(spark, tmp_path, records).to_pylist())))
        finally:
            spark.conf.set("spark.sql.ansi.enabled", "false")
    assert results[0] == results[1]
    assert len(results[0]) == 7  # 4 trade items + 3 records without items: nothing dropped
