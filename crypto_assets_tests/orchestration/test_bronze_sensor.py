"""Bronze -> Silver sensor on a real instance, broker and Spark: exact run requests, cursor, late data, new products."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, materialize

from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import DATA_OPERATIONS, Provenance, snapshots_after
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_definitions, build_resources
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.tools.inprocess import apply, execute, requested, tick
from crypto_assets_tests.support.records import send_records, ticker_frame, trades_frame, ts

D1, D2 = "2026-06-01", "2026-06-02"


def temp_instance(path):
    path.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.local_temp(str(path))


@pytest.fixture
def instance(tmp_path):
    with temp_instance(tmp_path / "dagster") as inst:
        yield inst


def _send(settings, records):
    topic = {"trades": settings.trades_topic, "ticker": settings.ticker_topic}
    send_records(settings.kafka_bootstrap, [(topic[k], key, v, ts(when)) for k, key, v, when in records])


def _bronze(settings, instance, day):
    assert materialize(bronze_assets(settings), partition_key=day, resources=build_resources(settings),
                       instance=instance).success


def _sensor(settings):
    return build_definitions(settings).resolve_sensor_def("bronze_to_silver")


def test_new_bronze_requests_exactly_the_touched_silver_partitions_once(fresh_settings, instance):
    s = fresh_settings
    _send(s, [
        ("trades", "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D1}T10:00:00Z"), f"{D1}T10:00:00.5Z"),
        ("trades", "ETH-USD", trades_frame("ETH-USD", [7], f"{D1}T10:00:01Z"), f"{D1}T10:00:01.5Z"),
        ("ticker", "BTC-USD", ticker_frame("BTC-USD", f"{D1}T10:00:00Z"), f"{D1}T10:00:00.2Z"),
    ])
    _bronze(s, instance, D1)
    first = tick(_sensor(s), s, instance, None)
    assert requested(first) == [
        ("gold_candles_1h", f"{D1}|BTC-USD"),
        ("gold_candles_1h", f"{D1}|ETH-USD"),
        ("gold_candles_1m", f"{D1}|BTC-USD"),
        ("gold_candles_1m", f"{D1}|ETH-USD"),
        ("gold_features", f"{D1}|BTC-USD"),
        ("gold_features", f"{D1}|ETH-USD"),
        ("silver_ticker", f"{D1}|BTC-USD"),
        ("silver_trades", f"{D1}|BTC-USD"),
        ("silver_trades", f"{D1}|ETH-USD"),
    ]
    # One run per Silver partition: BTC's trades and ticker share a run, and Gold and the candles of the partition
    # follow Silver in that run (one process, no second sensor hop).
    candles = ["gold_candles_1m", "gold_candles_1h"]
    assert sorted([k.to_user_string() for k in r.asset_selection] for r in first.run_requests) == [
        ["silver_trades", "gold_features", *candles], ["silver_trades", "silver_ticker", "gold_features", *candles]]
    assert len({r.run_key for r in first.run_requests}) == 2
    assert not first.dynamic_partitions_requests  # the Bronze asset registered these products itself
    assert not first.asset_events  # batch writes are materializations of their own runs already

    second = tick(_sensor(s), s, instance, first.cursor)
    assert requested(second) == [] and second.cursor

    # Re-materializing Bronze with nothing new in Kafka adds nothing to read, so nothing is requested.
    _bronze(s, instance, D1)
    assert requested(tick(_sensor(s), s, instance, second.cursor)) == []

    # The requested runs succeed as the daemon would run them.
    outcomes = execute(first, s, instance)
    assert all(o.success for o in outcomes)


def test_late_data_requests_the_old_date_and_a_new_product_adds_a_partition(fresh_settings, instance, tmp_path):
    s = fresh_settings
    _send(s, [("trades", "BTC-USD", trades_frame("BTC-USD", [1], f"{D1}T12:00:00Z"), f"{D1}T12:00:00.5Z")])
    _bronze(s, instance, D1)
    cursor = tick(_sensor(s), s, instance, None).cursor

    # Arrives on D2: one BTC trade of D1 (late), one of D2, and a product never seen before.
    _send(s, [
        ("trades", "BTC-USD", trades_frame("BTC-USD", [2], f"{D1}T23:59:59.9Z"), f"{D2}T00:00:02Z"),
        ("trades", "BTC-USD", trades_frame("BTC-USD", [3], f"{D2}T00:01:00Z"), f"{D2}T00:01:00.5Z"),
        ("trades", "SOL-USD", trades_frame("SOL-USD", [50], f"{D2}T00:02:00Z"), f"{D2}T00:02:00.5Z"),
    ])
    _bronze(s, instance, D2)
    # The sensor's own instance has not seen SOL-USD (e.g. Bronze landed by the streaming job).
    with temp_instance(tmp_path / "sensor-instance") as sensor_instance:
        sensor_instance.add_dynamic_partitions("product_id", ["BTC-USD"])
        result = tick(_sensor(s), s, sensor_instance, cursor)
        assert [(k, p) for k, p in requested(result) if k.startswith("silver")] == [
            ("silver_trades", f"{D1}|BTC-USD"),  # the late trade's own day
            ("silver_trades", f"{D2}|BTC-USD"),
            ("silver_trades", f"{D2}|SOL-USD"),
        ]
        [add] = result.dynamic_partitions_requests
        assert add.partitions_def_name == "product_id" and list(add.partition_keys) == ["SOL-USD"]
        apply(result, sensor_instance)
        assert sorted(sensor_instance.get_dynamic_partitions("product_id")) == ["BTC-USD", "SOL-USD"]

    # Each batch commit says exactly what its rewrite added (offsets past what the day held).
    table = LakeResource.from_settings(s).table(bronze_table("trades"))
    writes = [Provenance.of(x) for x in snapshots_after(table, None)[0] if x.summary.operation.value in DATA_OPERATIONS]
    assert [(w.partition, w.extra["records"]) for w in writes] == [(D1, "1"), (D2, "3")]
    assert json.loads(writes[1].extra["partitions"]) == [[D1, "BTC-USD", 1], [D2, "BTC-USD", 1], [D2, "SOL-USD", 1]]


def test_cursor_survives_a_restart_and_a_lost_cursor_repeats_no_run(fresh_settings, instance):
    """A daemon restarted with its saved cursor sees nothing new; one that lost it asks for the
    same runs under the same run keys, which Dagster refuses to launch twice."""
    s = fresh_settings
    _send(s, [("trades", "BTC-USD", trades_frame("BTC-USD", [1], f"{D1}T10:00:00Z"), f"{D1}T10:00:00.5Z")])
    _bronze(s, instance, D1)
    first = tick(_sensor(s), s, instance, None)
    again = tick(_sensor(s), s, instance, None)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
    assert requested(tick(_sensor(s), s, instance, first.cursor)) == []


def test_stream_appends_request_their_partitions_and_a_compaction_requests_nothing(fresh_settings, instance, spark):
    from datetime import date

    from crypto_assets.bronze.build import read_kafka_window
    from crypto_assets.bronze.stream import BronzeBatchWriter
    from crypto_assets.bronze.transforms import kafka_to_bronze
    from crypto_assets.contracts.partitioning import SilverRules, day_bounds
    from crypto_assets.lake.spark import lake_session
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    s = fresh_settings
    lake, kafka = LakeResource.from_settings(s), KafkaResource.from_settings(s)
    session = lake_session(spark, lake.catalog_config)
    writer = BronzeBatchWriter(lake, "trades", SilverRules(), stream_id="stream-1")

    def micro_batch(batch_id, records):
        before = kafka.end_offsets(s.trades_topic)
        _send(s, records)
        window = kafka.offset_window(s.trades_topic, *day_bounds(date.fromisoformat(D1)))
        window = type(window)(window.topic, {p: before.get(p, 0) for p in window.end}, window.end, window.earliest,
                              window.latest)
        writer(kafka_to_bronze(read_kafka_window(session, kafka, window), "trades"), batch_id)

    def trade(product, tid, hour):
        return ("trades", product, trades_frame(product, [tid], f"{D1}T{hour:02d}:00:00Z"), f"{D1}T{hour:02d}:00:00.5Z")

    micro_batch(0, [trade("BTC-USD", 1, 1), trade("ETH-USD", 2, 1)])
    first = tick(_sensor(s), s, instance, None)
    assert [(k, p) for k, p in requested(first) if not k.startswith("gold_candles")] == [
        ("gold_features", f"{D1}|BTC-USD"), ("gold_features", f"{D1}|ETH-USD"),
        ("silver_trades", f"{D1}|BTC-USD"), ("silver_trades", f"{D1}|ETH-USD")]
    assert [e.metadata["batch_id"].value for e in first.asset_events] == [0]  # recorded as Bronze materializations
    table = lake.table(bronze_table("trades"))
    assert all(str(table.current_snapshot().snapshot_id) in r.run_key for r in first.run_requests)

    micro_batch(1, [trade("SOL-USD", 3, 2)])
    micro_batch(2, [trade("SOL-USD", 4, 3), trade("BTC-USD", 5, 3)])
    second = tick(_sensor(s), s, instance, first.cursor)
    assert [p for k, p in requested(second) if k == "silver_trades"] == [f"{D1}|BTC-USD", f"{D1}|SOL-USD"]
    assert [e.metadata["batch_id"].value for e in second.asset_events] == [1, 2]

    # Maintenance compacts the small files: a `replace` snapshot, no new data, no run.
    session.sql("CALL lake.system.rewrite_data_files(table => 'bronze.kafka_trades', "
                "options => map('min-input-files', '2'))").collect()
    table = lake.table(bronze_table("trades"))
    assert table.current_snapshot().summary.operation.value == "replace"
    third = tick(_sensor(s), s, instance, second.cursor)
    assert requested(third) == [] and not third.asset_events and third.skip_reason

    # Restarted with the returned cursor: nothing again; the cursor's snapshot expired: still nothing repeated.
    assert requested(tick(_sensor(s), s, instance, third.cursor)) == []
    cursor = json.loads(third.cursor)
    cursor["handled"]["trades"]["id"] = 1  # a snapshot id no longer in the table (expired)
    assert requested(tick(_sensor(s), s, instance, json.dumps(cursor))) == []
