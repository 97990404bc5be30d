"""`crypto-pipeline sql` and `lake.sql.LakeSql`: DuckDB over the Iceberg tables (real SQLite catalog, real
files). Results equal the tables' rows for every table; a partition filter opens only that partition's files;
a query sees one snapshot while a writer commits; `--as-of` reads the rows before a rewrite; bad input is
one line."""

from __future__ import annotations

import json
import os
import threading
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crypto_assets.contracts.tables import TABLES
from crypto_assets.lake.catalog import CatalogConfig, load_table
from crypto_assets.lake.snapshots import Provenance, append, read, replace, snapshot_files
from crypto_assets.lake.sql import LakeSql, SqlError, table_names
from crypto_assets.tools.cli import main

DAYS = [date(2026, 1, 1), date(2026, 1, 2)]


def _config(tmp_path) -> CatalogConfig:
    root = tmp_path / "lake"
    return CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))


def _rows(t, n: int, product: str, day: date, tag: int) -> pa.Table:
    """`n` rows of one partition of any table: partition columns set, one number column tagged, the rest null."""
    cols = {f.name: pa.nulls(n, f.type) for f in t.schema}
    values = {"product_id": [product] * n, "event_date": [day] * n, "ingest_date": [day] * n}
    for name, v in values.items():
        if name in cols:
            cols[name] = pa.array(v, t.schema.field(name).type)
    number = next(c for c in ("trade_id", "offset", "kafka_offset", "trade_count") if c in cols)
    cols[number] = pa.array([tag * 1000 + i for i in range(n)], t.schema.field(number).type)
    return pa.table(cols, schema=t.schema)


@pytest.fixture
def lake(tmp_path):
    config = _config(tmp_path)
    for i, t in enumerate(TABLES.values()):
        for j, (product, day) in enumerate([("BTC-USD", DAYS[0]), ("ETH-USD", DAYS[0]), ("BTC-USD", DAYS[1])]):
            append(config, t, _rows(t, 3 + i + j, product, day, tag=j), Provenance("test"))
    return config


def test_every_table_answers_with_its_rows(lake):
    sql = LakeSql(lake)
    assert table_names() == sorted(t.flat_name for t in TABLES.values())
    for t in TABLES.values():
        table = load_table(lake, t)
        want = read(table)
        assert sql.arrow(f"SELECT count(*) AS n FROM {t.flat_name}").column("n")[0].as_py() == want.num_rows
        by_partition = sql.arrow(f"SELECT {', '.join(t.partition_by)}, count(*) AS n FROM {t.flat_name} "
                                 f"GROUP BY ALL ORDER BY ALL").to_pylist()
        expected = want.group_by(list(t.partition_by)).aggregate([([], "count_all")]).to_pylist()
        assert sorted(tuple(r.values()) for r in by_partition) == sorted(tuple(r.values()) for r in expected)
    # Values, not only counts: the tagged numbers of one partition.
    got = sql.arrow("SELECT trade_id FROM silver_trades WHERE product_id = 'ETH-USD' ORDER BY trade_id")
    assert got.column("trade_id").to_pylist() == [1000 + i for i in range(got.num_rows)]
    assert sql.pinned["silver_trades"].snapshot_id == load_table(lake, TABLES["silver.trades"]).current_snapshot().snapshot_id


def test_a_partition_filter_opens_only_that_partitions_files(lake):
    """The other partitions' files are made unreadable: a filtered query does not notice, a full scan fails."""
    t = TABLES["gold.features"]
    _, files = snapshot_files(load_table(lake, t), {"product_id": "ETH-USD"})
    for f in files:
        os.chmod(f.path, 0)
        with open(f.path, "wb") as broken:  # root reads any file: make it garbage as well
            broken.write(b"not parquet")
    sql = LakeSql(lake)
    n = sql.arrow("SELECT count(*) AS n FROM gold_features WHERE product_id = 'BTC-USD' AND event_date = DATE '2026-01-02'")
    assert n.column("n")[0].as_py() == read(load_table(lake, t), {"product_id": "BTC-USD", "event_date": DAYS[1]}).num_rows
    with pytest.raises(SqlError):
        sql.arrow("SELECT count(*) FROM gold_features")


