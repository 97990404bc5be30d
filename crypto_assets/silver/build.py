"""One Silver date for one or more products: read the Bronze window, mark, commit, measure.

No Dagster here: the Silver assets (one product per run) and the Glue/benchmark scripts
(several products in one pass) call `build_silver`. The Bronze window is read from one pinned
snapshot of the Bronze table (the stream may commit meanwhile); Silver and quarantine are each
written in one Iceberg commit per run that replaces the run's (product, day) partitions, with
the Bronze snapshot read in its summary. Everything reported is read back from the snapshot
just committed, so the reconciliation check is a real check of the table.

The rules (`silver.transforms.mark_table`) run on Bronze read with Arrow, in this process: no Spark
at all (on this hardware Arrow per partition is much faster than Spark's Python workers; see
`benchmarks/bench_silver.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crypto_assets.contracts.names import BRONZE_TABLE, ITEMS, TRADES, UNKNOWN_PRODUCT, bronze_asset
from crypto_assets.contracts.ownership import owner_products
from crypto_assets.contracts.partitioning import DayHead, SilverRules, day_bounds
from crypto_assets.contracts.tables import bronze_table, quarantine_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import LakeStore as LakeResource  # the Dagster resource and Glue share it
from crypto_assets.silver.transforms import BRONZE_INPUT, mark_table, quarantine_table, silver_table

log = logging.getLogger(__name__)


class BronzeMissingError(RuntimeError):
    """The Bronze partition Silver needs has not been written; the message says which and what to do."""


@dataclass
class SilverStats:
    kind: str
    product_id: str
    day: str
    table: str  # the Silver table's identifier (silver.trades)
    quarantine_table: str
    bronze_days: list[str] = field(default_factory=list)
    bronze_snapshot_id: int | None = None  # the Bronze snapshot read (None: the Bronze table is empty)
    snapshot_id: int | None = None  # the Silver snapshot committed (or current, when nothing changed)
    quarantine_snapshot_id: int | None = None
    window_items: int = 0  # Bronze items of this product in the window (independent count)
    rows: int = 0  # written to Silver (read back)
    duplicates: int = 0
    conflicting_duplicates: int = 0
    quarantined: int = 0  # written to quarantine (read back)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    other_partitions: int = 0  # items of the window owned by other event dates
    min_event_time: str | None = None
    max_event_time: str | None = None
    # Written-data checks
    duplicate_keys: int = 0
    null_keys: dict[str, int] = field(default_factory=dict)
    non_positive: dict[str, int] = field(default_factory=dict)
    crossed_quotes: int = 0
    trade_id_gaps: dict = field(default_factory=dict)
    head: DayHead = DayHead()  # trades: the first trades, which the day before's Gold targets read
    preview: list[dict] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.window_items == self.rows + self.duplicates + self.quarantined + self.other_partitions


def bronze_window_days(day: date, rules: SilverRules) -> list[date]:
    """Ingest days read for event day D: D-1 (its last minutes only), D .. D+lateness."""
    return [day + timedelta(days=i) for i in range(-1, rules.allowed_lateness_days + 1)]


def bronze_products(lake: LakeResource, kind: str, days: list[date], rules: SilverRules) -> set[str]:
    """The products owning the Bronze rows that Silver of `days` reads (two narrow columns per file)."""
    window = sorted({d for day in days for d in bronze_window_days(day, rules)})
    _, files = snapshots.snapshot_files(lake.table(bronze_table(kind)), {"ingest_date": window})
    if not files:
        return set()
    t = lake.read_files([f.path for f in files], ["product_id", "key"])
    return set(pc.unique(owner_products(t.column("product_id"), t.column("key"))).to_pylist())


def _earliest(day: date, rules: SilverRules):
    """From D-1 only records ingested within the clock-skew allowance before midnight can belong to D."""
    start, _ = day_bounds(day)
    return start - timedelta(seconds=rules.max_future_skew_seconds)


def bronze_window_files(lake: LakeResource, kind: str, day: date,
                        rules: SilverRules) -> tuple[int | None, list[tuple[date, list[str]]]]:
    """(the Bronze snapshot read, its data files of the window per ingest day that has any). One
    snapshot for the whole run: the stream keeps committing to today's partition, and every read of
    one run must see the same rows, or the window count and the rows written would not reconcile."""
    snap, files = snapshots.snapshot_files(lake.table(bronze_table(kind)), {"ingest_date": bronze_window_days(day, rules)})
    by_day: dict[date, list[str]] = {}
    for f in files:
        by_day.setdefault(f.partition["ingest_date"], []).append(f.path)
    return snap, sorted(by_day.items())


@dataclass
class BronzeWindow:
    """Bronze rows of the window owned by the run's products, read with Arrow, without the raw
    `value` (most of Bronze's bytes): `values` reads it back for the few rows that need it."""

    table: pa.Table
    owner: pa.Array
    _file: np.ndarray
    _row: np.ndarray
    _files: list[str]
    _lake: LakeResource

    def values(self, rows: np.ndarray) -> pa.Array:
        out: list = [None] * len(rows)
        for f in np.unique(self._file[rows]):
            mine = np.flatnonzero(self._file[rows] == f)
            got = self._lake.read_rows(self._files[f], "value", self._row[rows[mine]])
            for i, v in zip(mine, got.to_pylist()):
                out[i] = v
        return pa.array(out, pa.binary())


def read_bronze_arrow(lake: LakeResource, kind: str, day: date, rules: SilverRules, products: list[str],
                      window: list[tuple[date, list[str]]]) -> BronzeWindow:
    columns = [c for c in BRONZE_INPUT if c != "ingest_date"] + [ITEMS[kind]]
    files = [(d, f) for d, fs in window for f in fs]

    def read(file: str):
        """(rows, their row numbers in the file). A row owned by product P has P as its product_id or its
        key, so only row groups whose statistics allow that are read: the stream's merged files are
        clustered by product. Garbage (UNKNOWN) can sit anywhere: then the whole file."""
        if UNKNOWN_PRODUCT in products:
            t = lake.read_files([file], columns)
            return t, np.arange(t.num_rows)
        return lake.read_groups_holding(file, columns, products, ("product_id", "key"))

    with ThreadPoolExecutor(max_workers=2) as pool:  # small streamed files: overlap their latencies
        tables = list(pool.map(lambda df: read(df[1]), files))
    earliest = pa.scalar(_earliest(day, rules), pa.timestamp("us", tz="UTC"))
    parts, owners, file_ix, row_ix = [], [], [], []
    wanted = pa.array(products, pa.string())
    for i, ((d, _), (t, file_rows)) in enumerate(zip(files, tables)):
        t = t.append_column("ingest_date", pa.array(np.full(t.num_rows, (d - date(1970, 1, 1)).days, np.int32)).cast(pa.date32()))
        owner = owner_products(t.column("product_id"), t.column("key"))
        keep = pc.is_in(owner, value_set=wanted)
        if d < day:
            keep = pc.and_(keep, pc.greater_equal(t.column("kafka_timestamp"), earliest))
        rows = np.flatnonzero(keep.to_numpy(zero_copy_only=False))
        if len(rows) < t.num_rows:
            t, owner = t.take(pa.array(rows)), owner.take(pa.array(rows))
        parts.append(t)
        owners.append(owner)
        file_ix.append(np.full(len(rows), i, dtype=np.int32))
        row_ix.append(file_rows[rows])
    table = pa.concat_tables(parts).combine_chunks()
    return BronzeWindow(table, pa.concat_arrays(owners),
                        np.concatenate(file_ix), np.concatenate(row_ix), [f for _, f in files], lake)


def build_silver(
    lake: LakeResource,
    kind: str,
    day: date,
    products: list[str],
    rules: SilverRules,
    require_bronze_day: bool = True,
    run_id: str = "",
) -> dict[str, SilverStats]:
    """Replaces Silver and quarantine partitions (day, p) for each product p, whole, in one commit per
    table (Arrow; no Spark). `run_id` goes into the snapshot summaries."""
    silver_def, quarantine_def = silver_table_def(kind), quarantine_table_def(kind)
    stats = {p: SilverStats(kind=kind, product_id=p, day=day.isoformat(), table=silver_def.identifier,
                            quarantine_table=quarantine_def.identifier) for p in products}
    bronze_snapshot, window = bronze_window_files(lake, kind, day, rules)
    days = [d.isoformat() for d, _ in window]
    if require_bronze_day and day.isoformat() not in days:
        raise BronzeMissingError(
            f"Bronze {BRONZE_TABLE[kind]} ingest_date={day} has not been written yet: materialize "
            f"{bronze_asset(kind)} for {day} first (Silver {day} reads Bronze {day} .. "
            f"{day + timedelta(days=rules.allowed_lateness_days)})"
        )
    for s in stats.values():
        s.bronze_days = days
        s.bronze_snapshot_id = bronze_snapshot

    timings, clock = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name], clock = round(time.perf_counter() - clock, 2), time.perf_counter()

    if window:
        silver_rows, quarantine_rows = _silver_arrow(lake, kind, day, rules, window, stats, lap)
    else:  # no Bronze at all in the window: the partitions end empty
        silver_rows = silver_def.schema.empty_table()
        quarantine_rows = quarantine_def.schema.empty_table()
    provenance = Provenance(asset=f"silver_{kind}", partition=_partition_key(day, products), run_id=run_id,
                            upstream={bronze_table(kind).identifier: bronze_snapshot} if bronze_snapshot else {})
    where = {"product_id": products, "event_date": day}
    config = lake.catalog_config
    silver_snapshot = snapshots.replace(config, silver_def, silver_rows, where, provenance)
    quarantine_snapshot = snapshots.replace(config, quarantine_def, quarantine_rows, where, provenance)
    for s in stats.values():
        s.snapshot_id, s.quarantine_snapshot_id = silver_snapshot, quarantine_snapshot
    lap("commit")
    _measure(lake, kind, day, stats)
    lap("measure")
    log.info("silver %s %s %s timings (s): %s", kind, day, ",".join(products), timings)
    return stats


