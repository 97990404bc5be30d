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

import dataclasses
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
from crypto_assets.contracts.values import one_chunk
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import DataFile, Provenance
from crypto_assets.lake.store import LakeStore as LakeResource  # the Dagster resource and Glue share it
from crypto_assets.silver.state import (
    SilverState,
    read_state,
    rules_version,
    stale_states,
    state_properties,
    watermark_key,
)
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
    # How the run went: incremental (from the state of the run before) or full (and why)
    mode: str = ""
    full_reason: str = ""
    full_warning: bool = False  # the full rebuild was not expected (a state lost or not to be trusted)
    bronze_snapshot_from: int | None = None  # incremental: the Bronze snapshot the run before had read
    bronze_rows_new: int | None = None  # incremental: Bronze rows of the partition's products not read before
    rows_appended: int = 0
    quarantine_appended: int = 0
    rows_replaced: bool = False  # full: the partitions were replaced whole

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
                        rules: SilverRules) -> tuple[int | None, list[tuple[date, list[DataFile]]]]:
    """(the Bronze snapshot read, its data files of the window per ingest day that has any, with the range of
    Kafka topics, partitions and offsets each holds). One snapshot for the whole run: the stream keeps
    committing to today's partition, and every read of one run must see the same rows, or the window count
    and the rows written would not reconcile."""
    snap, files = snapshots.snapshot_files(lake.table(bronze_table(kind)), {"ingest_date": bronze_window_days(day, rules)},
                                           bounds=("topic", "partition", "offset"))
    by_day: dict[date, list[DataFile]] = {}
    for f in files:
        by_day.setdefault(f.partition["ingest_date"], []).append(f)
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

    def subset(self, rows: np.ndarray) -> BronzeWindow:
        """These rows only (positions in `table`)."""
        at = pa.array(rows)
        return BronzeWindow(self.table.take(at), self.owner.take(at), self._file[rows], self._row[rows], self._files,
                            self._lake)

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
    full: bool = False,
) -> dict[str, SilverStats]:
    """Brings Silver and quarantine partitions (day, p) up to date for each product p, in one commit per
    table (Arrow; no Spark). Incremental by default: only the Bronze rows added since the run that last
    wrote the partition (its state, `silver.state`) are read, marked, deduplicated against the partition
    and appended; a partition without a usable state, or `full`, is rebuilt whole. `run_id` goes into the
    snapshot summaries."""
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

    run = Run(lake, kind, day, rules, run_id, bronze_snapshot, window, stats, lap)
    priors = {} if full else run.usable_states()
    if full:
        for s in stats.values():
            s.full_reason = "a full rebuild was asked for"
    lap("state")
    rebuild = [p for p in products if p not in priors]
    if priors:
        rebuild += run.incremental(priors)
    if rebuild:
        run.full(rebuild)
    _measure(lake, kind, day, stats)
    run.block_failed()
    run.drop_stale_states()
    lap("measure")
    log.info("silver %s %s %s timings (s): %s", kind, day, ",".join(products), timings)
    return stats


def _partition_key(day: date, products: list[str]) -> str:
    """The Dagster partition key of one product's run (`2026-03-10|BTC-USD`); several products: joined by commas."""
    return f"{day.isoformat()}|{','.join(products)}"


def _watermarks(table: pa.Table, owner: pa.Array) -> dict[str, dict[str, int]]:
    """product -> {ingest day|topic|Kafka partition: the highest offset among its rows}."""
    if not table.num_rows:
        return {}
    keys = pa.table({"owner": owner, "ingest_date": table.column("ingest_date"), "topic": table.column("topic"),
                     "partition": table.column("partition"), "offset": table.column("offset")})
    top = keys.group_by(["owner", "ingest_date", "topic", "partition"]).aggregate([("offset", "max")])
    out: dict[str, dict[str, int]] = {}
    for r in top.to_pylist():
        out.setdefault(r["owner"], {})[watermark_key(r["ingest_date"], r["topic"], r["partition"])] = r["offset_max"]
    return out


