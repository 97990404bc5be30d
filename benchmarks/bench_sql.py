"""A day-level aggregate over a 2,000,000-trade Gold partition through `crypto-pipeline sql`, against the same
query by DuckDB's `read_parquet` directly on the partition's data files (the floor: no catalog, no snapshot).

The Gold partition is written with the table's schema (every column present; the columns the query reads
and a few more filled, the rest null) in one commit, beside a second day of the same size that the query's
partition filter must skip. Times, median of 5 after one warm-up: the query inside one process
(`LakeSql`: open the catalog, pin the snapshot, read), the whole command in a fresh process, and the floor.

    .venv/bin/python benchmarks/bench_sql.py [--trades 2000000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
from _common import bench_settings, machine_info, machine_line, print_result, reset_dir, write_result

DAY = date(2026, 11, 20)
QUERY = ("SELECT product_id, count(*) AS trades, min(trade_time) AS first, max(trade_time) AS last, "
         "sum(size) AS volume, sum(price * size) / sum(size) AS vwap, avg(rsi_14) AS rsi, "
         "avg(CASE WHEN is_training_ready THEN target_return_10 END) AS mean_return_10 "
         "FROM {table} WHERE event_date = DATE '2026-11-20' GROUP BY product_id")


def gold_rows(n: int, day: date) -> pa.Table:
    from crypto_assets.contracts.tables import gold_table_def

    schema = gold_table_def().schema
    rng = np.random.default_rng(7)
    start = datetime.combine(day, datetime.min.time(), timezone.utc)
    filled = {
        "product_id": pa.array(["BTC-USD"] * n),
        "event_date": pa.array([day] * n, pa.date32()),
        "trade_id": pa.array(np.arange(n, dtype=np.int64) + 1_000_000),
        "trade_time": pa.array([start + timedelta(microseconds=int(i * 86_400_000_000 / n)) for i in range(n)],
                               pa.timestamp("us", tz="UTC")),
        "price": pa.array(95_000 + rng.normal(0, 50, n).cumsum() / 100),
        "size": pa.array(rng.exponential(0.05, n)),
        "side": pa.array(np.where(rng.random(n) < 0.5, "BUY", "SELL")),
        "rsi_14": pa.array(rng.uniform(0, 100, n)),
        "ma_10_trades": pa.array(95_000 + rng.normal(0, 5, n)),
        "target_return_10": pa.array(rng.normal(0, 0.01, n)),
        "is_training_ready": pa.array(rng.random(n) < 0.99),
    }
    cols = [filled[f.name].cast(f.type) if f.name in filled else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def timed(fn, repeats: int = 5) -> float:
    fn()  # warm-up (page cache, imports)
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        fn()
        times.append(time.perf_counter() - clock)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=2_000_000)
    args = ap.parse_args()
    settings = bench_settings("bench_sql")
    reset_dir(settings.lake_root)
    info = machine_info()
    print(machine_line(info))

    import duckdb

    from crypto_assets.contracts.tables import gold_table_def
    from crypto_assets.lake import snapshots
    from crypto_assets.lake.catalog import CatalogConfig, load_table
    from crypto_assets.lake.sql import LakeSql

    config = CatalogConfig.from_settings(settings)
    t = gold_table_def()
    for day in (DAY, DAY + timedelta(days=1)):
        rows = gold_rows(args.trades, day)
        snapshots.replace(config, t, rows, {"product_id": "BTC-USD", "event_date": day},
                          snapshots.Provenance(asset="bench"))
        del rows
    _, files = snapshots.snapshot_files(load_table(config, t), {"event_date": DAY})
    paths = [f.path for f in files]
    print(f"Gold: 2 days x {args.trades:,} trades, the queried day in {len(paths)} file(s)", flush=True)

    ours = LakeSql(config).arrow(QUERY.format(table="gold_features")).to_pylist()
    floor_sql = QUERY.format(table="read_parquet(" + repr(paths) + ")")
    floor = duckdb.sql(floor_sql).to_arrow_table().to_pylist()
    # The same answer (sums in another order may differ in the last bits).
    assert len(ours) == len(floor) == 1 and ours[0]["trades"] == floor[0]["trades"] == args.trades, (ours, floor)
    assert all(ours[0][k] == floor[0][k] if not isinstance(floor[0][k], float) else
               abs(ours[0][k] - floor[0][k]) <= 1e-9 * abs(floor[0][k]) for k in floor[0]), (ours, floor)

    in_process = timed(lambda: LakeSql(config).arrow(QUERY.format(table="gold_features")))
    floor_s = timed(lambda: duckdb.sql(floor_sql).to_arrow_table())
    env_cmd = [str(settings.home) + "/.venv/bin/crypto-pipeline", "sql", QUERY.format(table="gold_features")]
    command = timed(lambda: subprocess.run(env_cmd, check=True, capture_output=True,
                                           env={"CRYPTO_LAKE_ROOT": settings.lake_root, "PATH": "/usr/bin:/bin"}),
                    repeats=3)
    print(f"day aggregate over {args.trades:,} Gold rows: LakeSql in a warm process {in_process:.3f} s, "
          f"`crypto-pipeline sql` end to end {command:.2f} s, DuckDB read_parquet on the files {floor_s:.3f} s "
          f"(the floor): {in_process / floor_s:.1f}x the floor in process")
    summary = {"benchmark": "bench_sql", "machine": info, "trades": args.trades, "lake_sql_seconds": round(in_process, 3),
               "command_seconds": round(command, 2), "floor_seconds": round(floor_s, 3)}
    write_result("bench_sql", summary)
    print_result(summary)


if __name__ == "__main__":
    sys.exit(main())
