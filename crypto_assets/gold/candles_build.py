"""One candles date for one or more products: read the input from one pinned snapshot, compute, commit, check.

`gold.candles_1m` (D, P) is computed from Silver trades and ticker (D, P), each read from one pinned snapshot
(`SilverInput`, as Gold reads them); `gold.candles_1h` (D, P) is rolled up from `gold.candles_1m` (D, P) as
of its current snapshot. A window depends only on the input rows of its own time span, so a run goes on from
the partition's state (`CandleState`): it recomputes the windows from the earliest time the input files added
since hold and replaces those, in one commit with the snapshots read in the summary; the whole partition when
there is no usable state. Then it measures the checks on the snapshot just committed. No Dagster, no Spark:
the candles assets and their Glue jobs call `build_candles`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.names import TICKER, TRADES, candles_asset
from crypto_assets.contracts.tables import candles_table_def, silver_table_def
from crypto_assets.gold.build import SilverInput, iso_utc, read_since, rows_from
from crypto_assets.gold.candles import (
    CANDLE_FIELDS,
    INTERVAL_US,
    SUMMED,
    TICKER_COLUMNS,
    TRADE_COLUMNS,
    micros,
    minute_candles,
    rollup_candles,
)
from crypto_assets.lake import partition_state, snapshots
from crypto_assets.lake.snapshots import DataFile, Provenance
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)

# What each interval is computed from: Silver (1m), or the finer candles table (1h).
SOURCE = {"1m": None, "1h": "1m"}
# Sums agree to rounding (added in another order), not bit for bit.
REL_TOL = 1e-9
# The state an incremental run goes on from, a table property per (day, product) (`lake.partition_state`).
STATE_PREFIX = "crypto.candles-state."
LOGIC_VERSION = 1  # raised when what a candle holds changes: partitions written before are rebuilt whole
# The input of each interval: (table kind or finer interval, its time column).
TIME_COLUMN = {TRADES: "trade_time", TICKER: "event_time", "1m": "window_start"}


@dataclass
class CandleState:
    """A window depends only on the input rows of its own time span, so a run recomputes the windows from
    the earliest time the input files added since `upstream` (table -> snapshot read) hold, and replaces them."""

    day: str
    logic: int
    run: str
    upstream: dict[str, int | None]
    rows: int  # the partition's rows after the commit that recorded this state


@dataclass
class CandleStats:
    interval: str
    product_id: str
    day: str
    table: str
    snapshot_id: int | None = None  # the candles snapshot committed
    upstream_snapshot_ids: dict[str, int] = field(default_factory=dict)  # table read -> snapshot
    empty_reason: str | None = None
    mode: str = "full"  # full | incremental | unchanged
    full_rebuild_reason: str | None = None
    recomputed_from: str | None = None  # incremental: the windows from this start on were replaced
    rows_written: int = 0
    input_rows: int = 0  # Silver trades of the day (1m) / 1m candles of the day (1h)
    tickers_in_input: int = 0  # Silver tickers of the day with a bid and an ask (1m) / sum of ticker_count (1h)
    input_sums: dict[str, float] = field(default_factory=dict)  # SUMMED over the input, counted independently
    rows: int = 0  # written (read back)
    sums: dict[str, float] = field(default_factory=dict)  # SUMMED over the rows written
    windows_without_quote: int = 0
    schema_problems: list[str] = field(default_factory=list)
    duplicate_windows: int = 0
    windows_outside_day: int = 0  # not aligned to the interval, or not in the partition's day
    ohlc_violations: int = 0  # rows where low <= open, close <= high does not hold
    ohlc_examples: list[dict] = field(default_factory=list)
    first_window: str | None = None
    last_window: str | None = None
    preview: list[dict] = field(default_factory=list)

    @property
    def sums_mismatched(self) -> dict[str, dict[str, float]]:
        """The sums that differ between the input and the rows written (beyond rounding)."""
        out = {}
        for c in SUMMED:
            a, b = float(self.input_sums.get(c, 0.0)), float(self.sums.get(c, 0.0))
            if abs(a - b) > max(1e-12, REL_TOL * max(abs(a), abs(b))):
                out[c] = {"input": a, "written": b}
        return out


def _read(lake: LakeStore, files: list[str], columns: list[str]) -> pd.DataFrame:
    return lake.read_files(files, columns).to_pandas()


def _silver_sums(trades: pd.DataFrame) -> dict[str, float]:
    """The day's Silver totals, straight from the trades (no windows)."""
    price, size = trades["price"].to_numpy(dtype=float), trades["size"].to_numpy(dtype=float)
    side = trades["side"].to_numpy()
    return {"volume": float(size.sum()), "notional": float((price * size).sum()), "trade_count": len(trades),
            "buy_volume": float(size[side == "BUY"].sum()), "sell_volume": float(size[side == "SELL"].sum())}