def _partition_key(day: date, products: list[str]) -> str:
    """The Dagster partition key of one product's run (`2026-03-10|BTC-USD`); several products: joined by commas."""
    return f"{day.isoformat()}|{','.join(products)}"


def _silver_arrow(lake: LakeResource, kind: str, day: date, rules: SilverRules, window, stats: dict[str, SilverStats],
                  lap: Callable[[str], None]) -> tuple[list[pa.Table], list[pa.Table]]:
    """The Silver and quarantine rows of the run's partitions (with their partition columns), and the counts
    that only the marking knows (window items, duplicates, other partitions) in `stats`."""
    products = list(stats)
    bronze = read_bronze_arrow(lake, kind, day, rules, products, window)
    marked = mark_table(bronze.table, kind, rules, values=bronze.values)  # reads `value` back
    # The independent count: Bronze items per product, each record at least one.
    items = np.maximum(np.asarray(pc.fill_null(pc.list_value_length(bronze.table.column(ITEMS[kind])), 0)), 1)
    at = np.asarray(pc.index_in(bronze.owner, value_set=pa.array(products, pa.string())))
    for p, n in zip(products, np.bincount(at, weights=items, minlength=len(products))):
        stats[p].window_items = int(n)
    lap("read_and_mark")
    day_ix = (day - date(1970, 1, 1)).days
    product = marked.column("product_id").to_numpy(zero_copy_only=False)
    mine = np.asarray(pc.cast(marked.column("event_date"), pa.int32())) == day_ix
    disposition = marked.column("disposition").to_numpy(zero_copy_only=False)
    conflicting = np.asarray(marked.column("conflicting"))
    silver_parts, quarantine_parts = [], []
    for p, s in stats.items():
        of_p = product == p
        here = of_p & mine
        s.other_partitions = int((of_p & ~mine).sum())
        s.duplicates = int((here & (disposition == "duplicate")).sum())
        s.conflicting_duplicates = int((here & conflicting).sum())
        part = marked.filter(pa.array(here))
        silver_parts.append(silver_table(part, kind))
        quarantine_parts.append(quarantine_table(part))
    lap("select")
    return silver_parts, quarantine_parts  # one table per product (one partition each)


