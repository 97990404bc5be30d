"""Commit cost as snapshots accumulate: a day of streaming at a 5 s trigger is about 17,000 snapshots.

Every commit rewrites the table's metadata file, which lists every snapshot kept (and pyiceberg copies
that metadata in memory several times per update), so without expiry a commit costs more the longer
the history. Two modes, both on a temporary lake (SQLite catalog, local disk) holding Silver `trades`:

- growth (default): grows the history one real small append commit at a time through pyiceberg (a data
  file, a manifest, a manifest list and a new metadata file each), printing the median commit time per
  window of snapshots up to --snapshots (default 3,000), then expires all but the last few snapshots
  and measures again. The line printed last extrapolates the trend linearly to 17,000: a history that
  long made this way takes hours, because each of its commits rewrites the whole metadata file.

- history (`--history 17000`): measures at a history of that size instead of extrapolating. It makes
  --seed real commits (pyiceberg appends whose summaries carry the Bronze stream's kind of provenance),
  measures there (adding that many more real commits, pyiceberg's and Spark's), then writes one new
  metadata file by hand holding N snapshots and points the catalog at it (drop the catalog entry,
  `register_table`). This is a real Iceberg v2 history that pyiceberg and Spark load, scan, time-travel,
  commit on and expire, but it was not made by N commits: the newest snapshots are the table's real
  ones, the older ones clones of them in turn, all with one parent chain, sequence numbers 1..N,
  timestamps --interval seconds apart ending now, a matching snapshot log, and each its own manifest
  list (the clones: a byte copy of their original's; manifests and data files are shared). So the
  metadata file has the size and shape of a real day's, which is what a commit's cost depends on. What
  it lacks against a real day (17,000 distinct manifests and small data files) weighs on expiry's file
  reading and deletion, understated here, not on commits. One inconsistency is left: the real
  snapshots, put last, keep manifests stamped with their original sequence numbers, lower than the ones
  they get in the chain; harmless for appends (no delete files to order against).
  Then it times, for --commits commits each: a small pyiceberg append (how Silver and Gold commit, and
  the table load every pyiceberg reader and the stream's exactly-once check pay), and a 2-row Spark
  `writeTo(...).append()` through the same catalog with the stream's write options (how the Bronze
  stream commits every trigger; Spark's start and two warm-up commits excluded, the write of the
  2-row data file included). It does so at the seed, at N, and after the maintenance job's expiry
  (`maintain_table`: 24 h retention and at most --max-snapshots kept, which is what cuts here).

    .venv/bin/python benchmarks/bench_commits.py [--snapshots 3000] [--window 500]
    .venv/bin/python benchmarks/bench_commits.py --history 17000 [--commits 20] [--seed 20]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.contracts.tables import silver_table_def  # noqa: E402
from crypto_assets.lake.catalog import CatalogConfig, load_table, open_catalog  # noqa: E402
from crypto_assets.lake.snapshots import Provenance, append, local_path  # noqa: E402

T = silver_table_def("trades")
DAY = date(2026, 12, 1)
PRODUCTS = ("BTC-USD", "ETH-USD")  # the settings' default products


def rows(n: int, i: int) -> pa.Table:
    cols = {f.name: pa.nulls(n, f.type) for f in T.schema}
    cols.update(product_id=pa.array(["BTC-USD"] * n), event_date=pa.array([DAY] * n, pa.date32()),
                trade_id=pa.array(range(i * n, (i + 1) * n), pa.int64()))
    return pa.table(cols)


def commit_ms(config: CatalogConfig, i: int, provenance: Provenance | None = None) -> float:
    started = time.perf_counter()
    append(config, T, rows(2, i), provenance or Provenance("bench", run_id=str(i)))
    return (time.perf_counter() - started) * 1000


def machine() -> str:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    memory = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    return f"machine: nproc {nproc}, {model}, {memory:.1f} GiB memory; {load()}"


def load() -> str:
    """The machine's load average: other processes' work slows the commits measured here."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"


