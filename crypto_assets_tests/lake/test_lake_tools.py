"""Maintenance, time travel from the CLI and the Python API, and the migration of a plain-Parquet lake
(real SQLite catalog, real Spark procedures)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.tables import bronze_table, silver_table_def
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, load_table
from crypto_assets.lake.maintenance import maintain_table
from crypto_assets.lake.migrate import migrate
from crypto_assets.lake.snapshots import Provenance, append, read, replace
from crypto_assets.lake.time_travel import read_as_of
from crypto_assets.tools.cli import main
from crypto_assets_tests.lake.test_catalog import DAY, trades

T = silver_table_def("trades")


def config_for(root) -> CatalogConfig:
    return CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("product_id", "ascending"), ("price", "ascending"), ("trade_id", "ascending")])


def test_maintenance_compacts_and_expires_and_reads_stay_identical(spark, tmp_path):
    config = config_for(tmp_path / "lake")
    for i in range(12):
        append(config, T, trades(20, "BTC-USD" if i % 2 else "ETH-USD", tag=i), Provenance("silver_trades", run_id=f"{i}"))
    before = _sorted(read(load_table(config, T)))
    # As if run a minute later, so that every snapshot is older than a retention of 0 hours.
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    stats = maintain_table(spark, config, T, retention_hours=0, now=later)
    table = load_table(config, T)
    assert _sorted(read(table)).equals(before)
    assert stats.rewritten_files == 12 and stats.added_files == 2  # one file per partition
    assert table.current_snapshot().summary.operation.value == "replace"  # not new data for the sensors
    assert stats.expired_snapshots > 0 and len(table.snapshots()) == stats.snapshots_after <= 5


def test_maintenance_keeps_at_most_the_newest_snapshots_whatever_their_age(spark, tmp_path):
    config = config_for(tmp_path / "lake")
    for i in range(9):
        append(config, T, trades(5, tag=i), Provenance("silver_trades", run_id=f"{i}"))
    newest = [s.snapshot_id for s in load_table(config, T).snapshots()][-6:]
    stats = maintain_table(spark, config, T, retention_hours=24, compact=False, orphans=False, max_snapshots=6)
    table = load_table(config, T)
    assert [s.snapshot_id for s in table.snapshots()] == newest and stats.expired_snapshots == 3
    assert read(table).num_rows == 45


def test_maintenance_removes_old_orphan_files_and_keeps_young_ones(spark, tmp_path):
    """Files in the table's folders that no snapshot references (a writer died before its commit): removed
    once older than the window and 24 h, kept while younger (they may belong to a commit under way)."""
    import os
    import shutil

    from crypto_assets.lake.snapshots import local_path, snapshot_files

    config = config_for(tmp_path / "lake")
    for i in range(2):
        append(config, T, trades(4, tag=i), Provenance("silver_trades", run_id=f"{i}"))
    before = _sorted(read(load_table(config, T)))
    live = [Path(local_path(f.path)) for f in snapshot_files(load_table(config, T), {})[1]]
    old_orphan = live[0].parent / "died-before-commit-old.parquet"
    young_orphan = live[0].parent / "died-before-commit-young.parquet"
    for orphan in (old_orphan, young_orphan):
        shutil.copy(live[0], orphan)
    two_days_ago = (datetime.now(timezone.utc) - timedelta(hours=48)).timestamp()
    os.utime(old_orphan, (two_days_ago, two_days_ago))
    for path in live:  # live files just as old: still referenced, so they stay
        os.utime(path, (two_days_ago, two_days_ago))

    stats = maintain_table(spark, config, T, retention_hours=24, compact=False, expire=False)
    assert stats.orphan_files == 1
    assert not old_orphan.exists() and young_orphan.exists() and all(p.exists() for p in live)
    assert _sorted(read(load_table(config, T))).equals(before)


def test_time_travel_from_the_api_and_the_cli(tmp_path, monkeypatch, capsys):
    root = tmp_path / "lake"
    config = config_for(root)
    where = {"product_id": "BTC-USD", "event_date": DAY}
    old = replace(config, T, trades(3, tag=1), where, Provenance("silver_trades", run_id="first"))
    replace(config, T, trades(5, tag=2), where, Provenance("silver_trades", run_id="second"))
    assert read_as_of(config, "silver_trades", as_of=old).num_rows == 3
    assert set(read_as_of(config, "silver.trades").column("price").to_pylist()) == {2.0}

    monkeypatch.setenv("CRYPTO_LAKE_ROOT", str(root))
    out = tmp_path / "old.parquet"
    assert main(["lake", "read", "silver_trades", "--as-of", str(old), "--output", str(out)]) == 0
    assert pq.read_table(out).num_rows == 3
    assert main(["lake", "history", "silver.trades"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(str(old) in line and "run first" in line for line in lines)
    assert main(["lake", "read", "silver_trades", "--as-of", "12345678901234"]) == 2
    assert "has no snapshot 12345678901234" in capsys.readouterr().err


def _legacy_lake(root) -> dict:
    """Folders as the plain-Parquet version wrote them: partition values only in the folder names."""
    silver = trades(6).drop_columns(["product_id", "event_date"])
    folder = root / "silver" / "trades" / "product_id=BTC-USD" / f"event_date={DAY}"
    folder.mkdir(parents=True)
    pq.write_table(silver, folder / "part-00000.snappy.parquet")

    b = bronze_table("trades").schema
    def bronze(offsets):
        cols = {f.name: pa.nulls(len(offsets), f.type) for f in b if f.name != "ingest_date"}
        cols["offset"] = pa.array(offsets, pa.int64())
        cols["partition"] = pa.array([0] * len(offsets), pa.int32())
        return pa.table(cols)

    day = root / "bronze" / "kafka_trades" / "ingest_date=2026-01-01"
    day.mkdir(parents=True)
    # Batches 1 and 2 were merged into one file; the crash left batch 1's own file behind.
    pq.write_table(bronze([0, 1]), day / "stream-b000000000001-0000.snappy.parquet")
    pq.write_table(bronze([0, 1, 2]), day / "compact-L1-b000000000001-b000000000002.snappy.parquet")
    pq.write_table(bronze([3]), day / "stream-b000000000003-0000.snappy.parquet")
    (root / "bronze" / "kafka_trades" / "_commits").mkdir()
    return {"silver": silver.num_rows, "bronze": 4}


def test_a_plain_parquet_lake_is_refused_until_migrated_then_adopted(tmp_path, monkeypatch, capsys):
    root = tmp_path / "lake"
    expected = _legacy_lake(root)
    config = config_for(root)
    with pytest.raises(CatalogError) as err:
        load_table(config, T)
    assert "crypto-pipeline lake migrate" in str(err.value) and "\n" not in str(err.value)

    monkeypatch.setenv("CRYPTO_LAKE_ROOT", str(root))
    assert main(["lake", "migrate"]) == 0
    assert "1 superseded streamed files skipped" in capsys.readouterr().out
    silver = read(load_table(config, T))
    assert silver.num_rows == expected["silver"]
    assert set(silver.column("product_id").to_pylist()) == {"BTC-USD"}
    assert set(silver.column("event_date").to_pylist()) == {DAY}
    bronze = read(load_table(config, bronze_table("trades")), columns=["offset", "ingest_date"])
    assert sorted(bronze.column("offset").to_pylist()) == [0, 1, 2, 3]
    assert set(bronze.column("ingest_date").to_pylist()) == {date(2026, 1, 1)}
    assert not (root / "silver" / "trades" / "product_id=BTC-USD").exists()
    assert not (root / "bronze" / "kafka_trades" / "_commits").exists()
    # Run again: nothing left to adopt, nothing changes.
    assert main(["lake", "migrate"]) == 0
    assert read(load_table(config, T)).num_rows == expected["silver"]


def test_a_lost_catalog_is_registered_again_from_the_tables_metadata(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    config = config_for(root)
    replace(config, T, trades(4), {"product_id": "BTC-USD", "event_date": DAY}, Provenance("silver_trades"))
    from crypto_assets.lake.catalog import forget_catalogs

    forget_catalogs()
    config.sqlite_path.unlink()
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", str(root))
    assert main(["lake", "migrate"]) == 0
    assert read(load_table(config, T)).num_rows == 4
