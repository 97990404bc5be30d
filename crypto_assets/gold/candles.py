"""OHLCV candles from Silver trades and tickers (1 minute), and coarser candles rolled up from them (1 hour).

Pure NumPy/pandas/Arrow, no Dagster: `candles_build.py` reads the inputs and commits the rows.

A candle is one UTC window of one product holding at least one trade; windows without trades get no row
(nothing is zero-filled). Open and close are the first and last trade in (trade_time, trade_id) order, the
order Gold uses. The quote columns come from the window's Silver tickers that carry both a best bid and a
best ask, in Gold's ticker order (event time, then ingestion order): the last one's bid and ask, the mean
of best_ask - best_bid, and how many there were (`ticker_count`); null (0) when the window has none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.contracts.tables import candles_schema
from crypto_assets.gold.quotes import TICKER_ORDER
from crypto_assets.gold.windows import sorted_by

MINUTE_US = 60_000_000
INTERVAL_US = {"1m": MINUTE_US, "1h": 60 * MINUTE_US}
# The columns of a candle, without the partition columns (product_id, event_date).
CANDLE_FIELDS = [f for f in candles_schema() if f.name not in ("product_id", "event_date")]
# What sums up from finer candles to coarser ones (and what the checks reconcile).
SUMMED = ("volume", "notional", "trade_count", "buy_volume", "sell_volume")
TRADE_COLUMNS = ["trade_id", "trade_time", "price", "size", "side"]
TICKER_COLUMNS = [*TICKER_ORDER, "best_bid", "best_ask"]


def micros(times: pd.Series) -> np.ndarray:
    """Microseconds since the epoch of UTC times (naive UTC or timezone-aware)."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert(None)
    return times.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _naive(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = df.copy()
    for c in columns:
        if c in out and isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.tz_convert(None)
    return out


def _table(columns: dict[str, np.ndarray]) -> pa.Table:
    """The candle columns as Arrow in the table's order; NaN quote values become nulls."""
    arrays = []
    for f in CANDLE_FIELDS:
        values = columns[f.name]
        if f.name == "window_start":
            arrays.append(pa.array(values, pa.int64()).cast(pa.timestamp("us")).cast(f.type))
        elif pa.types.is_floating(f.type):
            arrays.append(pa.array(values, f.type, mask=np.isnan(values)))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(CANDLE_FIELDS))


def empty_candles() -> pa.Table:
    return pa.schema(CANDLE_FIELDS).empty_table()


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, last index) of each run of equal values in sorted `keys`."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.r_[starts[1:], len(keys)] - 1


def window_quotes(tickers: pd.DataFrame | None, windows_us: np.ndarray, width_us: int) -> dict[str, np.ndarray]:
    """Per window start in `windows_us` (sorted): last best bid/ask, mean spread and count of the tickers
    with both a bid and an ask whose event time falls in [start, start + width)."""
    n = len(windows_us)
    out = {"last_best_bid": np.full(n, np.nan), "last_best_ask": np.full(n, np.nan),
           "mean_spread": np.full(n, np.nan), "ticker_count": np.zeros(n, dtype=np.int64)}
    if tickers is None or len(tickers) == 0:
        return out
    k = tickers[tickers["best_bid"].notna() & tickers["best_ask"].notna()]
    if len(k) == 0:
        return out
    k = sorted_by(_naive(k, TICKER_ORDER), [c for c in TICKER_ORDER if c in k.columns])
    window = micros(k["event_time"]) // width_us * width_us
    bid, ask = k["best_bid"].to_numpy(dtype=float), k["best_ask"].to_numpy(dtype=float)
    starts, ends = _groups(window)
    counts = ends - starts + 1
    spread_sums = np.add.reduceat(ask - bid, starts)
    pos = np.searchsorted(window[starts], windows_us)
    found = pos < len(starts)
    found[found] = window[starts][pos[found]] == windows_us[found]
    g = pos[found]
    out["last_best_bid"][found] = bid[ends[g]]
    out["last_best_ask"][found] = ask[ends[g]]
    out["mean_spread"][found] = spread_sums[g] / counts[g]
    out["ticker_count"][found] = counts[g]
    return out


