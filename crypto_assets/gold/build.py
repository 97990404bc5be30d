"""One Gold date for one or more products: read Silver D-1..D+1, compute, commit, check.

No Dagster and no Spark here: Silver is read with Arrow from one pinned snapshot per Silver table,
and Gold is written to `gold.features` in one Iceberg commit per run, with the Silver snapshots read in
its summary. The Gold asset and its Glue job (one product per run) and the benchmark (several products in
one pass) call `build_gold`. Checks are measured on the snapshot just committed.

A partition goes on from its state (`gold.state`) when it can: the run reads the Silver data files added
since the snapshots the state names, finds the earliest time they can change (a new trade changes its own
row, the rows after it and the targets of the LOOKAHEAD_TRADES before it; a new ticker the rows from its
time on), recomputes the rows from there (`feature_arrays` computes per segment from the data alone, so
these rows come out exactly as a full build computes them) and replaces only those rows. Otherwise, or on
request, the partition is rebuilt whole.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.gold_features import CATALOG_VERSION_KEY, FEATURE_CATALOG_VERSION, FEATURES
from crypto_assets.contracts.names import TICKER, TRADES
from crypto_assets.contracts.partitioning import LOOKAHEAD_TRADES, DayHead
from crypto_assets.contracts.tables import gold_table_def, silver_table_def
from crypto_assets.gold.checks import LeakageResult, prefix_invariance, sample_trade_ids
from crypto_assets.gold.quotes import TICKER_FIELDS, TICKER_ORDER, with_ticker_seq
from crypto_assets.gold.state import GoldState, read_state, rules_version, stale_states, state_properties
from crypto_assets.gold.table import gold_arrow_schema, gold_table
from crypto_assets.gold.transforms import LOOKBACK_SECONDS, LOOKBACK_TRADES, SEGMENT_SECONDS, segment_of, slice_start
from crypto_assets.gold.windows import sorted_by
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import DataFile, Provenance
from crypto_assets.lake.store import LakeStore as LakeResource  # the Dagster resource and Glue share it

log = logging.getLogger(__name__)

TRADE_COLUMNS = ["trade_id", "trade_time", "price", "size", "side"]
TICKER_COLUMNS = ["event_time", *TICKER_ORDER[1:], *TICKER_FIELDS]
US_PER_DAY = 86_400_000_000
# A new trade completes the targets of this many trades before it: an incremental run replaces them too.
TARGETS_COMPLETED_BEFORE = LOOKAHEAD_TRADES
# How far before the earliest change an incremental run first reads, then reads further back.
READ_BACK_US = (2 * LOOKBACK_SECONDS * 1_000_000, 6 * 3_600 * 1_000_000)


@dataclass
class GoldStats:
    product_id: str
    day: str
    table: str  # gold.features
    snapshot_id: int | None = None  # the Gold snapshot committed (or current, when nothing changed)
    silver_snapshot_ids: dict[str, int] = field(default_factory=dict)  # Silver table -> snapshot read
    silver_days: list[str] = field(default_factory=list)
    ticker_days: list[str] = field(default_factory=list)
    next_day_head: DayHead = DayHead()  # the first Silver trades of D+1, read for the targets
    empty_reason: str | None = None
    mode: str = "full"  # full | incremental | unchanged
    full_rebuild_reason: str | None = None
    silver_snapshots_read_from: dict[str, int | None] = field(default_factory=dict)  # incremental: since these
    silver_rows_read: int = 0  # Silver trades read (all of D-1..D+1's head when full)
    recomputed_from: str | None = None  # incremental: the rows from this trade time on were replaced
    rows_written: int = 0  # rows this run wrote (the whole partition when full)
    rows_replaced: int = 0  # rows of the partition this run's rows replaced
    silver_rows: int = 0  # Silver trades of the day
    next_day_trades: int = 0  # Silver trades of D+1 (from the table's metadata)
    excluded_lookback: int = 0  # computed independently of the writer
    rows: int = 0  # the partition holds (read back)
    training_ready: int = 0
    tickers_in_input: int = 0
    rows_without_quote: int = 0  # among the rows measured (all when full, those written when incremental)
    min_trade_time: str | None = None
    max_trade_time: str | None = None
    schema_problems: list[str] = field(default_factory=list)
    duplicate_keys: int = 0
    nulls_when_full: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    infinities: dict[str, int] = field(default_factory=dict)
    leakage: LeakageResult | None = None
    preview: list[dict] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.silver_rows == self.rows + self.excluded_lookback

    @property
    def expected_without_targets(self) -> int:
        """Rows whose targets cannot be known yet: the last ones, short of LOOKAHEAD_TRADES later trades."""
        return min(self.rows, max(LOOKAHEAD_TRADES - self.next_day_trades, 0))


@dataclass
class SilverInput:
    """The Silver tables as of one pinned snapshot each (the same for every product of a run)."""

    lake: LakeResource
    snapshots: dict[str, tuple[object, int | None]]  # kind -> (table, snapshot id)

    @classmethod
    def pin(cls, lake: LakeResource) -> SilverInput:
        out = {}
        for kind in (TRADES, TICKER):
            table = lake.table(silver_table_def(kind))
            out[kind] = (table, snapshots.snapshot_id(table))
        return cls(lake, out)

    @property
    def ids(self) -> dict[str, int]:
        return {silver_table_def(k).identifier: snap for k, (_, snap) in self.snapshots.items() if snap is not None}

    def files(self, kind: str, product: str, days: list[date], snapshot: int | None = None) -> list[DataFile]:
        """The data files holding rows of `product` on `days` (at the pinned snapshot by default), with the
        bounds of their time column."""
        table, pinned = self.snapshots[kind]
        snap = pinned if snapshot is None else snapshot
        if snap is None:
            return []
        column = "trade_time" if kind == TRADES else "event_time"
        return [f for f in snapshots.snapshot_files(table, {"product_id": product, "event_date": days}, snap,
                                                    bounds=(column,))[1] if f.records]

    def has_snapshot(self, kind: str, snapshot: int) -> bool:
        return self.snapshots[kind][0].snapshot_by_id(snapshot) is not None


def _naive_utc(df: pd.DataFrame) -> pd.DataFrame:
    """Silver's timestamps are UTC-adjusted; the feature code works on naive UTC times."""
    for c in df.columns:
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = df[c].dt.tz_convert(None)
    return df


