"""The `gold_baseline_model` asset through Dagster on real Gold: near chance on a random walk with the
shuffled-target canary at 0.5, a saved model traceable to its Gold snapshot, a leaky feature caught by the
suspicious-score check, and bad windows ending the run with one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from dagster import DagsterInstance, materialize

from crypto_assets.contracts.gold_features import CATALOG_VERSION_KEY, FEATURE_CATALOG_VERSION
from crypto_assets.contracts.tables import gold_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.ml.baseline import auc, load_rows
from crypto_assets.ml.export import pin_window
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.ml import build_baseline_asset
from crypto_assets.tools.backfill import failure_line
from crypto_assets_tests.ml.conftest import build_lake


def _run(settings, day):
    result = materialize([build_baseline_asset(settings)], partition_key=day.isoformat(),
                         resources=build_resources(settings), instance=DagsterInstance.ephemeral(), raise_on_error=False)
    if not result.success:
        return result, None, None
    md = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    return result, md, checks


def test_a_random_walk_scores_near_chance_and_the_model_is_traceable_to_gold(gold_lake, base_settings):
    s = base_settings.replace(lake_root=gold_lake.root, baseline_train_days=3)
    day = gold_lake.days[-1]
    result, md, checks = _run(s, day)
    assert result.success, failure_line(result)
    assert checks["shuffled_target_canary"].passed and abs(float(md["shuffled_target_auc"]) - 0.5) <= 0.03
    assert checks["suspicious_score"].passed and 0.4 < float(md["auc"]) < 0.6
    assert md["train_days"] == [d.isoformat() for d in gold_lake.days[:3]] and md["test_day"] == day.isoformat()
    snapshot = str(gold_lake.snapshots[day])
    assert md["gold_snapshot_ids"] == {"gold.features": snapshot}
    assert md["feature_catalog_version"] == FEATURE_CATALOG_VERSION
    used = md["rows_used"]
    assert used["test_rows"] == sum(md["rows_per_day"][day.isoformat()].values()) and used["purged_rows"] > 0
    assert md["rows"] == used["train_rows"] + used["test_rows"]
    assert len(md["top_features_by_gain"]) == 15 and abs(float(md["log_loss"])) > 0
    calibration = [line for line in md["calibration"].splitlines()[2:]]
    assert len(calibration) == 10
    assert sum(int(line.split("|")[2]) for line in calibration) == used["classifier_test_rows"]
    assert -0.2 < float(md["ic_spearman"]) < 0.2 and "always" in md["majority_class_accuracy"]

    # The model and its manifest in the lake: the rows it trained on are named, and the files are those reported.
    folder = Path(md["model_uri"])
    assert folder == Path(gold_lake.root) / "_models" / "gold_baseline_model" / f"event_date={day}" / f"gold_snapshot={snapshot}"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["gold_snapshot_ids"] == {"gold.features": snapshot} and manifest["train_days"] == md["train_days"]
    assert manifest["rows"]["per_day"] == md["rows_per_day"] and manifest["run_id"] == result.run_id
    import hashlib

    for name, digest in md["model_sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    # A prediction traced to data: the saved classifier, on the test day's rows read at the manifest's
    # snapshot, gives back the AUC the run reported.
    import lightgbm as lgb

    classifier = lgb.Booster(model_file=str(folder / "classifier.txt"))
    window = pin_window(gold_lake.config, day, day, as_of=int(manifest["gold_snapshot_ids"]["gold.features"]))
    rows = load_rows(gold_lake.config, window, manifest["features"])
    known = ~np.isnan(rows.direction)
    reported = auc(rows.direction[known].astype(float), classifier.predict(rows.x[known]))
    assert round(reported, 4) == float(md["auc"])


def _rewrite(lake, day, change, version=None):
    """Gold of (BTC-USD, day) rewritten with `change` applied to its rows (as a faulty Gold build would)."""
    t = gold_table_def()
    where = {"product_id": "BTC-USD", "event_date": day}
    rows = change(snapshots.read(load_table(lake.config, t), where))
    extra = {CATALOG_VERSION_KEY: version} if version else {}
    snapshots.replace(lake.config, t, rows, where, Provenance(asset="gold_features", extra=extra))


def test_a_leaky_feature_fails_the_suspicious_score_check_naming_it(base_settings, tmp_path):
    lake = build_lake(tmp_path / "lake", 3, 2500, seed=5)
    s = base_settings.replace(lake_root=lake.root, baseline_train_days=2)

    def leak(rows: pa.Table) -> pa.Table:  # return_1 := the future return (what the direction is made of)
        i = rows.schema.get_field_index("return_1")
        return rows.set_column(i, "return_1", rows.column("target_return_50"))

    for day in lake.days:
        _rewrite(lake, day, leak)
    result, md, checks = _run(s, lake.days[-1])
    assert result.success, failure_line(result)
    assert float(md["auc"]) > 0.95
    failed = checks["suspicious_score"]
    assert not failed.passed
    carried = failed.metadata["carried_by"].value
    assert carried.startswith("return_1 (") and "AUC alone 1.000" in carried
    # The canary trains on shuffled targets: no feature can carry them, the leak included.
    assert checks["shuffled_target_canary"].passed

    # The same bound, configurable: above this AUC the check passes.
    _, md, checks = _run(s.replace(baseline_suspicious_auc=1.0), lake.days[-1])
    assert checks["suspicious_score"].passed


def test_bad_windows_end_the_run_with_one_line_naming_the_days(gold_lake, base_settings, tmp_path):
    s = base_settings.replace(lake_root=gold_lake.root, baseline_train_days=3)
    last = gold_lake.days[-1]
    result, _, _ = _run(s.replace(baseline_min_rows=100_000), last)
    line = failure_line(result)
    assert not result.success and "\n" not in line
    assert line.startswith("too few training-ready Gold rows in the window 2024-03-11..2024-03-14: 2024-03-11 (")
    assert "at least 100000 a day (CRYPTO_BASELINE_MIN_ROWS)" in line

    result, _, _ = _run(s.replace(baseline_train_days=5), last)
    line = failure_line(result)
    assert "has no rows for 2024-03-09 BTC-USD, 2024-03-09 ETH-USD, 2024-03-10 BTC-USD, 2024-03-10 ETH-USD:" in line
    assert "crypto-pipeline backfill --from 2024-03-09 --to 2024-03-10 --layers gold" in line

    lake = build_lake(tmp_path / "lake", 2, 1200, seed=3)
    _rewrite(lake, lake.days[0], lambda rows: rows, version=FEATURE_CATALOG_VERSION)
    _rewrite(lake, lake.days[1], lambda rows: rows, version="0123456789abcdef")
    result, _, _ = _run(base_settings.replace(lake_root=lake.root, baseline_train_days=1, baseline_min_rows=10), lake.days[1])
    line = failure_line(result)
    assert "different feature catalogs (2024-03-11: " + FEATURE_CATALOG_VERSION + "; 2024-03-12: 0123456789abcdef)" in line


def test_calibration_and_auc_on_known_values():
    from crypto_assets.ml.baseline import auc, calibration, log_loss

    y = np.array([0, 0, 1, 1], dtype=float)
    assert auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75 and auc(y, np.array([0.5] * 4)) == 0.5
    assert np.isclose(log_loss(y, np.array([0.5] * 4)), np.log(2))
    bins = calibration(y, np.array([0.05, 0.05, 0.95, 1.0]))
    assert [b["rows"] for b in bins] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2] and bins[9]["observed_up"] == 1.0


def test_the_daily_schedule_exists_with_the_setting_and_trains_on_yesterday():
    from datetime import datetime, timezone

    from dagster import DefaultScheduleStatus, build_schedule_context

    from crypto_assets.contracts.settings import Settings
    from crypto_assets.orchestration.definitions import build_definitions

    off = build_definitions(Settings.from_env(environ={"CRYPTO_AUTOMATION": "on"}))
    assert "gold_baseline_daily" not in [s.name for s in off.schedules]
    assert off.resolve_asset_graph().get(build_baseline_asset(Settings.from_env(environ={})).key).is_executable
    on = build_definitions(Settings.from_env(environ={"CRYPTO_AUTOMATION": "on", "CRYPTO_BASELINE_MODEL": "on",
                                                      "CRYPTO_FIRST_DATE": "2026-11-01"}))
    schedule = on.resolve_schedule_def("gold_baseline_daily")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING and schedule.cron_schedule == "30 1 * * *"
    request = schedule.evaluate_tick(build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 3, 1, 30, tzinfo=timezone.utc),
        repository_def=on.get_repository_def())).run_requests[0]
    assert request.partition_key == "2026-12-02"