def minute_candles(trades: pd.DataFrame, tickers: pd.DataFrame | None) -> pa.Table:
    """1-minute candles of one product's trades (trade_id, trade_time, price, size, side) and tickers
    (event time, the ingestion-order columns, best_bid, best_ask), in window order."""
    if len(trades) == 0:
        return empty_candles()
    t = sorted_by(_naive(trades, ["trade_time"]), ["trade_time", "trade_id"])
    window = micros(t["trade_time"]) // MINUTE_US * MINUTE_US
    price, size = t["price"].to_numpy(dtype=float), t["size"].to_numpy(dtype=float)
    side = t["side"].to_numpy()
    starts, ends = _groups(window)
    volume = np.add.reduceat(size, starts)
    notional = np.add.reduceat(price * size, starts)
    columns = {
        "window_start": window[starts],
        "open": price[starts], "high": np.maximum.reduceat(price, starts), "low": np.minimum.reduceat(price, starts),
        "close": price[ends], "volume": volume, "notional": notional, "vwap": notional / volume,
        "trade_count": (ends - starts + 1).astype(np.int64),
        "buy_volume": np.add.reduceat(np.where(side == "BUY", size, 0.0), starts),
        "sell_volume": np.add.reduceat(np.where(side == "SELL", size, 0.0), starts),
        **window_quotes(tickers, window[starts], MINUTE_US),
    }
    return _table(columns)


def rollup_candles(finer: pa.Table, interval: str) -> pa.Table:
    """Candles of `interval` from finer candles of the same product (any order): open of the first, close of
    the last, extremes, sums, vwap = notional / volume, the last bid/ask of the last finer candle that has one,
    and the mean spread weighted by each finer candle's ticker count."""
    if finer.num_rows == 0:
        return empty_candles()
    m = finer.select([f.name for f in CANDLE_FIELDS]).to_pandas()
    starts_us = micros(m["window_start"])
    order = np.argsort(starts_us, kind="stable")
    m, starts_us = m.take(order).reset_index(drop=True), starts_us[order]
    width = INTERVAL_US[interval]
    window = starts_us // width * width
    starts, ends = _groups(window)

    def col(name: str) -> np.ndarray:
        return m[name].to_numpy(dtype=float, na_value=np.nan)

    sums = {c: np.add.reduceat(col(c), starts) for c in SUMMED if c != "trade_count"}
    sums["trade_count"] = np.add.reduceat(m["trade_count"].to_numpy(dtype=np.int64), starts)
    tickers = m["ticker_count"].to_numpy(dtype=np.int64)
    has_quote = tickers > 0
    # The newest finer candle with a quote up to each row; used only when it lies inside the row's group.
    last_quoted = np.maximum.accumulate(np.where(has_quote, np.arange(len(m)), -1))[ends]
    inside = last_quoted >= starts
    take = np.maximum(last_quoted, 0)
    ticker_count = np.add.reduceat(tickers, starts)
    spread_total = np.add.reduceat(np.where(has_quote, col("mean_spread") * tickers, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_spread = np.where(ticker_count > 0, spread_total / ticker_count, np.nan)
    columns = {
        "window_start": window[starts],
        "open": col("open")[starts], "high": np.maximum.reduceat(col("high"), starts),
        "low": np.minimum.reduceat(col("low"), starts), "close": col("close")[ends],
        **sums, "vwap": sums["notional"] / sums["volume"],
        "last_best_bid": np.where(inside, col("last_best_bid")[take], np.nan),
        "last_best_ask": np.where(inside, col("last_best_ask")[take], np.nan),
        "mean_spread": mean_spread, "ticker_count": ticker_count.astype(np.int64),
    }
    return _table(columns)