# ---- growth mode --------------------------------------------------------------------------------


def grow(config: CatalogConfig, root: Path, snapshots: int, window: int) -> None:
    metadata = root / "silver" / "trades" / "metadata"
    points = []
    print("one small append commit (pyiceberg, SQLite catalog, local disk), median per window of snapshots")
    for start in range(0, snapshots, window):
        times = [commit_ms(config, i) for i in range(start, start + window)]
        size = max((p.stat().st_size for p in metadata.glob("*.metadata.json")), default=0)
        points.append((start + window, statistics.median(times)))
        print(f"  snapshots {start + 1:>6}-{start + window:<6} median {statistics.median(times):7.1f} ms, "
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


# ---- history mode -------------------------------------------------------------------------------


STREAM_ID = str(uuid.uuid4())


def stream_provenance(batch: int) -> Provenance:
    """What a Bronze stream commit records in its summary (`bronze.stream`): its stream and batch, the
    Silver partitions it feeds, the Kafka offsets it covers. Gives the history's snapshots their size."""
    day = DAY.isoformat()
    return Provenance(asset="bronze_trades", partition=day, extra={
        "writer": "stream", "stream-id": STREAM_ID, "batch-id": str(batch),
        "partitions": json.dumps([[day, p, 40 + batch % 7] for p in PRODUCTS]),
        "offsets": json.dumps({"0": [batch * 100, batch * 100 + 99]}), "ingest-dates": json.dumps([day]),
        "records": "100"})


def synthesize(config: CatalogConfig, n: int, interval_s: float) -> str:
    """Writes a metadata file whose history holds `n` snapshots (the current ones last, see the module's
    docstring) and registers it as the table's current metadata; returns its location."""
    table = load_table(config, T)
    source = Path(local_path(table.metadata_location))
    meta = json.loads(source.read_text())
    seed = sorted(meta["snapshots"], key=lambda s: s["sequence-number"])
    if n < len(seed):
        raise SystemExit(f"--history {n} is shorter than the {len(seed)} snapshots the table already holds")
    head = n - len(seed)  # synthesized snapshots before the seed's own
    rng = random.Random(17)
    ids = {s["snapshot-id"] for s in seed}
    fresh = []
    while len(fresh) < head:
        sid = rng.getrandbits(63)
        if sid and sid not in ids:
            ids.add(sid)
            fresh.append(sid)
    chain = fresh + [s["snapshot-id"] for s in seed]
    now_ms = int(time.time() * 1000)
    snapshots, log, parent = [], [], None
    for k, sid in enumerate(chain):
        base = seed[(k - head) % len(seed)]
        snap = copy.deepcopy(base)
        snap["snapshot-id"] = sid
        snap.pop("parent-snapshot-id", None)
        if parent is not None:
            snap["parent-snapshot-id"] = parent
        snap["sequence-number"] = k + 1
        snap["timestamp-ms"] = now_ms - round((n - 1 - k) * interval_s * 1000)
        if "crypto.batch-id" in snap.get("summary", {}):
            snap["summary"]["crypto.batch-id"] = str(k)
        if k < head:  # each commit writes its own manifest list: a copy of its seed snapshot's
            target = source.parent / f"snap-{sid}-0-{uuid.uuid4()}.avro"
            shutil.copyfile(local_path(base["manifest-list"]), target)
            snap["manifest-list"] = target.as_uri()
        snapshots.append(snap)
        log.append({"snapshot-id": sid, "timestamp-ms": snap["timestamp-ms"]})
        parent = sid
    keep = int(meta.get("properties", {}).get("write.metadata.previous-versions-max", "100"))
    previous = [*meta.get("metadata-log", []),
                {"metadata-file": table.metadata_location, "timestamp-ms": meta["last-updated-ms"]}]
    meta.update({
        "snapshots": snapshots, "snapshot-log": log, "current-snapshot-id": chain[-1],
        "last-sequence-number": n, "last-updated-ms": max(now_ms, meta["last-updated-ms"]),
        "metadata-log": previous[-keep:],
    })
    meta["refs"]["main"]["snapshot-id"] = chain[-1]
    version = int(source.name.split("-", 1)[0])
    target = source.parent / f"{version + 1:05d}-{uuid.uuid4()}.metadata.json"
    target.write_text(json.dumps(meta, separators=(",", ":")))
    catalog = open_catalog(config)
    catalog.drop_table(config.identifier(T))  # drops the catalog's entry only; the files stay
    catalog.register_table(config.identifier(T), target.as_uri())
    return target.as_uri()


def spark_rows(session, schema, i: int):
    """Two rows with the table's schema (most columns null), made in the JVM."""
    from pyspark.sql import functions as F

    given = {"product_id": F.lit("BTC-USD"), "trade_id": F.col("id"), "event_date": F.lit(DAY)}
    return session.range(2 * i, 2 * i + 2).select(
        *[given.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name) for f in schema])


