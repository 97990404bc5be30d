"""Bronze -> Silver sensor on a real instance, broker and Spark: exact run requests, cursor, late data, new products."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, materialize

from crypto_assets.lake.commits import list_commit_names, read_commit
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
        ("gold_features", f"{D1}|BTC-USD"),
        ("gold_features", f"{D1}|ETH-USD"),
        ("silver_ticker", f"{D1}|BTC-USD"),
        ("silver_trades", f"{D1}|BTC-USD"),
        ("silver_trades", f"{D1}|ETH-USD"),
    ]
    # One run per Silver partition: BTC's trades and ticker share a run, and Gold of the partition follows
    # Silver in that run (one process, no second sensor hop).
    assert sorted([k.to_user_string() for k in r.asset_selection] for r in first.run_requests) == [
        ["silver_trades", "gold_features"], ["silver_trades", "silver_ticker", "gold_features"]]
    assert len({r.run_key for r in first.run_requests}) == 2
    assert not first.dynamic_partitions_requests  # the Bronze asset registered these products itself
    assert not first.asset_events  # batch writes are materializations of their own runs already

    second = tick(_sensor(s), s, instance, first.cursor)
    assert requested(second) == [] and second.cursor

    # Re-materializing Bronze with nothing new in Kafka commits nothing, so nothing is requested.
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

    # The batch commit says exactly what the rewrite added (offsets past what the day held).
    lake = LakeResource.from_settings(s)
    commits = [read_commit(lake, "trades", n) for n in list_commit_names(lake, "trades")]
    assert [c.rows for c in commits] == [1, 3]
    assert commits[1].partitions == [[D1, "BTC-USD", 1], [D2, "BTC-USD", 1], [D2, "SOL-USD", 1]]


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