def _item_counts(table: pa.Table, kind: str) -> np.ndarray:
    """Bronze items per row (each record at least one): the independent count of the reconciliation."""
    return np.maximum(np.asarray(pc.fill_null(pc.list_value_length(table.column(ITEMS[kind])), 0)), 1)


@dataclass
class Run:
    """One `build_silver` call: what it read and where it reports."""

    lake: LakeResource
    kind: str
    day: date
    rules: SilverRules
    run_id: str
    bronze_snapshot: int | None
    window: list[tuple[date, list[DataFile]]]
    stats: dict[str, SilverStats]
    lap: Callable[[str], None]

    def __post_init__(self):
        self.silver_def, self.quarantine_def = silver_table_def(self.kind), quarantine_table_def(self.kind)
        self.asset = f"silver_{self.kind}"
        self.version = rules_version(self.rules)
        self._bronze_after = None  # the Bronze table, loaded once for the state checks
        self.committed: dict[str, SilverState] = {}  # the states this run recorded

    def provenance(self, products: list[str]) -> Provenance:
        upstream = {bronze_table(self.kind).identifier: self.bronze_snapshot} if self.bronze_snapshot else {}
        return Provenance(asset=self.asset, partition=_partition_key(self.day, products), run_id=self.run_id,
                          upstream=upstream)

    def record(self, states: dict[str, SilverState]):
        """The table property change that records `states` with the Silver commit."""
        self.committed.update(states)
        return lambda table: state_properties(table, states)

    # ---- which partitions can go on from their state ------------------------------------------------

    def usable_states(self) -> dict[str, SilverState]:
        """product -> the state its partition can be continued from; the others get `full_reason`."""
        silver = self.lake.table(self.silver_def)
        held = {self.silver_def.identifier: self._rows_held(silver),
                self.quarantine_def.identifier: self._rows_held(self.lake.table(self.quarantine_def))}
        out = {}
        for p, s in self.stats.items():
            state = read_state(silver, self.day, p)
            rows = (held[self.silver_def.identifier].get(p, 0), held[self.quarantine_def.identifier].get(p, 0))
            if state is None:
                s.full_reason = "no state recorded for the partition"
                if any(rows):  # written before, by a version that kept no state, or its state was dropped
                    s.full_reason += " (written by an earlier version, or too long ago)"
                    s.full_warning = True
                continue
            if state.rules != self.version:
                s.full_reason = "the Silver rules changed since the partition was written"
            elif state.blocked:
                s.full_reason = "the partition failed a blocking check when it was last written"
            elif rows != (state.silver_rows, state.quarantine_rows):
                s.full_reason = (f"the partition holds {rows[0]} Silver and {rows[1]} quarantined rows where its state "
                                 f"counts {state.silver_rows} and {state.quarantine_rows} (a run stopped between its "
                                 f"two commits, or another writer changed it)")
            elif (changed := self._bronze_rewritten(state)) is not None:
                s.full_reason = changed
            else:
                out[p] = state
                continue
            s.full_warning = True
        for p, s in self.stats.items():
            if p not in out and s.full_warning:
                log.warning("silver %s %s %s: rebuilding the partition in full: %s", self.kind, self.day, p,
                            s.full_reason)
        return out

    def _bronze_rewritten(self, state: SilverState) -> str | None:
        """Why the rows Bronze held when the state was recorded may have changed (not only grown), or None.
        The watermark only says which rows were read; a Bronze day rewritten since (a batch run replacing its
        partition) may have dropped or changed some, so the partition must be rebuilt."""
        if state.bronze_snapshot is None:  # Bronze was empty: whatever it holds now is new
            return None
        if self._bronze_after is None:
            self._bronze_after = self.lake.table(bronze_table(self.kind))
        newer, found = snapshots.snapshots_after(self._bronze_after, state.bronze_snapshot)
        if not found:
            return f"the Bronze snapshot the partition was last built from ({state.bronze_snapshot}) was expired"
        window = {d.isoformat() for d in bronze_window_days(self.day, self.rules)}
        for snap in newer:
            operation = snap.summary.operation.value if snap.summary is not None else ""
            if operation not in ("delete", "overwrite"):
                continue
            provenance = Provenance.of(snap)
            days = set(provenance.partition.split(",")) if provenance and provenance.partition else None
            if days is None or days & window:
                return f"Bronze rows of the window were rewritten since (snapshot {snap.snapshot_id})"
        return None

    def _rows_held(self, table) -> dict[str, int]:
        """product -> rows its partition of day holds in `table` (from the table's metadata: no data read)."""
        _, files = snapshots.snapshot_files(table, {"product_id": list(self.stats), "event_date": self.day})
        out: dict[str, int] = {}
        for f in files:
            out[f.partition["product_id"]] = out.get(f.partition["product_id"], 0) + f.records
        return out

    # ---- full rebuild --------------------------------------------------------------------------------

    def full(self, products: list[str]) -> None:
        """Replaces the partitions of `products` whole, from every Bronze row of the window."""
        stats = {p: self.stats[p] for p in products}
        for s in stats.values():
            s.mode = "full"
        window = [(d, [f.path for f in files]) for d, files in self.window]
        if window:
            bronze = read_bronze_arrow(self.lake, self.kind, self.day, self.rules, products, window)
            silver_rows, quarantine_rows = _select(bronze.table, bronze.owner, self.kind, self.day, self.rules,
                                                      stats, bronze.values)
            marks = _watermarks(bronze.table, bronze.owner)
            self.lap("read_and_mark")
        else:  # no Bronze at all in the window: the partitions end empty
            silver_rows, quarantine_rows, marks = [], [], {}
        states = {p: SilverState(
            day=self.day.isoformat(), rules=self.version, run=self.run_id, bronze_snapshot=self.bronze_snapshot,
            watermark=marks.get(p, {}), window_items=s.window_items, duplicates=s.duplicates,
            conflicting=s.conflicting_duplicates, other_partitions=s.other_partitions,
            silver_rows=silver_rows[i].num_rows if silver_rows else 0,
            quarantine_rows=quarantine_rows[i].num_rows if quarantine_rows else 0)
            for i, (p, s) in enumerate(stats.items())}
        provenance = self.provenance(products)
        where = {"product_id": products, "event_date": self.day}
        config = self.lake.catalog_config
        # Quarantine first, then Silver with the state: a run that stops between the two leaves a quarantine
        # partition whose row count the state does not know, and the next run rebuilds. Silver commits even
        # when nothing changed, so that the state is recorded.
        quarantine_snapshot = snapshots.replace(config, self.quarantine_def, quarantine_rows, where, provenance)
        silver_snapshot = snapshots.replace(config, self.silver_def, silver_rows or self.silver_def.schema.empty_table(),
                                            where, provenance, always_commit=True, properties=self.record(states))
        for s in stats.values():
            s.snapshot_id, s.quarantine_snapshot_id = silver_snapshot, quarantine_snapshot
            s.rows_replaced = True
        self.lap("commit")

    # ---- incremental ---------------------------------------------------------------------------------

    def incremental(self, priors: dict[str, SilverState]) -> list[str]:
        """Appends what the Bronze rows added since each state make of the partitions of `priors`' products;
        returns the products whose partition must be rebuilt instead (an earlier-ingested copy of a row
        already in Silver arrived: the copy kept changes)."""
        products = list(priors)
        stats = {p: self.stats[p] for p in products}
        for p, s in stats.items():
            s.mode = "incremental"
            s.bronze_snapshot_from = priors[p].bronze_snapshot
        window = [(d, [f.path for f in files if _may_hold_new(f, d, priors)]) for d, files in self.window]
        window = [(d, paths) for d, paths in window if paths]
        new = None
        if window:
            bronze = read_bronze_arrow(self.lake, self.kind, self.day, self.rules, products, window)
            keep = _unread(bronze.table, bronze.owner, priors)
            if keep.any():
                new = bronze.subset(np.flatnonzero(keep))
        self.lap("read_new")
        if new is None:  # nothing new: nothing to commit, the counts are the state's
            for p, s in stats.items():
                _carry(s, priors[p])
            self._current_snapshots(products)
            return []
        for s in stats.values():
            s.bronze_rows_new = 0
        counts = np.bincount(np.asarray(pc.index_in(new.owner, value_set=pa.array(products, pa.string()))),
                             minlength=len(products))
        for p, n in zip(products, counts):
            stats[p].bronze_rows_new = int(n)
        silver_rows, quarantine_rows = _select(new.table, new.owner, self.kind, self.day, self.rules,
                                                       stats, new.values)
        self.lap("mark_new")
        rebuild = []
        silver_parts, quarantine_parts, states = [], [], {}
        marks = _watermarks(new.table, new.owner)
        for i, p in enumerate(products):
            s, prior = stats[p], priors[p]
            if stats[p].bronze_rows_new == 0:
                _carry(s, prior)
                continue
            kept, again, conflicting = self._against_partition(p, silver_rows[i])
            if kept is None:
                rebuild.append(p)
                s.full_reason = "an earlier-ingested copy of a row already in Silver arrived"
                continue
            s.duplicates += again
            s.conflicting_duplicates += conflicting
            s.rows_appended, s.quarantine_appended = kept.num_rows, quarantine_rows[i].num_rows
            silver_parts.append(kept)
            quarantine_parts.append(quarantine_rows[i])
            states[p] = SilverState(
                day=self.day.isoformat(), rules=self.version, run=self.run_id, bronze_snapshot=self.bronze_snapshot,
                watermark={**prior.watermark, **marks.get(p, {})},
                window_items=prior.window_items + s.window_items, duplicates=prior.duplicates + s.duplicates,
                conflicting=prior.conflicting + s.conflicting_duplicates,
                other_partitions=prior.other_partitions + s.other_partitions,
                silver_rows=prior.silver_rows + kept.num_rows,
                quarantine_rows=prior.quarantine_rows + quarantine_rows[i].num_rows)
        self.lap("dedup_against_partition")
        self._current_snapshots([p for p in products if p not in states and p not in rebuild])
        if states:
            written = list(states)
            provenance = self.provenance(written)
            config = self.lake.catalog_config
            quarantine = pa.concat_tables(quarantine_parts)
            q_snapshot = None
            if quarantine.num_rows:
                q_snapshot = snapshots.append(config, self.quarantine_def, quarantine, provenance)
            s_snapshot = snapshots.append(config, self.silver_def, pa.concat_tables(silver_parts), provenance,
                                          always_commit=True, properties=self.record(states))
            q_snapshot = q_snapshot or snapshots.snapshot_id(self.lake.table(self.quarantine_def))
            for p in written:
                s, state = stats[p], states[p]
                s.snapshot_id, s.quarantine_snapshot_id = s_snapshot, q_snapshot
                s.window_items, s.duplicates = state.window_items, state.duplicates
                s.conflicting_duplicates, s.other_partitions = state.conflicting, state.other_partitions
            self.lap("commit")
        for p in rebuild:
            _reset(stats[p])
        return rebuild

    def drop_stale_states(self) -> None:
        """Housekeeping after the commits: the states of days long past go (a separate metadata commit, as
        another run may be dropping the same ones; if it loses that race, the next run drops them)."""
        if not self.committed or not stale_states(self.lake.table(self.silver_def))[1]:
            return
        try:
            snapshots.set_properties(self.lake.catalog_config, self.silver_def, stale_states)
        except Exception as exc:  # noqa: BLE001 - never fails a run that committed its rows
            log.info("silver %s: old partition states not dropped this time (%s)", self.kind, exc)

    def block_failed(self) -> None:
        """Partitions this run wrote that fail a blocking check get their state marked (a table property
        change), so the next run rebuilds them rather than going on from rows that are known to be wrong."""
        from crypto_assets.silver.report import SILVER_CHECKS, silver_report

        blocking = {name for name, (block, _) in SILVER_CHECKS[self.kind].items() if block}
        failed = {p: state for p, state in self.committed.items()
                  if any(c.name in blocking and not c.passed for c in silver_report(self.kind, self.stats[p])[1])}
        if failed:
            marked = {p: dataclasses.replace(state, blocked=True) for p, state in failed.items()}
            snapshots.set_properties(self.lake.catalog_config, self.silver_def,
                                     lambda table: state_properties(table, marked))

    def _current_snapshots(self, products: list[str]) -> None:
        """Partitions left as they were report the tables' current snapshots."""
        if products:
            silver = snapshots.snapshot_id(self.lake.table(self.silver_def))
            quarantine = snapshots.snapshot_id(self.lake.table(self.quarantine_def))
            for p in products:
                self.stats[p].snapshot_id, self.stats[p].quarantine_snapshot_id = silver, quarantine

    def _against_partition(self, product: str, rows: pa.Table) -> tuple[pa.Table | None, int, int]:
        """The new Silver rows of `product` whose key the partition does not hold yet, how many it does hold
        (duplicates of a copy kept before), and how many of those differ in content; None when a new copy
        was ingested before the one the partition holds (the partition must be rebuilt)."""
        if not rows.num_rows:
            return rows, 0, 0
        from pyiceberg.expressions import And, GreaterThanOrEqual, LessThanOrEqual

        key = "trade_id" if self.kind == TRADES else "content_hash"
        # Where copies of a row can be: a trade's copies share its id; a ticker's share its content, so its
        # event time too. The range of that column prunes files (by their statistics); the keys pick rows.
        locator = "trade_id" if self.kind == TRADES else "event_time"
        content = ["price", "size", "side", "trade_time"] if self.kind == TRADES else []
        order = ["ingest_time", "kafka_partition", "kafka_offset", "item_index"]
        table = self.lake.table(self.silver_def)
        bounds = pc.min_max(rows.column(locator))
        expr = And(snapshots.partition_filter({"product_id": product, "event_date": self.day}),
                   GreaterThanOrEqual(locator, _literal(bounds["min"])), LessThanOrEqual(locator, _literal(bounds["max"])))
        columns = tuple(dict.fromkeys([key, locator, *order, *content]))
        held = table.scan(row_filter=expr, selected_fields=columns).to_arrow()
        held = held.filter(pc.is_in(held.column(key), value_set=rows.column(key)))
        if not held.num_rows:
            return rows, 0, 0
        held = held.select([key, *order, *content])
        mine = rows.select([key, *order, *content])
        joined = mine.append_column("new_row", pa.array(np.arange(rows.num_rows))).join(
            held, key, join_type="inner", right_suffix="_held")
        if _earlier(joined, order):  # the copy held must come first in the dedup order, or the copy kept changes
            return None, 0, 0
        differ = 0
        for c in content:
            differ_c = pc.invert(pc.fill_null(pc.equal(joined.column(c), joined.column(f"{c}_held")), False))
            differ = differ_c if isinstance(differ, int) else pc.or_(differ, differ_c)
        conflicting = 0 if isinstance(differ, int) else int(pc.sum(differ).as_py() or 0)
        dropped = np.zeros(rows.num_rows, dtype=bool)
        dropped[np.asarray(joined.column("new_row"))] = True
        return rows.filter(pa.array(~dropped)), int(dropped.sum()), conflicting