def _read_back(lake: LakeResource, tabledef, day: date, products: list[str], snapshot: int | None,
               columns: list[str]) -> dict[str, pa.Table]:
    """The rows of each product's partition as of `snapshot` (the one just committed: the files it lists)."""
    if snapshot is None:
        return {}
    _, files = snapshots.snapshot_files(lake.table(tabledef), {"product_id": products, "event_date": day}, snapshot)
    by_product: dict[str, list[str]] = {}
    for f in files:
        by_product.setdefault(f.partition["product_id"], []).append(f.path)
    return {p: lake.read_files(paths, columns) for p, paths in by_product.items()}


def _checked_columns(kind: str) -> tuple[str, str, list[str], list[str]]:
    """(time column, key column, columns that must not be null, preview columns) of a Silver table."""
    time_col = "trade_time" if kind == TRADES else "event_time"
    key = "trade_id" if kind == TRADES else "content_hash"
    key_cols = [key, time_col, "price"] + (["size", "side"] if kind == TRADES else [])
    preview_cols = (
        ["trade_time", "trade_id", "price", "size", "side", "notional", "is_snapshot"]
        if kind == TRADES
        else ["event_time", "price", "best_bid", "best_ask", "best_bid_quantity", "best_ask_quantity", "volume_24_h"]
    )
    return time_col, key, key_cols, preview_cols


