"""Silver assets end to end on the real broker and Spark: two days x two products, checks, idempotence."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from dagster import AssetKey, DagsterInstance, MultiPartitionKey, asset, materialize

from crypto_assets.contracts.tables import quarantine_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.partitions import event_date_product_partitions
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets_tests.support.records import break_silver_dedup, send_records, ticker_frame, ts

D1, D2 = "2026-04-01", "2026-04-02"


def trades(pid, ids, time, event_type="update", price="100.5"):
    items = [{"product_id": pid, "trade_id": str(i), "price": price, "size": "0.25", "time": time, "side": "BUY"}
             for i in sorted(ids, reverse=True)]
    return json.dumps({"channel": "market_trades", "client_id": "", "timestamp": time, "sequence_num": 1,
                       "events": [{"type": event_type, "trades": items}]}, separators=(",", ":"))


@pytest.fixture(scope="module")
def pipeline_data():
    """(topic kind, key, value, ingest time) for two days and two products, with late, duplicate and bad items."""
    t = []
    for i in range(1, 6):
        t.append(("trades", "BTC-USD", trades("BTC-USD", [i], f"{D1}T10:00:0{i}Z"), f"{D1}T10:00:0{i}.5Z"))
    t.append(("trades", "BTC-USD", trades("BTC-USD", [6], f"{D1}T23:59:59.5Z"), f"{D2}T00:00:01Z"))  # late
    t.append(("trades", "BTC-USD", trades("BTC-USD", [7, 8, 9], f"{D2}T09:00:00Z"), f"{D2}T09:00:00.5Z"))
    t.append(("trades", "BTC-USD", trades("BTC-USD", [7, 8], f"{D2}T09:00:00Z", "snapshot"), f"{D2}T09:30:00Z"))
    t.append(("trades", "BTC-USD", trades("BTC-USD", [10], f"{D2}T09:31:00Z", price="-3"), f"{D2}T09:31:00.5Z"))
    t.append(("trades", "BTC-USD", "{garbage", f"{D2}T09:32:00Z"))
    t.append(("trades", "ETH-USD", trades("ETH-USD", [100, 101, 102, 103], f"{D1}T11:00:00Z"), f"{D1}T11:00:01Z"))
    t.append(("trades", "ETH-USD", trades("ETH-USD", [104, 105], f"{D2}T11:00:00Z"), f"{D2}T11:00:01Z"))
    for d in (D1, D2):
        for p in ("BTC-USD", "ETH-USD"):
            t.append(("ticker", p, ticker_frame(p, f"{d}T10:00:00.1Z"), f"{d}T10:00:00.2Z"))
            t.append(("ticker", p, ticker_frame(p, f"{d}T10:00:00.1Z"), f"{d}T10:00:00.3Z"))  # duplicate content
            t.append(("ticker", p, ticker_frame(p, f"{d}T10:00:01Z", price="101"), f"{d}T10:00:01.2Z"))
    return t


EXPECTED = {  # (kind, date, product) -> (silver rows, duplicates, quarantined by reason)
    ("trades", D1, "BTC-USD"): (6, 0, {}),
    ("trades", D2, "BTC-USD"): (3, 2, {"non_positive_price": 1, "malformed_record": 1}),
    ("trades", D1, "ETH-USD"): (4, 0, {}),
    ("trades", D2, "ETH-USD"): (2, 0, {}),
    ("ticker", D1, "BTC-USD"): (2, 1, {}),
    ("ticker", D2, "BTC-USD"): (2, 1, {}),
    ("ticker", D1, "ETH-USD"): (2, 1, {}),
    ("ticker", D2, "ETH-USD"): (2, 1, {}),
}


@pytest.fixture
def loaded(fresh_settings, pipeline_data):
    s = fresh_settings
    topic = {"trades": s.trades_topic, "ticker": s.ticker_topic}
    send_records(s.kafka_bootstrap, [(topic[k], key, v, ts(when)) for k, key, v, when in pipeline_data])
    instance = DagsterInstance.ephemeral()
    for day in (D1, D2):
        assert materialize(bronze_assets(s), partition_key=day, resources=build_resources(s), instance=instance).success
    return s, instance


def _silver(settings, instance, day, product, kinds=("trades", "ticker"), extra=(), raise_on_error=True):
    assets = [a for a in silver_assets(settings) if a.key.path[-1].split("_", 1)[1] in kinds]
    return materialize(
        [*assets, *extra], partition_key=MultiPartitionKey({"event_date": day, "product_id": product}),
        resources=build_resources(settings), instance=instance, raise_on_error=raise_on_error,
    )


def test_bronze_registers_products_as_partitions(loaded):
    _, instance = loaded
    assert sorted(instance.get_dynamic_partitions("product_id")) == ["BTC-USD", "ETH-USD"]


def test_two_days_two_products_exact_counts_checks_and_idempotence(loaded):
    s, instance = loaded
    for day in (D1, D2):
        for product in ("BTC-USD", "ETH-USD"):
            result = _silver(s, instance, day, product)
            checks = result.get_asset_check_evaluations()
            failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
            assert not failed, failed
            assert len(checks) == 10
            for mat in result.get_asset_materialization_events():
                kind = mat.asset_key.path[-1].split("_", 1)[1]
                md = {k: v.value for k, v in mat.materialization.metadata.items()}
                rows, dups, quarantined = EXPECTED[(kind, day, product)]
                assert (md["rows"], md["duplicates_removed"], md["quarantined_by_reason"]) == (rows, dups, quarantined)
                assert md["bronze_items_in_window"] == (
                    md["rows"] + md["duplicates_removed"] + md["quarantined"] + md["items_of_other_partitions"])

    lake = Lake.from_settings(s)
    trades = snapshots.read(lake.table(silver_table_def("trades"))).to_pylist()
    assert len({(r["product_id"], r["trade_id"]) for r in trades}) == len(trades)
    by_part = Counter((r["product_id"], r["event_date"].isoformat()) for r in trades)
    assert by_part == {("BTC-USD", D1): 6, ("BTC-USD", D2): 3, ("ETH-USD", D1): 4, ("ETH-USD", D2): 2}
    late = next(r for r in trades if r["trade_id"] == 6)
    assert late["event_date"].isoformat() == D1 and late["ingest_date"].isoformat() == D2

    def rows(tabledef):
        return sorted(map(str, snapshots.read(lake.table(tabledef)).to_pylist()))

    before, q_before = rows(silver_table_def("trades")), rows(quarantine_table_def("trades"))
    _silver(s, instance, D2, "BTC-USD")
    assert rows(silver_table_def("trades")) == before
    assert rows(quarantine_table_def("trades")) == q_before


def test_failing_blocking_check_stops_downstream_in_the_same_run(loaded, monkeypatch):
    s, instance = loaded
    break_silver_dedup(monkeypatch)
    ran = []

    @asset(deps=[AssetKey("silver_trades")], partitions_def=event_date_product_partitions(s))
    def downstream_of_silver():
        ran.append(True)

    result = _silver(s, instance, D2, "BTC-USD", kinds=("trades",), extra=[downstream_of_silver], raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["unique_trade_id"] is False
    assert ran == []
    assert not any(m.asset_key == downstream_of_silver.key for m in result.get_asset_materialization_events())


def test_missing_bronze_partition_is_a_clear_failure(fresh_settings):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("product_id", ["BTC-USD"])
    result = _silver(fresh_settings, instance, "2026-05-05", "BTC-USD", kinds=("trades",), raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert "Bronze kafka_trades ingest_date=2026-05-05 has not been written yet" in message
    assert "materialize bronze_trades for 2026-05-05 first" in message


def test_bronze_materialized_but_empty_gives_empty_silver(fresh_settings):
    instance = DagsterInstance.ephemeral()
    s = fresh_settings
    assert materialize(bronze_assets(s)[:1], partition_key="2026-05-06", resources=build_resources(s), instance=instance).success
    instance.add_dynamic_partitions("product_id", ["BTC-USD"])
    result = _silver(s, instance, "2026-05-06", "BTC-USD", kinds=("trades",))
    md = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert md["rows"] == 0 and md["quarantined"] == 0