def _literal(value: pa.Scalar):
    """An Arrow scalar as a pyiceberg literal value (timestamps as microseconds since the epoch)."""
    if pa.types.is_timestamp(value.type):
        return value.cast(pa.int64()).as_py()
    return value.as_py()


def _earlier(joined: pa.Table, order: list[str]) -> bool:
    """Whether any new copy comes before the copy held in the dedup order (lexicographic over `order`)."""
    new = [np.asarray(pc.cast(joined.column(c), pa.int64())) for c in order]
    held = [np.asarray(pc.cast(joined.column(f"{c}_held"), pa.int64())) for c in order]
    before = np.zeros(joined.num_rows, dtype=bool)
    tied = np.ones(joined.num_rows, dtype=bool)
    for a, b in zip(new, held):
        before |= tied & (a < b)
        tied &= a == b
    return bool(before.any())


def _may_hold_new(f: DataFile, day: date, priors: dict[str, SilverState]) -> bool:
    """Whether a Bronze file of ingest day `day` may hold a row some state has not read: its highest offset
    is above the watermark of a Kafka partition it may hold (by the file's bounds; unknown bounds: yes)."""
    lo, hi = f.lower, f.upper
    if not all(k in lo and k in hi for k in ("topic", "partition", "offset")) or lo["topic"] != hi["topic"]:
        return True
    if hi["partition"] - lo["partition"] > 64:
        return True
    return any(hi["offset"] > state.offset_read(day, lo["topic"], part)
               for state in priors.values() for part in range(lo["partition"], hi["partition"] + 1))


