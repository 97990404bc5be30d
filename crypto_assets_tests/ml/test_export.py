"""`export-training`: the export holds exactly the training-ready Gold rows it claims, its manifest's snapshot
reproduces it byte for byte after Gold was rewritten, and bad windows end in one line."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.gold_features import (
    BY_NAME,
    CATALOG_VERSION_KEY,
    FEATURE_CATALOG_VERSION,
    FEATURE_NAMES,
    TARGET_NAMES,
)
from crypto_assets.contracts.tables import gold_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.ml.export import EXPORT_COLUMNS, TrainingDataError, export_training, pin_window, reproduce
from crypto_assets.tools.cli import main
from crypto_assets_tests.ml.conftest import build_lake


def _gold_rows(config, day, product, snapshot=None):
    rows = snapshots.read(load_table(config, gold_table_def()), {"product_id": product, "event_date": day}, snapshot=snapshot)
    rows = rows.filter(rows.column("is_training_ready")).sort_by([("trade_time", "ascending"), ("trade_id", "ascending")])
    return rows.select(list(EXPORT_COLUMNS))


def test_the_export_equals_the_training_ready_gold_rows(gold_lake, tmp_path):
    days = gold_lake.days[:3]
    manifest = export_training(gold_lake.config, days[0], days[-1], None, None, tmp_path / "set")
    assert manifest["products"] == ["BTC-USD", "ETH-USD"]
    assert manifest["gold_snapshot_ids"] == {"gold.features": str(gold_lake.snapshots[gold_lake.days[-1]])}
    assert manifest["feature_catalog_version"] == FEATURE_CATALOG_VERSION
    total = 0
    for day in days:
        for product in ("BTC-USD", "ETH-USD"):
            expected = _gold_rows(gold_lake.config, day, product)
            got = pq.read_table(tmp_path / "set" / "data" / product / f"{day}.parquet")
            # Count and values, column by column (NaN and null compare equal to themselves).
            assert got.num_rows == expected.num_rows == manifest["rows"][day.isoformat()][product] > 1000
            assert got.column_names == list(EXPORT_COLUMNS)
            for name in EXPORT_COLUMNS:
                a, b = got.column(name).to_pandas(), expected.column(name).to_pandas()
                assert a.equals(b), name
            total += got.num_rows
    assert manifest["total_rows"] == total
    # The folder read as one data set: every row, sorted by (product, trade_time, trade_id).
    whole = pq.read_table(tmp_path / "set" / "data").to_pandas()
    assert len(whole) == total
    assert whole.equals(whole.sort_values(["product_id", "trade_time", "trade_id"], kind="mergesort"))
    units = {c["name"]: (c["unit"], c["role"]) for c in manifest["columns"]}
    assert units["rsi_14"] == (BY_NAME["rsi_14"].unit, "feature") and units["return_1"] == ("%", "feature")
    assert units["target_direction_50"] == ("flag", "target") and units["trade_time"][1] == "key"
    assert [c["name"] for c in manifest["columns"]] == list(EXPORT_COLUMNS)
    assert set(FEATURE_NAMES) | set(TARGET_NAMES) <= set(units)
    assert json.loads((tmp_path / "set" / "manifest.json").read_text())["rows"] == manifest["rows"]


def test_the_manifest_reproduces_identical_bytes_after_gold_was_rewritten(tmp_path, monkeypatch, capsys):
    lake = build_lake(tmp_path / "lake", 2, 1500)
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", lake.root)
    first, last = lake.days
    out = tmp_path / "first"
    manifest = export_training(lake.config, first, last, ["BTC-USD"], None, out)
    before = {f["path"]: (out / f["path"]).read_bytes() for f in manifest["files"]}

    # Gold of the first day is rebuilt from Silver that lost a thousand trades: the current rows differ.
    trades = lake.trades.sort_values("trade_time").iloc[1000:]
    from crypto_assets_tests.ml.gold_days import write_gold

    write_gold(lake.root, trades, lake.tickers, [first])
    now = export_training(lake.config, first, last, ["BTC-USD"], None, tmp_path / "now")
    assert now["gold_snapshot_ids"] != manifest["gold_snapshot_ids"]
    assert now["rows"][first.isoformat()] != manifest["rows"][first.isoformat()]

    again, differ = reproduce(lake.config, out / "manifest.json", tmp_path / "again")
    assert differ == [] and again["gold_snapshot_ids"] == manifest["gold_snapshot_ids"]
    assert {p: (tmp_path / "again" / p).read_bytes() for p in before} == before

    # The command line does the same, and the command the manifest records gives the same bytes too.
    assert main(["export-training", "--manifest", str(out / "manifest.json"), "--output", str(tmp_path / "cli")]) == 0
    assert "identical to the manifest's files" in capsys.readouterr().out
    recorded = manifest["command"].split()
    assert recorded[recorded.index("--as-of") + 1] == manifest["gold_snapshot_ids"]["gold.features"]
    recorded[recorded.index("--output") + 1] = str(tmp_path / "recorded")
    assert main(recorded[1:]) == 0
    assert {p: (tmp_path / "recorded" / p).read_bytes() for p in before} == before
    # Time travel by time reads the snapshot current then: the original rows.
    committed = load_table(lake.config, gold_table_def()).snapshot_by_id(int(manifest["gold_snapshot_ids"]["gold.features"]))
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(committed.timestamp_ms / 1000, timezone.utc).isoformat()
    by_time = export_training(lake.config, first, last, ["BTC-USD"], when, tmp_path / "by_time")
    assert by_time["rows"] == manifest["rows"] and by_time["gold_snapshot_ids"] == manifest["gold_snapshot_ids"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_bad_windows_end_in_one_line_naming_the_days(gold_lake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", gold_lake.root)
    first, last = gold_lake.days[0], gold_lake.days[-1]
    # A missing day: Gold holds nothing after the last day.
    assert main(["export-training", "--from", str(last), "--to", "2024-03-16", "--output", str(tmp_path / "a")]) == 2
    line = _one_error_line(capsys)
    assert "has no rows for 2024-03-15 BTC-USD, 2024-03-15 ETH-USD, 2024-03-16 BTC-USD" in line
    assert "crypto-pipeline backfill --from 2024-03-15 --to 2024-03-16 --layers gold" in line
    # An unknown product, a reversed range, a folder holding other files, a bad manifest.
    assert main(["export-training", "--from", str(first), "--to", str(first), "--products", "SOL-USD",
                 "--output", str(tmp_path / "b")]) == 2
    assert f"no rows for {first} SOL-USD" in _one_error_line(capsys)
    assert main(["export-training", "--from", str(last), "--to", str(first), "--output", str(tmp_path / "c")]) == 2
    assert f"--to {first} is before --from {last}" in _one_error_line(capsys)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    assert main(["export-training", "--from", str(first), "--to", str(first), "--output", str(tmp_path / "d")]) == 2
    assert "holds other files (notes.txt)" in _one_error_line(capsys)
    assert main(["export-training", "--manifest", str(tmp_path / "d" / "notes.txt"), "--output", str(tmp_path / "e")]) == 2
    assert "is not the manifest of a training export" in _one_error_line(capsys)


def test_days_built_with_different_feature_catalogs_are_refused(tmp_path):
    lake = build_lake(tmp_path / "lake", 2, 1200)
    first, last = lake.days
    # Gold's commits record the catalog version they computed with.
    assert set(pin_window(lake.config, first, last).catalog_versions.values()) == {FEATURE_CATALOG_VERSION}
    # The first day rewritten by a commit that records none (an older writer), the second by one that records
    # another version (same rows): refused, naming both.
    t = gold_table_def()
    for day, extra in ((first, {}), (last, {CATALOG_VERSION_KEY: "0123456789abcdef"})):
        rows = snapshots.read(load_table(lake.config, t), {"product_id": "BTC-USD", "event_date": day})
        snapshots.replace(lake.config, t, rows, {"product_id": "BTC-USD", "event_date": day},
                          Provenance(asset="gold_features", extra=extra))
    with pytest.raises(TrainingDataError) as exc:
        pin_window(lake.config, first, last)
    line = str(exc.value)
    assert "\n" not in line and "different feature catalogs" in line
    assert f"{first}: unrecorded; {last}: 0123456789abcdef" in line and f"--from {first} --to {last}" in line
    # Recorded with this code's version on every day: accepted.
    for day in (first, last):
        rows = snapshots.read(load_table(lake.config, t), {"product_id": "BTC-USD", "event_date": day})
        snapshots.replace(lake.config, t, rows, {"product_id": "BTC-USD", "event_date": day},
                          Provenance(asset="gold_features", extra={CATALOG_VERSION_KEY: FEATURE_CATALOG_VERSION}))
    window = pin_window(lake.config, first, last)
    assert window.catalog_versions == {first.isoformat(): FEATURE_CATALOG_VERSION, last.isoformat(): FEATURE_CATALOG_VERSION}
    assert np.all([f.records > 0 for parts in window.files.values() for f in parts])
