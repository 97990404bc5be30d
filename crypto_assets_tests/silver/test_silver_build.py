"""`build_silver` on Bronze made by the real Bronze transform from every kind of record Silver has a rule for:
what it writes, what it counts, and that Bronze and Silver agree on which product owns a Bronze row."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.lake.store import Lake
from crypto_assets.silver.build import build_silver
from crypto_assets.silver.transforms import quarantine_schema, silver_schema
from crypto_assets_tests.silver.test_silver_transforms import bronze, frame, trade
from crypto_assets_tests.support.records import ticker_frame

DAY = date(2026, 3, 10)
RULES = SilverRules(allowed_lateness_days=1)


def trade_records():
    bad = [trade(tid="20", price="-1"), trade(tid="21", price="abc"), trade(tid="22", price="1e400"),
           trade(tid="23", size="0"), trade(tid="24", size=None), trade(tid="25", side="HOLD"), trade(tid="0x1A"),
           trade(tid="+42"), trade(tid="99999999999999999999"), trade(tid="26", time="yesterday"),
           trade(tid="27", time="2014-01-01T00:00:00Z"), trade(tid="28", time="2026-03-10T12:30:00Z"),
           trade(tid="29", time="2026-02-30T00:00:00Z")]
    eth = [trade(pid="ETH-USD", tid=str(i), price="3500.5", time=f"2026-03-10T13:00:0{i}.123456789Z") for i in range(5)]
    return [
        ("BTC-USD", frame(trade(tid="3"), trade(tid="2"), trade(tid="1")), "2026-03-10T12:00:00.3Z"),
        ("BTC-USD", frame(*bad), "2026-03-10T12:00:01Z"),
        ("BTC-USD", frame(trade(tid="2"), trade(tid="1"), event_type="snapshot"), "2026-03-10T12:05:00Z"),  # replay
        ("BTC-USD", frame(trade(tid="3", price="70000")), "2026-03-10T12:05:01Z"),  # conflicting duplicate
        ("BTC-USD", frame(trade(tid="4", price=" 1e5 ", side=" sell ", time="2026-03-10T23:59:59.999999Z")),
         "2026-03-11T00:00:30Z"),  # late, across midnight
        ("BTC-USD", frame(trade(tid="5", time="2026-03-11T00:00:01Z")), "2026-03-10T23:59:58Z"),  # next day's
        ("BTC-USD", frame(trade(tid="6", time="2026-03-10T00:00:01+01:00")), "2026-03-09T23:59:58Z"),  # D-1 file, day D-1
        ("BTC-USD", frame(trade(tid="7", time="2026-03-10T00:00:02Z")), "2026-03-09T23:50:00Z"),  # D-1, before the allowance
        ("BTC-USD", frame(trade(tid="8", time="2026-03-10T00:00:03Z")), "2026-03-09T23:59:00Z"),  # D-1, inside it
        ("BTC-USD", frame(trade(tid="9", time="2026-03-07T10:00:00Z")), "2026-03-10T00:00:01Z"),  # too late
        ("BTC-USD", "{not json", "2026-03-10T08:00:00Z"),
        ("BTC-USD", '{"channel":"market_trades","timestamp":"2026-03-10T08:00:00Z","events":[]}', "2026-03-10T08:00:01Z"),
        (None, "garbage", "2026-03-10T08:00:02Z"),
        ("BTC-USD", frame(trade(pid="BTC-USD\n", tid="10", time="2026-03-10T08:00:00Z")), "2026-03-10T08:00:03Z"),
        ("ETH-USD", frame(*eth), "2026-03-10T13:00:10Z"),
        ("ETH-USD", frame(*eth[:2], event_type="snapshot"), "2026-03-10T13:10:00Z"),
    ]


def ticker_records():
    base = ticker_frame("BTC-USD", "2026-03-10T05:35:45.435813533Z", seq=16)
    return [
        ("BTC-USD", base, "2026-03-10T05:35:45.5Z"),
        ("BTC-USD", base.replace('"sequence_num":16', '"sequence_num":99'), "2026-03-10T05:35:45.6Z"),  # same content
        ("BTC-USD", ticker_frame("BTC-USD", "2026-03-10T05:35:46Z", seq=17, price="64282"), "2026-03-10T05:35:46.1Z"),
        ("BTC-USD", base.replace('"best_ask":"64281.71"', '"best_ask":"-1"'), "2026-03-10T05:35:47Z"),
        ("BTC-USD", base.replace('"best_ask":"64281.71"', '"best_ask":"60000"'), "2026-03-10T05:35:48Z"),  # crossed
        ("BTC-USD", base.replace('"low_24_h":"63454",', ""), "2026-03-10T05:35:49Z"),
        ("BTC-USD", base.replace('"price":"64281.7"', '"price":"0"'), "2026-03-10T05:35:50Z"),
        ("BTC-USD", ticker_frame("BTC-USD", "2026-03-10 23:59:59.9+00:00", seq=18), "2026-03-11T00:00:02Z"),
        ("ETH-USD", ticker_frame("ETH-USD", "2026-03-10T05:35:45Z", seq=1, price="3500"), "2026-03-10T05:35:45.2Z"),
        ("ETH-USD", '{"channel":"ticker","timestamp":"2026-03-10T05:35:46Z","events":[{"type":"update","tickers":[]}]}',
         "2026-03-10T05:35:46.2Z"),
    ]


def _bronze_lake(spark, root, kind, records) -> Lake:
    lake = Lake(str(root))
    table = lake.table_path("bronze", "kafka_trades" if kind == "trades" else "kafka_ticker")
    bronze(spark, records, kind).write.mode("overwrite").partitionBy("ingest_date").parquet(table)
    return lake


@pytest.mark.parametrize("kind, records", [("trades", trade_records()), ("ticker", ticker_records())])
def test_build_writes_and_reports_every_case(spark, tmp_path, kind, records):
    products = ["BTC-USD", "ETH-USD", "UNKNOWN"]
    lake = _bronze_lake(spark, tmp_path, kind, records)
    stats = build_silver(lake, kind, DAY, products, RULES)
    for p in products:
        s = stats[p]
        assert s.reconciles, p
        for path, schema in ((s.path, silver_schema(kind, with_partition_columns=False)),
                             (s.quarantine_path, quarantine_schema(with_partition_columns=False))):
            for file, _ in lake.data_files(path):  # the files as written, in the schema Silver declares
                assert [(f.name, f.type) for f in pq.read_schema(file)] == [(f.name, f.type) for f in schema], file
    if kind == "trades":
        btc = stats["BTC-USD"]
        assert (btc.rows, btc.duplicates, btc.conflicting_duplicates) == (6, 3, 1)  # 1-4, 8, 10 (6 is D-1 23:00 UTC)
        assert btc.quarantined_by_reason == {
            "non_positive_price": 1, "bad_price": 2, "non_positive_size": 1, "bad_size": 1, "unknown_side": 1,
            "bad_trade_id": 3, "missing_event_time": 2, "event_time_before_listing": 1, "event_time_in_future": 1,
            "too_late": 1, "malformed_record": 2}
        assert (stats["ETH-USD"].rows, stats["ETH-USD"].duplicates) == (5, 2)
        assert stats["UNKNOWN"].quarantined_by_reason == {"malformed_record": 1}
    else:
        btc = stats["BTC-USD"]
        assert (btc.rows, btc.duplicates, btc.crossed_quotes) == (5, 1, 2)  # bid 64282 > ask 64281.71 too
        assert btc.quarantined_by_reason == {"bad_quote": 1, "non_positive_price": 1}
        assert stats["ETH-USD"].quarantined_by_reason == {"malformed_record": 1}


def test_spark_and_arrow_assign_the_same_owner_product(spark):
    """Bronze names the products of a day with `owner_product()` (a Spark column), and they become the
    product partitions; Silver reads and marks a product's rows by `owner_products` (Arrow): a row the two
    disagree on would belong to a product no run is registered for, or be read by the wrong run."""
    import pyarrow as pa

    from crypto_assets.contracts.ownership import owner_products
    from crypto_assets.contracts.partitioning import owner_product

    cases = [("BTC-USD", "ETH-USD"), ("BTC-USD\n", "ETH-USD"), ("BTC-USD\n", "ETH-USD\n"), ("btc-usd", "SOL-USD"),
             (None, "SOL-USD"), (None, None), ("", "garbage"), ("A-B-C-D", None), ("A-B-C-D-E", "X-Y"),
             ("ABCDEFGHIJKLMNOP-USD", "ABCDEFGHIJKLMNO-USD"), (" BTC-USD", "BTC-USD "), ("BTC_USD", "BTC-USDC")]
    got = [r["o"] for r in spark.createDataFrame(cases, "product_id string, key string")
           .select(owner_product().alias("o")).collect()]
    expected = owner_products(pa.array([p for p, _ in cases], pa.string()),
                              pa.array([k for _, k in cases], pa.string())).to_pylist()
    assert got == expected
    assert expected[:3] == ["BTC-USD", "ETH-USD", "UNKNOWN"]