def _table_sums(table: pa.Table) -> dict[str, float]:
    import pyarrow.compute as pc

    return {c: (pc.sum(table.column(c)).as_py() or 0) for c in SUMMED}


def _with_partition(table: pa.Table, product: str, day: date) -> pa.Table:
    table = table.append_column("product_id", pa.repeat(pa.scalar(product, pa.string()), table.num_rows))
    return table.append_column("event_date", pa.repeat(pa.scalar(day, pa.date32()), table.num_rows))


def _files(table, product: str, day: date, snap: int | None, column: str) -> list[DataFile]:
    if snap is None:
        return []
    return [f for f in snapshots.snapshot_files(table, {"product_id": product, "event_date": day}, snap,
                                                bounds=(column,))[1] if f.records]


class _Inputs:
    """The tables a candles interval reads, each at one pinned snapshot: Silver trades and ticker (1m), or
    the finer candles table (1h)."""

    def __init__(self, lake: LakeStore, interval: str):
        self.lake, self.interval = lake, interval
        if SOURCE[interval] is None:
            silver = SilverInput.pin(lake)
            self.tables = {TRADES: silver.snapshots[TRADES], TICKER: silver.snapshots[TICKER]}
            self.names = {kind: silver_table_def(kind).identifier for kind in (TRADES, TICKER)}
        else:
            source_def = candles_table_def(SOURCE[interval])
            table = lake.table(source_def)
            self.tables = {SOURCE[interval]: (table, snapshots.snapshot_id(table))}
            self.names = {SOURCE[interval]: source_def.identifier}

    @property
    def ids(self) -> dict[str, int]:
        return {self.names[k]: snap for k, (_, snap) in self.tables.items() if snap is not None}

    def files(self, kind: str, product: str, day: date, snap: int | None = None) -> list[DataFile]:
        table, pinned = self.tables[kind]
        return _files(table, product, day, pinned if snap is None else snap, TIME_COLUMN[kind])


def _plan(inputs: _Inputs, table, day: date, s: CandleStats, held: int) -> tuple[int | None, bool]:
    """(the window start from which the partition is recomputed, None: whole; whether anything is new)."""
    state_json = partition_state.read_state_json(table, STATE_PREFIX, day, s.product_id)
    state = CandleState(**state_json) if state_json else None
    if state is None:
        s.full_rebuild_reason = "no state recorded for the partition"
        return None, True
    if state.logic != LOGIC_VERSION:
        s.full_rebuild_reason = "what a candle holds changed since the partition was written"
        return None, True
    if held != state.rows:
        s.full_rebuild_reason = f"the partition holds {held} rows where its state counts {state.rows} (another writer)"
        return None, True
    earliest = None
    for kind, (source, _) in inputs.tables.items():
        snap = state.upstream.get(inputs.names[kind])
        if snap is not None and source.snapshot_by_id(snap) is None:
            s.full_rebuild_reason = f"the {inputs.names[kind]} snapshot the partition was built from ({snap}) was expired"
            return None, True
        known = {f.path for f in inputs.files(kind, s.product_id, day, snap)} if snap is not None else set()
        now = inputs.files(kind, s.product_id, day)
        if known - {f.path for f in now}:
            s.full_rebuild_reason = f"{inputs.names[kind]} rows it was built from were rewritten since snapshot {snap}"
            return None, True
        for f in now:
            if f.path not in known:
                lower = f.lower.get(TIME_COLUMN[kind])
                lower = -(2**62) if lower is None else int(lower)
                earliest = lower if earliest is None else min(earliest, lower)
    s.mode = "incremental"
    if earliest is None:
        s.mode = "unchanged"
        return None, False
    width = INTERVAL_US[inputs.interval]
    return max(earliest, -(2**62)) // width * width, True


