"""One candles date for one or more products: read the input from one pinned snapshot, compute, commit, check.

`gold.candles_1m` (D, P) is computed from Silver trades and ticker (D, P), each read from one pinned snapshot
(`SilverInput`, as Gold reads them); `gold.candles_1h` (D, P) is rolled up from `gold.candles_1m` (D, P) as
of its current snapshot. Each run commits one replace of its (product, day) partitions with the snapshots it
read in the summary, then measures the checks on the snapshot just committed. No Dagster, no Spark: the
candles assets and their Glue jobs call `build_candles`.
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
from crypto_assets.contracts.tables import candles_table_def
from crypto_assets.gold.build import SilverInput
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
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)

# What each interval is computed from: Silver (1m), or the finer candles table (1h).
SOURCE = {"1m": None, "1h": "1m"}
# Sums agree to rounding (added in another order), not bit for bit.
REL_TOL = 1e-9


@dataclass
class CandleStats:
    interval: str
    product_id: str
    day: str
    table: str
    snapshot_id: int | None = None  # the candles snapshot committed
    upstream_snapshot_ids: dict[str, int] = field(default_factory=dict)  # table read -> snapshot
    empty_reason: str | None = None
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


def _silver_files(silver: SilverInput, kind: str, product: str, day: date) -> list[str]:
    """The data files of Silver `kind` (day, product) at the run's pinned snapshot."""
    table, snap = silver.snapshots[kind]
    if snap is None:
        return []
    return [f.path for f in snapshots.snapshot_files(table, {"product_id": product, "event_date": day}, snap)[1]
            if f.records]


def _minute_input(silver: SilverInput, day: date, s: CandleStats) -> pa.Table | None:
    p = s.product_id
    trade_files = _silver_files(silver, TRADES, p, day)
    if not trade_files:
        s.empty_reason = f"Silver trades {p} {day} is missing or empty: no candles"
        return None
    trades = _read(silver.lake, trade_files, TRADE_COLUMNS)
    ticker_files = _silver_files(silver, TICKER, p, day)
    tickers = _read(silver.lake, ticker_files, TICKER_COLUMNS) if ticker_files else None
    s.input_rows = len(trades)
    s.input_sums = _silver_sums(trades)
    s.tickers_in_input = 0 if tickers is None else int((tickers["best_bid"].notna() & tickers["best_ask"].notna()).sum())
    return minute_candles(trades, tickers)


def _rollup_input(lake: LakeStore, interval: str, day: date, s: CandleStats, source, snap: int | None) -> pa.Table | None:
    p = s.product_id
    files = snapshots.snapshot_files(source, {"product_id": p, "event_date": day}, snap)[1] if snap is not None else []
    finer = lake.read_files([f.path for f in files]) if files else None
    if finer is None or finer.num_rows == 0:
        s.empty_reason = f"{SOURCE[interval]} candles {p} {day} are missing or empty: no {interval} candles"
        return None
    s.input_rows = finer.num_rows
    s.input_sums = _table_sums(finer)
    s.tickers_in_input = int(np.asarray(finer.column("ticker_count")).sum())
    return rollup_candles(finer, interval)


def _with_partition(table: pa.Table, product: str, day: date) -> pa.Table:
    table = table.append_column("product_id", pa.repeat(pa.scalar(product, pa.string()), table.num_rows))
    return table.append_column("event_date", pa.repeat(pa.scalar(day, pa.date32()), table.num_rows))


def build_candles(lake: LakeStore, interval: str, day: date, products: list[str], run_id: str = "") -> dict[str, CandleStats]:
    """Replaces the candles partitions (day, p) of `interval` whole for each product p, in one commit."""
    t = candles_table_def(interval)
    stats = {p: CandleStats(interval, p, day.isoformat(), t.identifier) for p in products}
    if SOURCE[interval] is None:
        silver = SilverInput.pin(lake)
        upstream = silver.ids
        computed = {p: _minute_input(silver, day, stats[p]) for p in products}
    else:
        source_def = candles_table_def(SOURCE[interval])
        source = lake.table(source_def)
        snap = snapshots.snapshot_id(source)
        upstream = {source_def.identifier: snap} if snap is not None else {}
        computed = {p: _rollup_input(lake, interval, day, stats[p], source, snap) for p in products}
    rows = [_with_partition(c, p, day) for p, c in computed.items() if c is not None]
    snapshot = snapshots.replace(
        lake.catalog_config, t, rows, {"product_id": products, "event_date": day},
        Provenance(asset=candles_asset(interval), partition=f"{day.isoformat()}|{','.join(products)}", run_id=run_id,
                   upstream=upstream))
    for p, s in stats.items():
        s.snapshot_id, s.upstream_snapshot_ids = snapshot, dict(upstream)
        measure(lake, day, s)
    log.info("candles %s %s %s: %s rows -> %s snapshot %s", interval, day, ",".join(products),
             {p: s.rows for p, s in stats.items()}, t.identifier, snapshot)
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