def _unread(table: pa.Table, owner: pa.Array, priors: dict[str, SilverState]) -> np.ndarray:
    """Rows whose offset is above their owner's watermark for their ingest day, topic and Kafka partition."""
    if not table.num_rows:
        return np.zeros(0, dtype=bool)
    joined = pc.binary_join_element_wise(
        owner, pc.cast(table.column("ingest_date"), pa.string()), table.column("topic"),
        pc.cast(table.column("partition"), pa.string()), "|")
    enc = pc.dictionary_encode(one_chunk(joined))
    floor = np.array([priors[k.split("|", 1)[0]].watermark.get(k.split("|", 1)[1], -1)
                      for k in enc.dictionary.to_pylist()], dtype=np.int64)
    return np.asarray(table.column("offset")) > floor[np.asarray(enc.indices)]


def _carry(s: SilverStats, prior: SilverState) -> None:
    """A partition with nothing new: its counts are the state's."""
    s.bronze_rows_new = 0
    s.window_items, s.duplicates, s.conflicting_duplicates = prior.window_items, prior.duplicates, prior.conflicting
    s.other_partitions = prior.other_partitions


def _reset(s: SilverStats) -> None:
    """Counts of a partition handed to the full rebuild (which counts everything again)."""
    s.window_items = s.duplicates = s.conflicting_duplicates = s.other_partitions = 0
    s.rows_appended = s.quarantine_appended = 0


def _select(table: pa.Table, owner: pa.Array, kind: str, day: date, rules: SilverRules, stats: dict[str, SilverStats],
            values) -> tuple[list[pa.Table], list[pa.Table]]:
    """Marks Bronze rows; the Silver and quarantine rows of each product's partition (one table per product, in
    `stats` order, with their partition columns). Counts what only the marking knows
    (items, duplicates among these rows, items of other partitions) into `stats`."""
    products = list(stats)
    marked = mark_table(table, kind, rules, values=values)  # reads `value` back for rejected rows
    at = np.asarray(pc.index_in(owner, value_set=pa.array(products, pa.string())))
    for p, n in zip(products, np.bincount(at, weights=_item_counts(table, kind), minlength=len(products))):
        stats[p].window_items = int(n)
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
    return silver_parts, quarantine_parts


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