@dataclass
class Stage:
    label: str
    snapshots: int
    metadata_mb: float
    load: list[float]
    pyiceberg: list[float]
    spark: list[float]


class Bench:
    def __init__(self, config: CatalogConfig, session, commits: int):
        from crypto_assets.bronze.summary import spark_write_options
        from crypto_assets.lake.spark import spark_table

        self.config, self.session, self.commits = config, session, commits
        self.name = spark_table(config, T)
        self.schema = session.table(self.name).schema
        self.options = spark_write_options
        self.i = 10**6  # row and batch numbers of the measured commits

    def spark_commit_ms(self) -> float:
        self.i += 1
        writer = spark_rows(self.session, self.schema, self.i).writeTo(self.name)
        for k, v in self.options(stream_provenance(self.i).properties()).items():
            writer = writer.option(k, v)
        started = time.perf_counter()
        writer.append()
        return (time.perf_counter() - started) * 1000

    def load_ms(self) -> float:
        started = time.perf_counter()
        load_table(self.config, T)
        return (time.perf_counter() - started) * 1000

    def stage(self, label: str) -> Stage:
        table = load_table(self.config, T)
        size = Path(local_path(table.metadata_location)).stat().st_size / 1e6
        snapshots = len(table.snapshots())
        load = [self.load_ms() for _ in range(min(self.commits, 5))]
        pyiceberg, spark = [], []
        for _ in range(self.commits):
            self.i += 1
            pyiceberg.append(commit_ms(self.config, self.i, stream_provenance(self.i)))
        for _ in range(self.commits):
            spark.append(self.spark_commit_ms())
        stage = Stage(label, snapshots, size, load, pyiceberg, spark)
        print(f"  measured {label}: {snapshots:,} snapshots, pyiceberg median {statistics.median(pyiceberg):.0f} ms, "
              f"Spark median {statistics.median(spark):.0f} ms", flush=True)
        return stage


def report(stages: list[Stage], commits: int) -> None:
    print(f"\nper-commit milliseconds, {commits} commits each (load: median of {min(commits, 5)} pyiceberg table loads)")
    header = (f"{'':<22}{'snapshots':>10}{'metadata':>10}{'load':>8}{'pyiceberg commit':>19}"
              f"{'Spark commit':>17}")
    print(header)
    print(f"{'':<22}{'':>10}{'MB':>10}{'median':>8}{'median':>10}{'max':>9}{'median':>9}{'max':>8}")
    for s in stages:
        print(f"{s.label:<22}{s.snapshots:>10,}{s.metadata_mb:>10.1f}{statistics.median(s.load):>8.0f}"
              f"{statistics.median(s.pyiceberg):>10.0f}{max(s.pyiceberg):>9.0f}"
              f"{statistics.median(s.spark):>9.0f}{max(s.spark):>8.0f}")


