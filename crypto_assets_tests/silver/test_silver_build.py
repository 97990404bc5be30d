"""`build_silver` on Bronze made by the real Bronze transform from every kind of record Silver has a rule for:
what it writes, what it counts, and that Bronze and Silver agree on which product owns a Bronze row."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import quarantine_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.store import Lake
from crypto_assets.silver.build import build_silver
from crypto_assets_tests.silver.bronze_writer import append_bronze
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
    lake = Lake(str(root / "lake"))
    append_bronze(lake, bronze(spark, records, kind), kind, root)
    return lake


@pytest.mark.parametrize("kind, records", [("trades", trade_records()), ("ticker", ticker_records())])
def test_build_writes_and_reports_every_case(spark, tmp_path, kind, records):
    products = ["BTC-USD", "ETH-USD", "UNKNOWN"]
    lake = _bronze_lake(spark, tmp_path, kind, records)
    stats = build_silver(lake, kind, DAY, products, RULES)
    for p in products:
        s = stats[p]
        assert s.reconciles, p
        for tabledef, snapshot in ((silver_table_def(kind), s.snapshot_id),
                                   (quarantine_table_def(kind), s.quarantine_snapshot_id)):
            _, files = snapshots.snapshot_files(lake.table(tabledef), {"product_id": p, "event_date": DAY}, snapshot)
            for file in files:  # the files as committed, in the schema Silver declares
                assert [(f.name, f.type) for f in pq.read_schema(file.path)] == [
                    (f.name, f.type) for f in tabledef.schema], file
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


def test_rewrite_keeps_the_earlier_snapshot_readable_and_summaries_name_their_inputs(spark, tmp_path):
    """Silver (D, BTC-USD) rebuilt after more Bronze arrived: the first snapshot still reads the earlier rows
    (time travel), and each commit's summary names the asset, partition, run id and Bronze snapshot read."""
    from crypto_assets.lake.snapshots import Provenance

    first = [("BTC-USD", frame(trade(tid="1"), trade(tid="2")), "2026-03-10T12:00:00.3Z")]
    lake = _bronze_lake(spark, tmp_path, "trades", first)
    one = build_silver(lake, "trades", DAY, ["BTC-USD"], RULES, run_id="run-1")["BTC-USD"]
    bronze_after = append_bronze(lake, bronze(spark, [("BTC-USD", frame(trade(tid="3")), "2026-03-10T13:00:00Z")],
                                              "trades"), "trades", tmp_path)
    two = build_silver(lake, "trades", DAY, ["BTC-USD"], RULES, run_id="run-2")["BTC-USD"]
    assert (one.rows, two.rows) == (2, 3) and one.snapshot_id != two.snapshot_id

    table = lake.table(silver_table_def("trades"))
    where = {"product_id": "BTC-USD", "event_date": DAY}
    ids = lambda snap: sorted(snapshots.read(table, where, ["trade_id"], snapshot=snap).column("trade_id").to_pylist())  # noqa: E731
    assert ids(one.snapshot_id) == [1, 2] and ids(two.snapshot_id) == ids(None) == [1, 2, 3]

    recorded = Provenance.of(table.snapshot_by_id(two.snapshot_id))
    assert (recorded.asset, recorded.partition, recorded.run_id) == ("silver_trades", "2026-03-10|BTC-USD", "run-2")
    assert recorded.upstream == {"bronze.kafka_trades": bronze_after} == {"bronze.kafka_trades": two.bronze_snapshot_id}
    assert Provenance.of(table.snapshot_by_id(one.snapshot_id)).upstream["bronze.kafka_trades"] == one.bronze_snapshot_id
    # The first run rebuilt the partition (no state yet), the second appended the one new trade; neither had
    # anything to quarantine: no quarantine commit (nothing to delete, nothing to add).
    assert (one.mode, two.mode, two.bronze_rows_new, two.rows_appended) == ("full", "incremental", 1, 1)
    assert two.quarantine_snapshot_id is None


def test_a_partition_that_became_empty_ends_empty(spark, tmp_path):
    """Bronze of the window rewritten without BTC-USD's trades: Silver's partition is deleted by the commit."""
    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake.snapshots import Provenance

    lake = _bronze_lake(spark, tmp_path, "trades", [("BTC-USD", frame(trade(tid="1")), "2026-03-10T12:00:00.3Z")])
    assert build_silver(lake, "trades", DAY, ["BTC-USD"], RULES)["BTC-USD"].rows == 1
    snapshots.replace(lake.catalog_config, bronze_table("trades"), bronze_table("trades").schema.empty_table(),
                      {"ingest_date": DAY}, Provenance(asset="bronze_trades"))
    s = build_silver(lake, "trades", DAY, ["BTC-USD"], RULES, require_bronze_day=False)["BTC-USD"]
    assert s.rows == 0 and s.reconciles
    assert snapshots.read(lake.table(silver_table_def("trades")), {"product_id": "BTC-USD"}).num_rows == 0
