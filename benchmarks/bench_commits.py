"""Commit cost as snapshots accumulate: a day of streaming at a 5 s trigger is about 17,000 snapshots.

Grows a table's history one small append commit at a time (the stream's kind of commit: a data
file, a manifest, a manifest list and a new metadata file each), printing the median commit time
per window of snapshots, then expires all but the last few snapshots (what the maintenance job does
once they leave the retention window) and measures again. Every commit rewrites the table's
metadata, which lists every snapshot, so without expiry the cost grows with the history; pyiceberg
also copies that metadata in memory per update. The run stops at --snapshots (default 3,000; the
trend is linear, and the line printed last extrapolates it to 17,000).

    .venv/bin/python benchmarks/bench_commits.py [--snapshots 3000] [--window 500]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.contracts.tables import silver_table_def  # noqa: E402
from crypto_assets.lake.catalog import CatalogConfig, load_table  # noqa: E402
from crypto_assets.lake.snapshots import Provenance, append  # noqa: E402

T = silver_table_def("trades")


def rows(n: int, i: int) -> pa.Table:
    cols = {f.name: pa.nulls(n, f.type) for f in T.schema}
    cols.update(product_id=pa.array(["BTC-USD"] * n), event_date=pa.array([date(2026, 12, 1)] * n, pa.date32()),
                trade_id=pa.array(range(i * n, (i + 1) * n), pa.int64()))
    return pa.table(cols)


def commit_ms(config: CatalogConfig, i: int) -> float:
    started = time.perf_counter()
    append(config, T, rows(2, i), Provenance("bench", run_id=str(i)))
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=3_000)
    parser.add_argument("--window", type=int, default=500)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-commits-"))
    config = CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))
    metadata = root / "silver" / "trades" / "metadata"
    points = []
    try:
        print("one small append commit (pyiceberg, SQLite catalog, local disk), median per window of snapshots")
        for start in range(0, args.snapshots, args.window):
            times = [commit_ms(config, i) for i in range(start, start + args.window)]
            size = max((p.stat().st_size for p in metadata.glob("*.metadata.json")), default=0)
            points.append((start + args.window, statistics.median(times)))
            print(f"  snapshots {start + 1:>6}-{start + args.window:<6} median {statistics.median(times):7.1f} ms, "
                  f"max {max(times):7.1f} ms  (metadata.json {size / 1e6:.2f} MB)", flush=True)
        (n0, t0), (n1, t1) = points[0], points[-1]
        slope = (t1 - t0) / max(1, n1 - n0)
        print(f"  trend: +{slope * 1000:.1f} ms per 1,000 snapshots -> about {t0 + slope * (17_000 - n0):.0f} ms per "
              f"commit after 17,000 snapshots without expiry")
        table = load_table(config, T)
        started = time.perf_counter()
        table.maintenance.expire_snapshots().older_than(datetime.now(timezone.utc) + timedelta(seconds=1)).commit()
        expired = time.perf_counter() - started
        times = [commit_ms(config, 10**7 + i) for i in range(50)]
        print(f"  after expiry ({len(load_table(config, T).snapshots())} snapshots kept; expiring took {expired:.1f} s): "
              f"median {statistics.median(times):7.1f} ms, max {max(times):7.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