def history(config: CatalogConfig, root: Path, n: int, seed: int, commits: int, interval_s: float,
            max_snapshots: int) -> None:
    from crypto_assets.contracts.settings import Settings
    from crypto_assets.lake.maintenance import maintain_table
    from crypto_assets.lake.spark import build_spark_session, lake_session

    for i in range(seed):
        append(config, T, rows(2, i), stream_provenance(i))
    started = time.perf_counter()
    spark = build_spark_session(master="local[2]", shuffle_partitions=2, state_dir=str(root / "state"),
                                jvm_dir=Settings.from_env().jvm_dir, app_name="bench-commits")
    session = lake_session(spark, config)
    bench = Bench(config, session, commits)
    print(f"Spark session (local[2]) started in {time.perf_counter() - started:.1f} s; {seed} seed commits made")
    for _ in range(2):  # warm-up: the JVM's first commits load and compile Iceberg's code
        bench.spark_commit_ms()
    stages = [bench.stage("seed")]

    started = time.perf_counter()
    location = synthesize(config, n, interval_s)
    took = time.perf_counter() - started
    table = load_table(config, T)
    # Time travel to the oldest snapshot among those holding the fewest rows (a clone of the first commit).
    oldest = min(table.snapshots(), key=lambda s: (int(s.summary["total-records"]), s.sequence_number))
    size = Path(local_path(location)).stat().st_size
    expected = int(table.current_snapshot().summary["total-records"])
    scanned = table.scan().to_arrow().num_rows
    old_rows = table.scan(snapshot_id=oldest.snapshot_id).to_arrow().num_rows
    spark_rows_now = session.table(bench.name).count()
    spark_rows_old = session.sql(f"SELECT * FROM {bench.name} VERSION AS OF {oldest.snapshot_id}").count()
    ok = (len(table.snapshots()) == n and scanned == expected == spark_rows_now
          and old_rows == int(oldest.summary["total-records"]) == spark_rows_old)
    first = min(table.snapshots(), key=lambda s: s.sequence_number)
    hours = (table.current_snapshot().timestamp_ms - first.timestamp_ms) / 3.6e6
    print(f"synthesized a history of {len(table.snapshots()):,} snapshots over {hours:.1f} h in {took:.1f} s: "
          f"metadata.json {size / 1e6:.1f} MB ({size / n:.0f} bytes per snapshot)")
    print(f"  check {'OK' if ok else 'FAILED'}: current snapshot scans {scanned} rows (pyiceberg) / {spark_rows_now} "
          f"(Spark), summary says {expected}; an old one scans {old_rows} / {spark_rows_old}, summary says "
          f"{oldest.summary['total-records']}")
    if not ok:
        raise SystemExit("the synthesized history does not read back as written")
    stages.append(bench.stage(f"history {n:,}"))

    result = maintain_table(session, config, T, retention_hours=24, compact=False, orphans=False,
                            max_snapshots=max_snapshots)
    print(f"maintenance expiry (Spark expire_snapshots, keep {max_snapshots}): {result.seconds:.1f} s, "
          f"{result.expired_snapshots:,} snapshots expired, {result.deleted_files:,} files deleted, "
          f"{result.snapshots_after:,} kept")
    stages.append(bench.stage("after expiry"))
    report(stages, commits)
    spark.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=3_000, help="growth mode: commits to make")
    parser.add_argument("--window", type=int, default=500, help="growth mode: snapshots per printed line")
    parser.add_argument("--history", type=int, default=0, help="history mode: snapshots to synthesize (17000: a day)")
    parser.add_argument("--seed", type=int, default=20, help="history mode: real commits the history is cloned from")
    parser.add_argument("--commits", type=int, default=20, help="history mode: commits measured per writer and stage")
    parser.add_argument("--interval", type=float, default=5.0, help="history mode: seconds between snapshots")
    parser.add_argument("--max-snapshots", type=int, default=500, help="history mode: maintenance's count cap")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-commits-"))
    config = CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))
    started = time.perf_counter()
    print(machine())
    try:
        if args.history:
            history(config, root, args.history, args.seed, args.commits, args.interval, args.max_snapshots)
        else:
            grow(config, root, args.snapshots, args.window)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wall time {time.perf_counter() - started:.0f} s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
