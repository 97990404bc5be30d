"""The lake maintenance job through Dagster (every table's op, observations of the assets) and its schedule
(no second run while one is in progress)."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import DagsterRun, DagsterRunStatus, build_schedule_context, instance_for_test

from crypto_assets.contracts.tables import TABLES, silver_table_def
from crypto_assets.lake.snapshots import Provenance, append, read, replace, snapshot_files
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.maintenance import JOB_NAME, build_maintenance_job, build_maintenance_schedule
from crypto_assets_tests.lake.test_catalog import DAY, trades


def test_the_maintenance_job_compacts_every_table_and_observes_their_assets(spark, base_settings, tmp_path):
    settings = base_settings.replace(lake_root=str(tmp_path / "lake"))
    lake = Lake.from_settings(settings)
    t = silver_table_def("trades")
    for i in range(6):
        append(lake.catalog_config, t, trades(10, tag=i), Provenance("silver_trades", run_id=str(i)))
    # A partition written as the steps write (files of our own, registered by add_files: no field ids).
    replace(lake.catalog_config, t, trades(7, "ETH-USD", tag=9), {"product_id": "ETH-USD", "event_date": DAY},
            Provenance("silver_trades", run_id="r"))
    for i in range(5):  # then appends to it (pyiceberg's writer: field ids), so compaction mixes both kinds
        append(lake.catalog_config, t, trades(3, "ETH-USD", tag=10 + i), Provenance("silver_trades", run_id=f"e{i}"))
    before = read(lake.table(t)).num_rows
    resources = build_resources(settings)
    result = build_maintenance_job(settings).execute_in_process(resources={"compute": resources["compute"]})
    assert result.success
    assert len(result.get_step_success_events()) == len(TABLES)
    table = lake.table(t)
    assert table.current_snapshot().summary.operation.value == "replace"
    assert read(table).num_rows == before == 60 + 7 + 15
    eth = read(table, {"product_id": "ETH-USD"}, ["price"]).column("price").to_pylist()
    assert sorted(eth) == [9.0] * 7 + [float(10 + i) for i in range(5) for _ in range(3)]
    assert all(f.records in (60, 22) for f in snapshot_files(table, {"event_date": DAY})[1])  # one file each
    observed = {e.asset_observation_data.asset_observation.asset_key.to_user_string()
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert observed == {"bronze_trades", "bronze_ticker", "silver_trades", "silver_ticker", "gold_features",
                        "gold_candles_1m", "gold_candles_1h"}


def test_the_schedule_waits_for_a_maintenance_run_in_progress(base_settings):
    settings = base_settings.replace(maintenance_cron="*/15 * * * *")
    schedule = build_maintenance_schedule(settings, build_maintenance_job(settings))
    when = datetime(2026, 12, 2, 12, 15, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        requests = schedule.evaluate_tick(build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert [r.run_key for r in requests.run_requests] == [f"maintenance:{when.isoformat()}"]
        instance.add_run(DagsterRun(job_name=JOB_NAME, run_id="a" * 36, status=DagsterRunStatus.STARTED))
        skipped = schedule.evaluate_tick(build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert not skipped.run_requests and "still in progress" in skipped.skip_message
