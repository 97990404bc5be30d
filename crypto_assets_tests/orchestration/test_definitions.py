"""The code location loads with every asset, partition definition and resource."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey

from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.definitions import build_definitions
from crypto_assets_tests.conftest import REPO

# What each asset is (key, group, deps, partitions, checks, kinds, owners) is held by the generated
# snapshot of test_asset_specs.py; these tests hold what the snapshot cannot show.


def test_definitions_bind_every_resource_the_assets_need():
    defs = build_definitions(Settings.from_env(environ={}))
    assert set(defs.resources) >= {"spark", "kafka", "lake", "compute"}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        assert assets_def.required_resource_keys - {"io_manager"} <= set(defs.resources), assets_def.keys


def test_the_compute_resource_is_chosen_by_the_setting(tmp_path):
    """One mapping binds `compute` per CRYPTO_COMPUTE; the assets ask for `compute`, never for a particular one."""
    from crypto_assets.orchestration.glue import GlueCompute
    from crypto_assets.orchestration.resources.compute import LocalCompute

    local = build_definitions(Settings.from_env(environ={}))
    glue = build_definitions(Settings.from_env(environ={"CRYPTO_COMPUTE": "glue", "CRYPTO_GLUE_JOB_PREFIX": "lh",
                                                        "CRYPTO_LAKE_ROOT": str(tmp_path / "lake")}))
    assert type(local.resources["compute"]) is LocalCompute
    assert type(glue.resources["compute"]) is GlueCompute
    bound = glue.resources["compute"]
    assert (bound.job_prefix, bound.lake.root) == ("lh", str(tmp_path / "lake"))
    for defs in (local, glue):
        for key in ("bronze_trades", "bronze_ticker", "silver_trades", "silver_ticker", "gold_features"):
            needs = defs.get_assets_def(key).required_resource_keys - {"io_manager"}
            assert needs == {"compute", "lake"}, key


def test_partitions_include_today_and_start_at_first_date():
    defs = build_definitions(Settings.from_env(environ={}, first_date="2025-06-01"))
    pd = defs.resolve_asset_graph().get(AssetKey("bronze_trades")).partitions_def
    keys = pd.get_partition_keys()
    from datetime import datetime, timezone

    assert keys[0] == "2025-06-01"
    assert keys[-1] == datetime.now(timezone.utc).date().isoformat()


def test_partitions_start_at_the_lakes_first_bronze_day_or_today(tmp_path):
    """Not years of empty partitions: a new lake starts today, a lake with data at its first Bronze day."""
    from datetime import date, datetime, timezone

    import pyarrow as pa

    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake.snapshots import Provenance, append
    from crypto_assets.lake.store import Lake

    settings = Settings.from_env(environ={}, lake_root=str(tmp_path / "lake"))
    today = datetime.now(timezone.utc).date().isoformat()

    def first_keys(s) -> tuple[str, str]:
        graph = build_definitions(s).resolve_asset_graph()
        bronze = graph.get(AssetKey("bronze_trades")).partitions_def.get_partition_keys()[0]
        silver = graph.get(AssetKey("silver_trades")).partitions_def.get_partitions_def_for_dimension("event_date")
        return bronze, silver.get_partition_keys()[0]

    assert first_keys(settings) == (today, today)
    for kind, day in (("ticker", "2026-11-20"), ("trades", "2026-11-22")):  # one real Bronze row each
        t = bronze_table(kind)
        row = {"topic": "x", "partition": 0, "offset": 1, "ingest_date": date.fromisoformat(day)}
        append(Lake.from_settings(settings).catalog_config, t, pa.Table.from_pylist([row], schema=t.schema),
               Provenance(f"bronze_{kind}", day, "test"))
    assert first_keys(settings) == ("2026-11-20", "2026-11-20")
    assert first_keys(Settings.from_env(environ={"CRYPTO_FIRST_DATE": "2026-11-01"}, lake_root=str(tmp_path / "lake"))) \
        == ("2026-11-01", "2026-11-01")


def test_dagster_loads_the_workspace_from_the_repository_root():
    env = {**os.environ, "DAGSTER_HOME": str(REPO)}
    dagster = Path(sys.executable).parent / "dagster"
    res = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_feature_catalog_doc_is_generated_from_the_registry():
    from crypto_assets.contracts.gold_features import catalog_markdown

    doc = (REPO / "docs" / "feature_catalog.md").read_text()
    assert doc == catalog_markdown(), "regenerate with: crypto-pipeline docs"
    assert "docs/feature_catalog.md" in (REPO / "README.md").read_text()


def test_automation_is_declared_and_follows_the_automation_setting():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    off = build_definitions(Settings.from_env(environ={}))
    assert sorted(s.name for s in off.sensors) == ["bronze_to_silver", "silver_to_gold"]
    # The Bronze batch cadence, and the lake's maintenance (compaction, snapshot expiry) on its own cron.
    assert [s.name for s in off.schedules] == ["bronze_batch_cadence", "lake_maintenance_schedule"]
    assert all(s.default_status == DefaultSensorStatus.STOPPED for s in off.sensors)
    assert all(s.default_status == DefaultScheduleStatus.STOPPED for s in off.schedules)
    on = build_definitions(Settings.from_env(environ={"CRYPTO_AUTOMATION": "on"}))
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in on.sensors)
    assert all(s.default_status == DefaultScheduleStatus.RUNNING for s in on.schedules)
    streaming = build_definitions(Settings.from_env(environ={"CRYPTO_AUTOMATION": "on", "CRYPTO_BRONZE_MODE": "stream"}))
    status = {s.name: s.default_status for s in streaming.schedules}
    assert status["bronze_batch_cadence"] == DefaultScheduleStatus.STOPPED  # the stream lands Bronze
    assert status["lake_maintenance_schedule"] == DefaultScheduleStatus.RUNNING  # its commits need expiring most
    graph = off.resolve_asset_graph()
    for key, minutes in (("silver_trades", 6), ("silver_ticker", 6), ("gold_features", 5)):
        policy = graph.get(AssetKey(key)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == minutes * 60


def test_batch_schedule_closes_yesterday_just_after_midnight():
    from datetime import datetime, timezone

    from crypto_assets.orchestration.bronze_schedule import bronze_days_due

    assert bronze_days_due(datetime(2026, 3, 2, 0, 5, tzinfo=timezone.utc)) == ["2026-03-01", "2026-03-02"]
    assert bronze_days_due(datetime(2026, 3, 2, 0, 20, tzinfo=timezone.utc)) == ["2026-03-02"]


def test_partition_keys_are_built_and_parsed_by_one_pair_of_functions():
    from datetime import date

    import pytest

    from crypto_assets.orchestration.partitions import event_date_product_partitions, parse_partition_key, partition_key

    key = partition_key(date(2026, 1, 2), "BTC-USD")
    assert parse_partition_key(key) == (date(2026, 1, 2), "BTC-USD")
    assert parse_partition_key(str(key)) == (date(2026, 1, 2), "BTC-USD")  # as Dagster stores it
    pd = event_date_product_partitions(Settings.from_env(environ={}, first_date="2026-01-01"))
    assert parse_partition_key(pd.get_partition_key_from_str(str(key))) == (date(2026, 1, 2), "BTC-USD")
    with pytest.raises(ValueError, match="not an \\(event_date, product_id\\) partition key"):
        parse_partition_key("2026-01-02")
