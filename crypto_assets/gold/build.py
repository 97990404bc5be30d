"""One Gold date for one or more products: read Silver D-1..D+1, compute, commit, check.

No Dagster and no Spark here: Silver is read with Arrow from one pinned snapshot per Silver table,
and Gold is written to `gold.features` in one Iceberg commit per run replacing the run's (product,
day) partitions, with the Silver snapshots read in its summary. The Gold asset and its Glue job (one
product per run) and the benchmark (several products in one pass) call `build_gold`. Checks are
measured on the snapshot just committed.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.gold_features import FEATURES
from crypto_assets.contracts.names import TICKER, TRADES
from crypto_assets.contracts.partitioning import DayHead
from crypto_assets.contracts.tables import gold_table_def, silver_table_def
from crypto_assets.gold.checks import LeakageResult, prefix_invariance, sample_trade_ids
from crypto_assets.gold.quotes import TICKER_FIELDS, TICKER_ORDER, with_ticker_seq
from crypto_assets.gold.table import gold_arrow_schema, gold_table
from crypto_assets.gold.transforms import LOOKBACK_SECONDS, LOOKBACK_TRADES
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import LakeStore as LakeResource  # the Dagster resource and Glue share it

log = logging.getLogger(__name__)


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
    silver_rows: int = 0  # Silver trades of the day
    excluded_lookback: int = 0  # computed independently of the writer
    rows: int = 0  # written (read back)
    training_ready: int = 0
    tickers_in_input: int = 0
    rows_without_quote: int = 0
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

    def parts(self, kind: str, product: str, days: list[date]) -> list[tuple[date, list[str]]]:
        """(event day, its data files) of the days that hold rows of `product`, oldest first."""
        table, snap = self.snapshots[kind]
        if snap is None:
            return []
        _, files = snapshots.snapshot_files(table, {"product_id": product, "event_date": days}, snap)
        by_day: dict[date, list[str]] = {}
        for f in files:
            if f.records:
                by_day.setdefault(f.partition["event_date"], []).append(f.path)
        return sorted(by_day.items())


def _naive_utc(df: pd.DataFrame) -> pd.DataFrame:
    """Silver's timestamps are UTC-adjusted; the feature code works on naive UTC times."""
    for c in df.columns:
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = df[c].dt.tz_convert(None)
    return df