def _compute(inputs: _Inputs, day: date, s: CandleStats, since_us: int | None) -> pa.Table | None:
    """The candles of the windows from `since_us` on (all when None), and the day's input sums for the checks."""
    lake, p = inputs.lake, s.product_id
    if SOURCE[inputs.interval] is None:
        trade_files = inputs.files(TRADES, p, day)
        if not trade_files:
            s.empty_reason = f"Silver trades {p} {day} is missing or empty: no candles"
            return None
        day_trades = _read(lake, [f.path for f in trade_files], ["price", "size", "side"])
        s.input_rows, s.input_sums = len(day_trades), _silver_sums(day_trades)
        trades = read_since(lake, trade_files, TRADE_COLUMNS, "trade_time", since_us)
        tickers = read_since(lake, inputs.files(TICKER, p, day), TICKER_COLUMNS, "event_time", since_us)
        tickers = tickers.to_pandas() if tickers is not None else None
        s.tickers_in_input = 0 if tickers is None else int((tickers["best_bid"].notna() & tickers["best_ask"].notna()).sum())
        return minute_candles(trades.to_pandas(), tickers) if trades is not None else None
    finer_files = inputs.files(SOURCE[inputs.interval], p, day)
    if not finer_files:
        s.empty_reason = f"{SOURCE[inputs.interval]} candles {p} {day} are missing or empty: no {inputs.interval} candles"
        return None
    day_finer = lake.read_files([f.path for f in finer_files])
    s.input_rows, s.input_sums = day_finer.num_rows, _table_sums(day_finer)
    s.tickers_in_input = int(np.asarray(day_finer.column("ticker_count")).sum())
    finer = read_since(lake, finer_files, [f.name for f in day_finer.schema], "window_start", since_us)
    return rollup_candles(finer, inputs.interval) if finer is not None else None


