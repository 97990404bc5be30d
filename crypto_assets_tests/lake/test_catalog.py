"""The local Iceberg catalog: tables from their declarations, one-line errors, commits with provenance,
time travel, and two processes racing on one partition (real SQLite catalog, real files)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from crypto_assets.contracts.tables import TABLES, silver_table_def
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, create_tables, load_table
from crypto_assets.lake.snapshots import Provenance, read, replace, snapshot_at, snapshot_files, snapshots_after

DAY = date(2026, 1, 1)
T = silver_table_def("trades")


def config_for(tmp_path) -> CatalogConfig:
    root = tmp_path / "lake"
    return CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))


def trades(n: int, product: str = "BTC-USD", tag: int = 0) -> pa.Table:
    """`n` Silver trade rows of one partition; `price` carries the writer's tag."""
    cols = {f.name: pa.nulls(n, f.type) for f in T.schema}
    cols.update(product_id=pa.array([product] * n), event_date=pa.array([DAY] * n, pa.date32()),
                trade_id=pa.array(range(n), pa.int64()), price=pa.array([float(tag)] * n))
    return pa.table(cols)


def test_tables_are_created_from_their_declarations(tmp_path):
    config = config_for(tmp_path)
    assert sorted(create_tables(config)) == sorted(TABLES)
    assert create_tables(config) == []
    for t in TABLES.values():
        table = load_table(config, t)
        assert table.metadata.format_version == 2
        assert [f.name for f in table.spec().fields] == list(t.partition_by)
        assert [f.name for f in table.schema().fields] == t.schema.names
        assert table.location() == f"{config.warehouse}/{t.layer}/{t.name}"


def test_a_table_whose_schema_differs_is_refused_in_one_line(tmp_path):
    config = config_for(tmp_path)
    table = load_table(config, T)
    with table.update_schema() as update:
        update.delete_column("notional")
    with pytest.raises(CatalogError) as err:
        load_table(config, T)
    message = str(err.value)
    assert "\n" not in message and "missing notional" in message and "crypto-pipeline lake migrate" in message


def test_a_corrupt_catalog_is_one_line(tmp_path):
    config = config_for(tmp_path)
    path = config.sqlite_path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError) as err:
        load_table(config, T)
    assert "\n" not in str(err.value) and "corrupt" in str(err.value) and str(path) in str(err.value)


def test_replace_commits_once_with_provenance_and_time_travel_reads_the_old_rows(tmp_path):
    config = config_for(tmp_path)
    where = {"product_id": "BTC-USD", "event_date": DAY}
    first = replace(config, T, trades(5, tag=1), where, Provenance("silver_trades", "2026-01-01|BTC-USD", "run-1"))
    replace(config, T, trades(3, "ETH-USD"), {"product_id": "ETH-USD", "event_date": DAY},
            Provenance("silver_trades", "2026-01-01|ETH-USD", "run-2"))
    second = replace(config, T, trades(7, tag=2), where,
                     Provenance("silver_trades", "2026-01-01|BTC-USD", "run-3", upstream={"bronze.kafka_trades": 42}))
    table = load_table(config, T)
    now = read(table, where, ["price"])
    assert now.num_rows == 7 and set(now.column("price").to_pylist()) == {2.0}
    then = read(table, where, ["price"], snapshot=first)
    assert then.num_rows == 5 and set(then.column("price").to_pylist()) == {1.0}
    assert read(table).num_rows == 10  # the other product untouched
    assert snapshot_at(table, datetime.now(timezone.utc)) == second
    assert snapshot_files(table, where, first)[1][0].partition == {"product_id": "BTC-USD", "event_date": DAY}

    last = table.snapshot_by_id(second)
    provenance = Provenance.of(last)
    assert (provenance.asset, provenance.partition, provenance.run_id) == ("silver_trades", "2026-01-01|BTC-USD", "run-3")
    assert provenance.upstream == {"bronze.kafka_trades": 42}
    # One catalog commit: the replace's DELETE and APPEND snapshots, both from that run.
    ops = [(s.summary.operation.value, Provenance.of(s).run_id) for s in snapshots_after(table, first)[0]]
    assert ops == [("append", "run-2"), ("delete", "run-3"), ("append", "run-3")]


def test_replacing_with_no_rows_empties_the_partition_and_an_empty_partition_commits_nothing(tmp_path):
    config = config_for(tmp_path)
    where = {"product_id": "BTC-USD", "event_date": DAY}
    replace(config, T, trades(4), where, Provenance("silver_trades"))
    emptied = replace(config, T, trades(0), where, Provenance("silver_trades"))
    table = load_table(config, T)
    assert read(table, where).num_rows == 0
    assert replace(config, T, trades(0), where, Provenance("silver_trades")) == emptied


def _racer(root: str, tag: int, rounds: int, start, out) -> None:
    config = CatalogConfig("sql", f"sqlite:///{root}/catalog.db", root)
    start.wait()
    for _ in range(rounds):
        replace(config, T, trades(100 + tag, tag=tag), {"product_id": "BTC-USD", "event_date": DAY},
                Provenance("silver_trades", run_id=f"writer-{tag}"))
    out.put(tag)


def test_two_processes_racing_on_one_partition_never_lose_or_double_a_row(tmp_path):
    config = config_for(tmp_path)
    load_table(config, T)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(config.root, tag, 8, start, out)) for tag in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    assert sorted(out.get(timeout=5) for _ in procs) == [1, 2]
    table = load_table(config, T)
    rows = read(table, columns=["price", "trade_id"])
    tags = set(rows.column("price").to_pylist())
    assert len(tags) == 1, "the partition holds exactly one writer's rows"
    tag = int(tags.pop())
    assert rows.num_rows == 100 + tag and sorted(rows.column("trade_id").to_pylist()) == list(range(100 + tag))
    # Every commit, whoever won, left the partition holding exactly one replace's rows.
    for snap in table.snapshots():
        if snap.summary.operation.value == "append":
            seen = read(table, columns=["price"], snapshot=snap.snapshot_id)
            assert len(set(seen.column("price").to_pylist())) == 1
            assert seen.num_rows == 100 + int(seen.column("price")[0].as_py())


def test_a_catalog_locked_by_another_process_fails_in_one_line(tmp_path, monkeypatch):
    import crypto_assets.lake.catalog as catalog

    monkeypatch.setattr(catalog, "BUSY_TIMEOUT_S", 1)
    root = tmp_path / "locked"
    config = CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))
    load_table(config, T)
    catalog.forget_catalogs()
    locker = sqlite3.connect(config.sqlite_path)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CatalogError) as err:
            replace(config, T, trades(2), {"product_id": "BTC-USD", "event_date": DAY}, Provenance("silver_trades"))
    finally:
        locker.rollback()
        locker.close()
        catalog.forget_catalogs()
    assert "\n" not in str(err.value) and "locked" in str(err.value)