def _read_arrow(lake: LakeResource, parts: list[tuple[date, list[str]]], columns: list[str]) -> pd.DataFrame:
    frames = [lake.read_files(files, columns).to_pandas() for _, files in parts]
    return _naive_utc(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame(columns=columns)


def build_gold(
    lake: LakeResource,
    day: date,
    products: list[str],
    quote_join: str = "asof",
    leakage_samples: int = 16,
    run_id: str = "",
) -> dict[str, GoldStats]:
    """Replaces the Gold partitions (day, p) whole for each product p, in one commit.

    A Gold partition is one product's sequential computation, so it runs where the data is read:
    Silver with Arrow, `gold_table` (the feature arrays as an Arrow table), products on parallel
    threads; then one commit of every product's rows, and the checks on the snapshot committed.
    """
    silver = SilverInput.pin(lake)
    stats = {p: GoldStats(p, day.isoformat(), gold_table_def().identifier, silver_snapshot_ids=silver.ids)
             for p in products}
    clock = time.perf_counter()

    def compute(p: str):
        return _compute_product(silver, day, stats[p], quote_join)

    if len(products) > 1:
        # Products are independent; Parquet I/O and most NumPy/pandas kernels release the GIL.
        with ThreadPoolExecutor(max_workers=min(len(products), os.cpu_count() or 1)) as pool:
            computed = dict(zip(products, pool.map(compute, products)))
    else:
        computed = {p: compute(p) for p in products}
    timings = {"read_and_compute": time.perf_counter() - clock}
    clock = time.perf_counter()
    rows = [_with_partition(table, p, day) for p, (table, _, _) in computed.items() if table is not None]
    gold = gold_table_def()
    snapshot = snapshots.replace(
        lake.catalog_config, gold, rows,  # one table per product: one partition each, written in parallel
        {"product_id": products, "event_date": day},
        Provenance(asset="gold_features", partition=f"{day.isoformat()}|{','.join(products)}", run_id=run_id,
                   upstream=silver.ids))
    timings["commit"] = time.perf_counter() - clock
    del rows
    for p, s in stats.items():
        clock = time.perf_counter()
        s.snapshot_id = snapshot
        _, trade_pdf, ticker_pdf = computed.pop(p)
        if trade_pdf is None:
            continue
        _reconcile(trade_pdf, day, s)
        written = _measure(lake, day, s)
        if s.rows and leakage_samples:
            s.leakage = _leakage(written, s, trade_pdf, ticker_pdf, quote_join, leakage_samples)
        timings[f"checks_{p}"] = time.perf_counter() - clock
    log.info("gold %s %s timings (s): %s", day, ",".join(products), {k: round(v, 2) for k, v in timings.items()})
    return stats


def _with_partition(table: pa.Table, product: str, day: date) -> pa.Table:
    table = table.append_column("product_id", pa.repeat(pa.scalar(product, pa.string()), table.num_rows))
    return table.append_column("event_date", pa.repeat(pa.scalar(day, pa.date32()), table.num_rows))


def _compute_product(silver: SilverInput, day: date, s: GoldStats, quote_join: str):
    """(Gold rows of the partition or None, the Silver trades and tickers read) of one product."""
    p = s.product_id
    trade_parts = silver.parts(TRADES, p, [day - timedelta(days=1), day, day + timedelta(days=1)])
    ticker_parts = silver.parts(TICKER, p, [day - timedelta(days=1), day])
    s.silver_days = [d.isoformat() for d, _ in trade_parts]
    s.ticker_days = [d.isoformat() for d, _ in ticker_parts]
    if day.isoformat() not in s.silver_days:
        s.empty_reason = f"Silver trades {p} {day} is missing or empty: nothing to compute"
        return None, None, None
    lake = silver.lake
    trade_pdf = _read_arrow(lake, trade_parts, ["trade_id", "trade_time", "price", "size", "side"])
    trade_pdf["product_id"] = p
    times_us = trade_pdf["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    next_day = times_us >= (day + timedelta(days=1) - date(1970, 1, 1)).days * 86_400_000_000
    s.next_day_head = DayHead.of(trade_pdf["trade_id"].to_numpy()[next_day], times_us[next_day],
                                 trade_pdf["price"].to_numpy()[next_day])
    ticker_pdf = with_ticker_seq(_read_arrow(lake, ticker_parts, ["event_time", *TICKER_ORDER[1:], *TICKER_FIELDS]))
    s.tickers_in_input = len(ticker_pdf)
    return gold_table(trade_pdf, ticker_pdf, day, quote_join), trade_pdf, ticker_pdf


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


def _measure(lake: LakeResource, day: date, s: GoldStats):
    """Schema, keys, nulls, ranges and a preview, read back from the snapshot committed (the files it
    lists for the partition, with Arrow).

    Returns the written table and its row order by (trade_time, trade_id) for the leakage check."""
    if s.snapshot_id is None:
        return None
    _, files = snapshots.snapshot_files(lake.table(gold_table_def()), {"product_id": s.product_id, "event_date": day},
                                        s.snapshot_id)
    if not files:
        return None
    table = lake.read_files([f.path for f in files])
    actual = {f.name: f.type for f in table.schema}
    s.schema_problems = [
        f"{f.name}: expected {f.type}, found {actual.get(f.name, 'missing')}"
        for f in gold_arrow_schema(with_partition_columns=True)
        if actual.get(f.name) != f.type
    ]

    def values(name: str) -> np.ndarray:  # nulls as NaN
        return table.column(name).to_numpy(zero_copy_only=False).astype(float, copy=False)

    s.rows = table.num_rows
    trade_ids = table.column("trade_id").to_numpy(zero_copy_only=False)
    times = table.column("trade_time").to_numpy(zero_copy_only=False)
    order = np.lexsort((trade_ids, times))
    s.duplicate_keys = int(s.rows - len(np.unique(trade_ids)))
    s.training_ready = int(np.count_nonzero(table.column("is_training_ready").to_numpy(zero_copy_only=False)))
    s.rows_without_quote = int(np.isnan(values("best_bid")).sum()) if "best_bid" in actual else 0
    if s.rows:
        s.min_trade_time = pd.Timestamp(times[order[0]]).tz_localize("UTC").isoformat()
        s.max_trade_time = pd.Timestamp(times[order[-1]]).tz_localize("UTC").isoformat()
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