def build_candles(lake: LakeStore, interval: str, day: date, products: list[str], run_id: str = "",
                  full: bool = False) -> dict[str, CandleStats]:
    """Brings the candles partitions (day, p) of `interval` up to date for each product p, in one commit:
    the windows from the earliest time the input files added since the partition's state hold are
    recomputed and replaced; the whole partition when there is no usable state, or with `full`."""
    t = candles_table_def(interval)
    stats = {p: CandleStats(interval, p, day.isoformat(), t.identifier) for p in products}
    inputs = _Inputs(lake, interval)
    table = lake.table(t)
    held: dict[str, int] = {}
    for f in snapshots.snapshot_files(table, {"product_id": products, "event_date": day})[1]:
        held[f.partition["product_id"]] = held.get(f.partition["product_id"], 0) + f.records
    plans = {}
    for p, s in stats.items():
        if full:
            s.full_rebuild_reason = "a full rebuild was asked for"
            plans[p] = (None, True)
        else:
            plans[p] = _plan(inputs, table, day, s, held.get(p, 0))
        if s.mode == "full" and held.get(p):
            log.warning("candles %s %s %s: rebuilding the partition in full: %s", interval, day, p, s.full_rebuild_reason)
    changed = [p for p in products if plans[p][1]]
    computed = {p: _compute(inputs, day, stats[p], plans[p][0]) for p in changed}
    cuts = {p: plans[p][0] for p in changed if plans[p][0] is not None}
    for p, c in computed.items():
        stats[p].rows_written = 0 if c is None else c.num_rows
        if p in cuts:
            stats[p].recomputed_from = iso_utc(cuts[p])
    snapshot = snapshots.snapshot_id(table)
    if changed:
        rows = [_with_partition(c, p, day) for p, c in computed.items() if c is not None]
        states: dict[str, CandleState] = {}

        def properties(current):
            # The rows each partition holds after this commit: those kept before the cut plus those written.
            kept = {p: (rows_from(lake, current, day, p, None, "window_start")
                        - rows_from(lake, current, day, p, cuts[p], "window_start") if p in cuts else 0)
                    for p in changed}
            states.update({p: CandleState(day.isoformat(), LOGIC_VERSION, run_id, dict(inputs.ids),
                                          kept[p] + stats[p].rows_written) for p in changed})
            return partition_state.state_properties(STATE_PREFIX, states)

        snapshot = snapshots.replace(
            lake.catalog_config, t, rows, {"product_id": changed, "event_date": day},
            Provenance(asset=candles_asset(interval), partition=f"{day.isoformat()}|{','.join(products)}",
                       run_id=run_id, upstream=inputs.ids),
            always_commit=True, properties=properties,
            rows_from={p: ("window_start", iso_utc(cut)) for p, cut in cuts.items()})
    for p, s in stats.items():
        s.snapshot_id, s.upstream_snapshot_ids = snapshot, dict(inputs.ids)
        if p not in changed:  # nothing new: the checks are measured on the partition as it is
            _compute(inputs, day, s, since_us=2**62)
        measure(lake, day, s)
    log.info("candles %s %s %s: %s -> %s snapshot %s", interval, day, ",".join(products),
             {p: (s.mode, s.rows) for p, s in stats.items()}, t.identifier, snapshot)
    return stats


def measure(lake: LakeStore, day: date, s: CandleStats) -> None:
    """Schema, windows, OHLC consistency, sums and a preview of the partition as snapshot `s.snapshot_id` holds it
    (the files it lists, read with Arrow)."""
    t = candles_table_def(s.interval)
    files = []
    if s.snapshot_id is not None:
        files = snapshots.snapshot_files(lake.table(t), {"product_id": s.product_id, "event_date": day},
                                         s.snapshot_id)[1]
    table = lake.read_files([f.path for f in files]) if files else t.schema.empty_table()
    actual = {f.name: f.type for f in table.schema}
    s.schema_problems = [f"{f.name}: expected {f.type}, found {actual.get(f.name, 'missing')}"
                         for f in t.schema if actual.get(f.name) != f.type]
    if s.schema_problems:
        return
    s.rows = table.num_rows
    s.sums = _table_sums(table)
    df = table.select([f.name for f in CANDLE_FIELDS]).to_pandas()
    start_us = micros(df["window_start"])
    width = INTERVAL_US[s.interval]
    day_us = (day - date(1970, 1, 1)).days * 86_400_000_000
    s.duplicate_windows = int(len(start_us) - len(np.unique(start_us)))
    s.windows_outside_day = int(((start_us % width != 0) | (start_us < day_us)
                                 | (start_us >= day_us + int(timedelta(days=1).total_seconds() * 1e6))).sum())
    o, h, lo, c = (df[n].to_numpy(dtype=float, na_value=np.nan) for n in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        ok = (lo <= o) & (o <= h) & (lo <= c) & (c <= h)
    s.ohlc_violations = int((~ok).sum())
    s.ohlc_examples = _records(df[~ok].head(3))
    s.windows_without_quote = int((df["ticker_count"].to_numpy() == 0).sum())
    if s.rows:
        order = np.argsort(start_us)
        s.first_window = df["window_start"].iloc[order[0]].isoformat()
        s.last_window = df["window_start"].iloc[order[-1]].isoformat()
        s.preview = _records(df.iloc[order[:5]])


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (plain numbers, ISO times, None for null)."""
    out = df.copy()
    out["window_start"] = out["window_start"].map(lambda v: v.isoformat())
    return json.loads(out.to_json(orient="records", double_precision=15))