def _day_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * US_PER_DAY


def iso_utc(us: int) -> str:
    """Microseconds since the epoch as an ISO UTC time (a row filter's literal, a metadata value)."""
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat()


def _bound(f: DataFile, column: str, upper: bool) -> int | None:
    value = (f.upper if upper else f.lower).get(column)
    return None if value is None else int(value)


def read_since(lake: LakeResource, files: list[DataFile], columns: list[str], column: str,
               since_us: int | None = None) -> pa.Table | None:
    """The rows of `files` with the time `column` at or after `since_us` (all when None), as Arrow; files whose
    upper bound lies before it are not read. None when no file is left."""
    if since_us is not None:
        files = [f for f in files if (_bound(f, column, True) is None or _bound(f, column, True) >= since_us)]
    if not files:
        return None
    table = lake.read_files([f.path for f in files], columns)
    if since_us is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.greater_equal(table.column(column).cast(pa.int64()), since_us))
    return table


def _read(lake: LakeResource, files: list[DataFile], columns: list[str], column: str,
          since_us: int | None = None) -> pd.DataFrame:
    """`read_since` as a DataFrame, naive UTC (empty, with the columns, when nothing is read)."""
    table = read_since(lake, files, columns, column, since_us)
    if table is None:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[us]" if c in ("trade_time", "event_time") else object)
                             for c in columns})
    return _naive_utc(table.to_pandas())


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames' rows (empty frames add no rows and no column types)."""
    rows = [f for f in frames if len(f)]
    return pd.concat(rows, ignore_index=True) if rows else frames[0]