def test_a_query_sees_one_snapshot_while_a_writer_replaces_the_partition(lake):
    t = TABLES["silver.trades"]
    where = {"product_id": "BTC-USD", "event_date": DAYS[0]}
    sizes = [5, 9]
    first = read(load_table(lake, t), where).num_rows
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            replace(lake, t, _rows(t, sizes[i % 2], "BTC-USD", DAYS[0], tag=i % 2), where, Provenance("writer"))
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    seen = set()
    try:
        for _ in range(25):
            got = LakeSql(lake).arrow("SELECT count(*) AS n, count(DISTINCT trade_id) AS d, min(trade_id) AS lo "
                                      "FROM silver_trades WHERE product_id = 'BTC-USD' AND event_date = DATE '2026-01-01'")
            n, d, lo = (got.column(c)[0].as_py() for c in ("n", "d", "lo"))
            assert n == d and (n, lo) in {(first, 0), (5, 0), (9, 1000)}, (n, d, lo)  # one snapshot's rows, whole
            seen.add(n)
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 2  # the reads did overlap the writer's commits


def test_cli_formats_time_travel_and_one_line_errors(lake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", lake.root)
    t = TABLES["silver.trades"]
    old = load_table(lake, t).current_snapshot().snapshot_id
    old_n = read(load_table(lake, t), {"product_id": "BTC-USD", "event_date": DAYS[0]}).num_rows
    replace(lake, t, _rows(t, 2, "BTC-USD", DAYS[0], tag=7), {"product_id": "BTC-USD", "event_date": DAYS[0]},
            Provenance("rewrite"))
    query = "SELECT count(*) AS n FROM silver_trades WHERE product_id = 'BTC-USD' AND event_date = DATE '2026-01-01'"
    assert main(["sql", query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 2}
    assert main(["sql", query, "--format", "json", "--as-of", str(old)]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": old_n} and old_n != 2  # the rows before the rewrite
    assert main(["sql", "SELECT product_id, count(*) AS n FROM silver_trades GROUP BY 1 ORDER BY 1", "--format", "csv"]) == 0
    now = read(load_table(lake, t))
    counts = {p: now.column("product_id").to_pylist().count(p) for p in ("BTC-USD", "ETH-USD")}
    assert capsys.readouterr().out.splitlines() == [
        '"product_id","n"', f'"BTC-USD",{counts["BTC-USD"]}', f'"ETH-USD",{counts["ETH-USD"]}']
    assert main(["sql", "SELECT product_id FROM silver_trades ORDER BY 1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"({now.num_rows} rows)"
    out = tmp_path / "r.parquet"
    assert main(["sql", "SELECT * FROM gold_features", "--format", "parquet", "--output", str(out)]) == 0
    assert pq.read_table(out).num_rows == read(load_table(lake, TABLES["gold.features"])).num_rows

    assert main(["sql", "SELECT * FROM silver_trade"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no table silver_trade in the lake (did you mean silver_trades?); the tables are {', '.join(table_names())}\n"
    assert main(["sql", "SELEC 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Parser Error")


def test_an_empty_lake_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", str(tmp_path / "empty"))
    assert main(["sql", "SELECT count(*) AS n FROM gold_features"]) == 0
    captured = capsys.readouterr()
    assert "run `make demo`" in captured.err and captured.out.splitlines()[-1] == "(1 row)"


def test_the_shell_runs_statements_on_one_connection(lake, monkeypatch, capsys):
    import io

    monkeypatch.setenv("CRYPTO_LAKE_ROOT", lake.root)
    monkeypatch.setattr("sys.stdin", io.StringIO(
        ".tables\nCREATE VIEW eth AS SELECT * FROM silver_trades\n WHERE product_id = 'ETH-USD';\n"
        "SELECT count(*) AS n FROM eth;\nSELECT nope;\n"))
    assert main(["sql", "--format", "json"]) == 2  # the last statement failed
    captured = capsys.readouterr()
    eth = read(load_table(lake, TABLES["silver.trades"]), {"product_id": "ETH-USD"}).num_rows
    assert "silver_trades" in captured.out.splitlines() and f'{{"n": {eth}}}' in captured.out
    assert captured.err.count("\n") == 1 and "nope" in captured.err