def _measure(lake: LakeResource, kind: str, day: date, stats: dict[str, SilverStats]) -> None:
    """Counts and checks read back from the snapshots committed (a few columns: not the lineage strings)."""
    products = list(stats)
    first = next(iter(stats.values()))
    quarantined = _read_back(lake, quarantine_table_def(kind), day, products, first.quarantine_snapshot_id, ["reason"])
    time_col, key, key_cols, preview_cols = _checked_columns(kind)
    written = _read_back(lake, silver_table_def(kind), day, products, first.snapshot_id,
                         list(dict.fromkeys(key_cols + preview_cols)))
    for p, s in stats.items():
        if p in quarantined:
            reasons = quarantined[p].column("reason").value_counts()
            s.quarantined_by_reason = {str(r["values"]): int(r["counts"]) for r in reasons.to_pylist()}
            s.quarantined = quarantined[p].num_rows
        if p in written:
            _measure_silver(kind, s, written[p])


def _measure_silver(kind: str, s: SilverStats, table: pa.Table) -> None:
    time_col, key, key_cols, preview_cols = _checked_columns(kind)
    s.rows = table.num_rows
    keys = table.column(key)  # Arrow's hash table: several times faster than pandas on 64-character hashes
    s.duplicate_keys = len(keys) - keys.null_count - pc.count_distinct(keys, mode="only_valid").as_py()
    if s.rows:
        times = pc.min_max(table.column(time_col))
        s.min_event_time, s.max_event_time = times["min"].as_py().isoformat(), times["max"].as_py().isoformat()
    s.null_keys = {c: table.column(c).null_count for c in key_cols}

    def count(flags) -> int:
        return int(pc.sum(flags).as_py() or 0)

    s.non_positive = {"price": count(pc.less_equal(table.column("price"), 0.0))}
    if kind == TRADES:
        s.non_positive["size"] = count(pc.less_equal(table.column("size"), 0.0))
        s.head = DayHead.of(
            table.column("trade_id").to_numpy(), pc.cast(table.column("trade_time"), pa.int64()).to_numpy(),
            table.column("price").to_numpy())
        ids = np.unique(table.column("trade_id").drop_null().to_numpy())
        if len(ids):
            steps = np.diff(ids)
            missing = int((steps - 1).sum())
            s.trade_id_gaps = {"first_trade_id": int(ids[0]), "last_trade_id": int(ids[-1]), "missing_trade_ids": missing}
            if missing:
                top = np.argsort(-(steps - 1), kind="stable")[:5]
                s.trade_id_gaps["largest_gaps"] = [
                    {"after_trade_id": int(ids[i]), "missing": int(steps[i] - 1)} for i in top if steps[i] > 1
                ]
    else:
        s.crossed_quotes = count(pc.greater(table.column("best_bid"), table.column("best_ask")))
    first = pc.sort_indices(table.column(time_col))[:5]
    s.preview = table.select(preview_cols).take(first).to_pylist()