def _head(lake: LakeResource, files: list[DataFile], k: int) -> pd.DataFrame:
    """The first k trades in (trade_time, trade_id) order of `files`: files are read lowest time bound first,
    until no file left can hold a trade before the k-th found."""
    order = sorted(files, key=lambda f: (_bound(f, "trade_time", False) is not None,
                                         _bound(f, "trade_time", False) or 0))
    frames, rows = [], None
    for i, f in enumerate(order):
        lower = _bound(f, "trade_time", False)
        if rows is not None and len(rows) >= k and lower is not None:
            kth = int(rows["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)[k - 1])
            if lower > kth:
                break
        frames.append(_read(lake, [f], TRADE_COLUMNS, "trade_time"))
        rows = sorted_by(_concat(frames), ["trade_time", "trade_id"]).iloc[:k]
        frames = [rows]
    return rows.reset_index(drop=True) if rows is not None else _read(lake, [], TRADE_COLUMNS, "trade_time")


def build_gold(
    lake: LakeResource,
    day: date,
    products: list[str],
    quote_join: str = "asof",
    leakage_samples: int = 16,
    run_id: str = "",
    full: bool = False,
) -> dict[str, GoldStats]:
    """Brings the Gold partitions (day, p) of each product p up to date, in one commit: incrementally from
    their states (`gold.state`), or rebuilt whole (`full`, or when a state cannot be trusted).

    A Gold partition is one product's sequential computation, so it runs where the data is read:
    Silver with Arrow, `gold_table` (the feature arrays as an Arrow table), products on parallel
    threads; then one commit of every product's rows, and the checks on the snapshot committed.
    """
    silver = SilverInput.pin(lake)
    gold = gold_table_def()
    gold_now = lake.table(gold)
    version = rules_version(quote_join, SEGMENT_SECONDS)
    stats = {p: GoldStats(p, day.isoformat(), gold.identifier, silver_snapshot_ids=silver.ids) for p in products}
    usable = _usable_states(silver, gold_now, day, stats, version, quote_join, full)
    states = {p: state for p, (state, _) in usable.items()}
    clock = time.perf_counter()

    def compute(p: str):
        if p in states:
            return _compute_incremental(silver, day, stats[p], *usable[p], quote_join)
        return _compute_full(silver, day, stats[p], quote_join)

    if len(products) > 1:
        # Products are independent; Parquet I/O and most NumPy/pandas kernels release the GIL.
        with ThreadPoolExecutor(max_workers=min(len(products), os.cpu_count() or 1)) as pool:
            computed = dict(zip(products, pool.map(compute, products)))
    else:
        computed = {p: compute(p) for p in products}
    timings = {"read_and_compute": time.perf_counter() - clock}
    clock = time.perf_counter()
    rewritten = [p for p in products if stats[p].mode == "full" or computed[p].cut_us is not None]
    cuts = {p: computed[p].cut_us for p in rewritten if computed[p].cut_us is not None}
    for p in rewritten:
        s = stats[p]
        s.rows_written = sum(t.num_rows for t in computed[p].tables)
        s.rows_replaced = rows_from(lake, gold_now, day, p, cuts.get(p))
    new_states = {p: GoldState(day.isoformat(), version, run_id, silver.snapshots[TRADES][1],
                               silver.snapshots[TICKER][1],
                               rows=(states[p].rows if p in cuts else 0) - stats[p].rows_replaced * (p in cuts)
                               + stats[p].rows_written,
                               excluded_lookback=stats[p].excluded_lookback)
                  for p in products if stats[p].mode != "unchanged"}
    tables = [_with_partition(t, p, day) for p in rewritten for t in computed[p].tables]
    snapshot = snapshots.snapshot_id(gold_now)
    if rewritten:
        snapshot = snapshots.replace(
            lake.catalog_config, gold, tables,  # one table per product and hour: written in parallel
            {"product_id": rewritten, "event_date": day},
            Provenance(asset="gold_features", partition=f"{day.isoformat()}|{','.join(products)}", run_id=run_id,
                       upstream=silver.ids, extra={CATALOG_VERSION_KEY: FEATURE_CATALOG_VERSION}),
            always_commit=True,  # the state moves on even when no row changed
            properties=lambda table: _merge(state_properties(table, new_states), stale_states(table)),
            rows_from={p: ("trade_time", iso_utc(cut)) for p, cut in cuts.items()})
    elif new_states:  # Silver grew, but not where it changes a row of D: only the states move on
        snapshots.set_properties(lake.catalog_config, gold, lambda table: state_properties(table, new_states))
    timings["commit"] = time.perf_counter() - clock
    del tables
    for p, s in stats.items():
        clock = time.perf_counter()
        s.snapshot_id = snapshot
        c = computed.pop(p)
        if p not in rewritten:
            if p in states:
                s.rows, s.excluded_lookback = states[p].rows, states[p].excluded_lookback
                _measure(lake, day, s, since_us=None, keys_only=True)
            continue
        if c.trades is None:
            continue
        written = _measure(lake, day, s, since_us=cuts.get(p))
        if s.rows_written and leakage_samples and written is not None:
            s.leakage = _leakage(written, s, c.trades, c.tickers, quote_join, leakage_samples)
        timings[f"checks_{p}"] = time.perf_counter() - clock
    _block_failed(lake, gold, {p: stats[p] for p in rewritten}, new_states)
    log.info("gold %s %s timings (s): %s", day, ",".join(products), {k: round(v, 2) for k, v in timings.items()})
    return stats


def _merge(*changes: tuple[dict[str, str], list[str]]) -> tuple[dict[str, str], list[str]]:
    updates, removals = {}, []
    for u, r in changes:
        updates.update(u)
        removals += [k for k in r if k not in updates]
    return updates, removals


def _block_failed(lake: LakeResource, gold, stats: dict[str, GoldStats], new_states: dict[str, GoldState]) -> None:
    """Partitions this run wrote that fail a blocking check get their state marked, so the next run
    rebuilds them rather than going on from rows known to be wrong."""
    from crypto_assets.gold.report import GOLD_CHECKS, gold_report

    blocking = {name for name, (block, _) in GOLD_CHECKS.items() if block}
    marked = {p: replace(new_states[p], blocked=True) for p, s in stats.items()
              if any(c.name in blocking and not c.passed for c in gold_report(s)[1])}
    if marked:
        snapshots.set_properties(lake.catalog_config, gold, lambda table: state_properties(table, marked))


def _rows_held(table, day: date, products: list[str]) -> dict[str, int]:
    """product -> rows its Gold partition of `day` holds (from the table's metadata: no data read)."""
    out: dict[str, int] = {}
    for f in snapshots.snapshot_files(table, {"product_id": products, "event_date": day})[1]:
        out[f.partition["product_id"]] = out.get(f.partition["product_id"], 0) + f.records
    return out


def rows_from(lake: LakeResource, table, day: date, product: str, cut_us: int | None,
              column: str = "trade_time") -> int:
    """Rows of the (day, product) partition of `table` (with the time `column` at or after `cut_us`, when
    given: those a run replaces), from the files' record counts and bounds; only a file holding the cut is read."""
    import pyarrow.compute as pc

    files = snapshots.snapshot_files(table, {"product_id": product, "event_date": day}, bounds=(column,))[1]
    out = 0
    for f in files:
        upper, lower = _bound(f, column, True), _bound(f, column, False)
        if cut_us is None or (lower is not None and lower >= cut_us):
            out += f.records
        elif upper is None or upper >= cut_us:
            times = lake.read_files([f.path], [column]).column(column).cast(pa.int64())
            out += int(pc.sum(pc.greater_equal(times, cut_us)).as_py() or 0)
    return out


def _usable_states(silver: SilverInput, gold_now, day: date, stats: dict[str, GoldStats], version: str,
                   quote_join: str, full: bool) -> dict[str, tuple[GoldState, SilverFiles]]:
    """product -> the state its partition can go on from and its Silver files; the others get
    `full_rebuild_reason` (a warning line when the partition held rows)."""
    held = _rows_held(gold_now, day, list(stats))
    out = {}
    for p, s in stats.items():
        state = read_state(gold_now, day, p)
        if full:
            s.full_rebuild_reason = "a full rebuild was asked for"
            continue
        if state is None:
            s.full_rebuild_reason = "no state recorded for the partition"
            if held.get(p):
                s.full_rebuild_reason += " (written by an earlier version, or too long ago)"
                log.warning("gold %s %s: rebuilding the partition in full: %s", day, p, s.full_rebuild_reason)
            continue
        if state.rules != version:
            s.full_rebuild_reason = "the feature rules changed since the partition was written"
        elif state.blocked:
            s.full_rebuild_reason = "the partition failed a blocking check when it was last written"
        elif held.get(p, 0) != state.rows:
            s.full_rebuild_reason = (f"the partition holds {held.get(p, 0)} rows where its state counts {state.rows} "
                                     f"(another writer changed it)")
        elif quote_join != "asof":
            s.full_rebuild_reason = f"quote join {quote_join!r} reads tickers after the trade: never incremental"
        else:
            s.full_rebuild_reason, files = _silver_changes(silver, day, p, state)
            if s.full_rebuild_reason is None:
                out[p] = (state, files)
                s.mode = "incremental"
                continue
        log.warning("gold %s %s: rebuilding the partition in full: %s", day, p, s.full_rebuild_reason)
    return out


def _trade_days(day: date) -> list[date]:
    return [day - timedelta(days=1), day, day + timedelta(days=1)]


def _ticker_days(day: date) -> list[date]:
    return [day - timedelta(days=1), day]


@dataclass
class SilverFiles:
    """The Silver data files Gold (day, product) reads at the pinned snapshots, and which of them are new
    since the state's snapshots (listed once per run: an incremental run needs both)."""

    now: dict[str, list[DataFile]]  # kind -> files
    new: dict[str, list[DataFile]]  # kind -> files added since the state's snapshot


def _silver_changes(silver: SilverInput, day: date, product: str,
                    state: GoldState) -> tuple[str | None, SilverFiles | None]:
    """(why the Silver rows the state's snapshots held may have changed, not only grown, or None; the files)."""
    now, new = {}, {}
    for kind, snap, days in ((TRADES, state.trades_snapshot, _trade_days(day)),
                             (TICKER, state.ticker_snapshot, _ticker_days(day))):
        now[kind] = silver.files(kind, product, days)
        if snap is None:
            new[kind] = now[kind]
            continue
        if not silver.has_snapshot(kind, snap):
            return f"the Silver {kind} snapshot the partition was last built from ({snap}) was expired", None
        paths = {f.path for f in now[kind]}
        known = {f.path for f in silver.files(kind, product, days, snap)}
        if known - paths:
            return f"Silver {kind} rows it was built from were rewritten since snapshot {snap}", None
        new[kind] = [f for f in now[kind] if f.path not in known]
    return None, SilverFiles(now, new)


@dataclass
class Computed:
    tables: list[pa.Table]  # the rows to write, in time order (one table per hour when full)
    trades: pd.DataFrame | None  # the Silver trades read, sorted (None: nothing to compute)
    tickers: pd.DataFrame | None
    cut_us: int | None = None  # incremental: the rows from this time on are replaced


def _by_hour(table: pa.Table) -> list[pa.Table]:
    """A day's rows (in time order) as one table per UTC hour: later runs rewrite only the last ones."""
    if table.num_rows == 0:
        return []
    hours = table.column("trade_time").cast(pa.int64()).to_numpy() // 3_600_000_000
    edges = np.concatenate([[0], np.flatnonzero(np.diff(hours)) + 1, [len(hours)]])
    return [table.slice(a, b - a) for a, b in zip(edges[:-1], edges[1:])]


def _compute_full(silver: SilverInput, day: date, s: GoldStats, quote_join: str) -> Computed:
    """The whole partition: Silver trades of D-1 and D, the first LOOKAHEAD_TRADES of D+1, tickers D-1..D."""
    p, lake = s.product_id, silver.lake
    trade_files = silver.files(TRADES, p, _trade_days(day))
    by_day = {d: [f for f in trade_files if f.partition["event_date"] == d] for d in _trade_days(day)}
    ticker_files = silver.files(TICKER, p, _ticker_days(day))
    s.silver_days = [d.isoformat() for d, files in by_day.items() if files]
    s.ticker_days = sorted({f.partition["event_date"].isoformat() for f in ticker_files})
    s.next_day_trades = sum(f.records for f in by_day[day + timedelta(days=1)])
    if day.isoformat() not in s.silver_days:
        s.empty_reason = f"Silver trades {p} {day} is missing or empty: nothing to compute"
        return Computed([], None, None)
    head = _head(lake, by_day[day + timedelta(days=1)], LOOKAHEAD_TRADES)
    trades = _sorted_trades(_concat([_read(lake, by_day[day - timedelta(days=1)], TRADE_COLUMNS, "trade_time"),
                                     _read(lake, by_day[day], TRADE_COLUMNS, "trade_time"), head]), p, day, s)
    tickers = with_ticker_seq(_read(lake, ticker_files, TICKER_COLUMNS, "event_time"))
    s.tickers_in_input, s.silver_rows_read = len(tickers), len(trades)
    _reconcile(trades, day, s)
    ts = trades["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    rows = (int(np.searchsorted(ts, _day_us(day))), int(np.searchsorted(ts, _day_us(day + timedelta(days=1)))))
    return Computed(_by_hour(gold_table(trades, tickers, day, quote_join, rows)), trades, tickers)


def _sorted_trades(trades: pd.DataFrame, product: str, day: date, s: GoldStats) -> pd.DataFrame:
    trades = sorted_by(trades, ["trade_time", "trade_id"])
    trades["product_id"] = product
    times_us = trades["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    next_day = times_us >= _day_us(day + timedelta(days=1))
    s.next_day_head = DayHead.of(trades["trade_id"].to_numpy()[next_day], times_us[next_day],
                                 trades["price"].to_numpy()[next_day])
    return trades


def _compute_incremental(silver: SilverInput, day: date, s: GoldStats, state: GoldState, files: SilverFiles,
                         quote_join: str) -> Computed:
    """The rows the Silver files added since the state's snapshots can change, recomputed.

    The earliest change: the lowest time bound of the new trade files (of D-1 and D, and of D+1 where they
    reach into its first LOOKAHEAD_TRADES trades) and of the new ticker files. The run reads the trades
    from a little before it (further back, then all, until the read reaches over the slice of the first
    row it recomputes: `slice_start`), recomputes from LOOKAHEAD_TRADES trades before the first new one
    (their targets) or the first trade at or after the first new ticker, and replaces the rows from that
    trade's time on."""
    p, lake = s.product_id, silver.lake
    s.silver_snapshots_read_from = {silver_table_def(TRADES).identifier: state.trades_snapshot,
                                    silver_table_def(TICKER).identifier: state.ticker_snapshot}
    trade_files, ticker_files = files.now[TRADES], files.now[TICKER]
    new_trades, new_tickers = files.new[TRADES], files.new[TICKER]
    by_day = {d: [f for f in trade_files if f.partition["event_date"] == d] for d in _trade_days(day)}
    s.silver_days = [d.isoformat() for d, files in by_day.items() if files]
    s.ticker_days = sorted({f.partition["event_date"].isoformat() for f in ticker_files})
    s.silver_rows = sum(f.records for f in by_day[day])
    s.next_day_trades = sum(f.records for f in by_day[day + timedelta(days=1)])
    s.excluded_lookback = state.excluded_lookback
    if not new_trades and not new_tickers:
        s.mode = "unchanged"
        return Computed([], None, None)
    head = _head(lake, by_day[day + timedelta(days=1)], LOOKAHEAD_TRADES)
    head_us = head["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    head_last = int(head_us[-1]) if len(head_us) >= LOOKAHEAD_TRADES else None
    end_us = _day_us(day + timedelta(days=1))

    def lowest(files: list[DataFile], column: str) -> int | None:
        bounds = [_bound(f, column, False) for f in files]
        return min((b if b is not None else -(2**62)) for b in bounds) if bounds else None

    changed_trades = [f for f in new_trades if f.partition["event_date"] != day + timedelta(days=1)
                      or head_last is None or (_bound(f, "trade_time", False) or 0) <= head_last]
    first_trade = lowest(changed_trades, "trade_time")
    first_ticker = lowest(new_tickers, "event_time")
    if first_ticker is not None and first_ticker >= end_us:
        first_ticker = None
    if first_trade is None and first_ticker is None:  # nothing new reaches the rows of D
        return Computed([], None, None)  # mode stays "incremental": the state moves on, no row changes
    earliest = min(t for t in (first_trade, first_ticker) if t is not None)
    floor = (min(earliest, end_us - 1) // (SEGMENT_SECONDS * 1_000_000)) * SEGMENT_SECONDS * 1_000_000
    for since in (floor - READ_BACK_US[0], floor - READ_BACK_US[1], None):
        trades = _sorted_trades(_concat([_read(lake, by_day[day - timedelta(days=1)], TRADE_COLUMNS, "trade_time", since),
                                         _read(lake, by_day[day], TRADE_COLUMNS, "trade_time", since), head]), p, day, s)
        ts = trades["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        n, first_d, end_d = len(ts), int(np.searchsorted(ts, _day_us(day))), int(np.searchsorted(ts, end_us))
        cut = n
        if first_trade is not None:
            cut = int(np.searchsorted(ts, first_trade)) - TARGETS_COMPLETED_BEFORE
        if first_ticker is not None:
            cut = min(cut, int(np.searchsorted(ts, first_ticker)))
        if since is None:
            cut = max(cut, first_d, 0)
            break
        if cut < 0:
            continue
        cut = max(cut, first_d)
        if cut >= end_d:
            break
        cut = int(np.searchsorted(ts, ts[cut]))  # every row of that time: the delete goes by time
        segment_us = int(segment_of(ts[cut:cut + 1])[0]) * SEGMENT_SECONDS * 1_000_000
        r0 = int(np.searchsorted(ts, segment_us))
        if since <= segment_us and slice_start(ts, r0) >= 0:
            break
    s.silver_rows_read = n
    if since is None:  # the whole input was read: the rows lacking the lookback may have changed too
        _reconcile(trades, day, s)
    if cut >= end_d:  # the change reaches no row of D: the state moves on, no row changes
        return Computed([], None, None)
    cut = int(np.searchsorted(ts, ts[cut]))
    cut_us = int(ts[cut])
    s.recomputed_from = iso_utc(cut_us)
    tickers = _tickers_for(lake, ticker_files, cut_us)
    s.tickers_in_input = len(tickers)
    rows = gold_table(trades, tickers, day, quote_join, (cut, end_d), suffix=since is not None)
    return Computed([rows], trades, tickers, cut_us)


def _tickers_for(lake: LakeResource, files: list[DataFile], from_us: int) -> pd.DataFrame:
    """Tickers enough for the quotes of the trades from `from_us` on: those from a little before it, if
    one of them is at or before it (the quote the first of those trades sees), else all."""
    for since in (from_us - READ_BACK_US[0], from_us - READ_BACK_US[1], None):
        tickers = _read(lake, files, TICKER_COLUMNS, "event_time", since)
        times = tickers["event_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        if since is None or (len(times) and times.min() <= from_us):
            return with_ticker_seq(tickers)
    raise AssertionError("unreachable")


def _with_partition(table: pa.Table, product: str, day: date) -> pa.Table:
    table = table.append_column("product_id", pa.repeat(pa.scalar(product, pa.string()), table.num_rows))
    return table.append_column("event_date", pa.repeat(pa.scalar(day, pa.date32()), table.num_rows))


def _reconcile(trades: pd.DataFrame, day: date, s: GoldStats) -> None:
    """Silver trades of D and how many of them lack the lookback, counted without the feature code.

    Rows lacking the lookback form a prefix of the product's trades: the first LOOKBACK_TRADES
    of the input and those within LOOKBACK_SECONDS of the first trade.
    """
    times = trades["trade_time"]
    start = pd.Timestamp(day)
    in_day = (times >= start) & (times < start + pd.Timedelta(days=1))
    s.silver_rows = int(in_day.sum())
    by_rank = min(max(LOOKBACK_TRADES - int((times < start).sum()), 0), s.silver_rows)
    horizon = times.min() + pd.Timedelta(seconds=LOOKBACK_SECONDS)
    by_time = int((in_day & (times < horizon)).sum())
    s.excluded_lookback = max(by_rank, by_time)


KEY_COLUMNS = ["trade_id", "trade_time", "is_training_ready"]


def _measure(lake: LakeResource, day: date, s: GoldStats, since_us: int | None, keys_only: bool = False):
    """Read back from the snapshot committed (the files it lists for the partition, with Arrow): keys, row
    counts and time range over the whole partition; schema, nulls, ranges and a preview over the rows this
    run wrote (all when full; from `since_us` on when incremental: the rows before were measured by the
    runs that wrote them, and a failure there blocked the partition).

    Returns the rows measured and their order by (trade_time, trade_id), for the leakage check."""
    import pyarrow.compute as pc

    if s.snapshot_id is None:
        return None
    _, files = snapshots.snapshot_files(lake.table(gold_table_def()), {"product_id": s.product_id, "event_date": day},
                                        s.snapshot_id, bounds=("trade_time",))
    if not files:
        return None
    keys = lake.read_files([f.path for f in files], KEY_COLUMNS)
    s.rows = keys.num_rows
    trade_ids = keys.column("trade_id").to_numpy(zero_copy_only=False)
    times = keys.column("trade_time").to_numpy(zero_copy_only=False)
    s.duplicate_keys = int(s.rows - len(np.unique(trade_ids)))
    s.training_ready = int(np.count_nonzero(keys.column("is_training_ready").to_numpy(zero_copy_only=False)))
    if s.rows:
        s.min_trade_time = pd.Timestamp(times.min()).tz_localize("UTC").isoformat()
        s.max_trade_time = pd.Timestamp(times.max()).tz_localize("UTC").isoformat()
    if keys_only:
        return None
    if since_us is not None:
        files = [f for f in files if _bound(f, "trade_time", True) is None or _bound(f, "trade_time", True) >= since_us]
    if not files:
        return None
    table = lake.read_files([f.path for f in files])
    if since_us is not None:
        table = table.filter(pc.greater_equal(table.column("trade_time").cast(pa.int64()), since_us))
    actual = {f.name: f.type for f in table.schema}
    s.schema_problems = [
        f"{f.name}: expected {f.type}, found {actual.get(f.name, 'missing')}"
        for f in gold_arrow_schema(with_partition_columns=True)
        if actual.get(f.name) != f.type
    ]

    def values(name: str) -> np.ndarray:  # nulls as NaN
        return table.column(name).to_numpy(zero_copy_only=False).astype(float, copy=False)

    order = np.lexsort((table.column("trade_id").to_numpy(zero_copy_only=False),
                        table.column("trade_time").to_numpy(zero_copy_only=False)))
    s.rows_without_quote = int(np.isnan(values("best_bid")).sum()) if "best_bid" in actual else 0
    for f in FEATURES:
        if f.name not in actual:
            continue
        col = values(f.name)
        missing = np.isnan(col)
        if f.never_null_when_full and (nulls := int(missing.sum())):
            s.nulls_when_full[f.name] = nulls
        if f.dtype == "double" and (bad := int(np.isinf(col).sum())):
            s.infinities[f.name] = bad
        if f.bounds:
            with np.errstate(invalid="ignore"):
                outside = int(((col < f.bounds[0]) | (col > f.bounds[1])).sum())
            if outside:
                s.out_of_range[f.name] = outside
    cols = ["trade_time", "trade_id", "price", "size", "side", "ma_10_trades", "rsi_14", "vwap_50", "best_bid", "best_ask",
            "future_price_10", "is_training_ready"]
    s.preview = _naive_utc(table.take(order[:5]).select(cols).to_pandas()).to_dict("records")
    return table, order


def _leakage(written, s: GoldStats, trades: pd.DataFrame, tickers: pd.DataFrame, quote_join: str,
             k: int) -> LeakageResult:
    table, order = written
    ids = table.column("trade_id").to_numpy(zero_copy_only=False)[order]
    chosen = sample_trade_ids(ids, k, seed=int(s.day.replace("-", "")))
    rows = _naive_utc(table.take(order[np.isin(ids, chosen)]).to_pandas())
    return prefix_invariance(trades, tickers, rows, quote_join)
