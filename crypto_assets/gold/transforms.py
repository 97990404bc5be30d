"""Silver -> Gold: the 120 per-trade features and 6 targets of the feature catalog.

The core (`compute_features`) works on one product's trades and tickers as NumPy arrays and
costs O(1) per row per feature: rolling sums and means use pandas' online (add/remove,
compensated) window kernels on prices re-centred on a reference, variances short per-block
prefix sums with a bound on their rounding and a two-pass where the bound is too loose
(`_rolling_std`: no day-long accumulation), min/max pandas' monotonic-deque kernels, time
windows binary search plus prefix sums of counts and sizes. `gold_table` turns the arrays into the
Arrow table Gold writes, locally and in the Glue job alike.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_assets.contracts.gold_features import (
    FEATURE_NAMES,
    TARGET_NAMES,
    gold_columns,
)
from crypto_assets.contracts.partitioning import TARGET_HORIZONS

LOOKBACK_TRADES = 499  # earlier trades a row needs (every 500-trade window full)
LOOKBACK_SECONDS = 300  # minutes of earlier history a row needs
TICKER_FIELDS = (
    "best_bid", "best_ask", "best_bid_quantity", "best_ask_quantity", "volume_24_h", "price_percent_chg_24_h",
    "low_24_h", "high_24_h", "low_52_w", "high_52_w",
)


def _div(a, b):
    """a / b with null (NaN) where b is 0 or the result is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def _lag(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if n < len(x):
        out[n:] = x[: len(x) - n]
    return out


def _lead(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if n < len(x):
        out[: len(x) - n] = x[n:]
    return out


_U = np.finfo(float).eps / 2  # unit roundoff of float64


def _rolling_std(x: np.ndarray, n: int, block: int = 256, rel: float = 1e-8) -> np.ndarray:
    """Sample sd of each trailing window of n rows, null until n rows exist, within rel / 2 of exact.

    Per block of `block` windows: prefix sums of e = x - (the first row of the block's segment, so a
    row never depends on later ones) and of e^2 over that segment only; M2 = S2 - S1^2 / n with a
    rigorous bound on its rounding (sequential sums: 2(L+4)u per prefix, plus the cancellation).
    Windows whose bound exceeds rel * M2 (a jump in the segment, an almost flat window far from the
    reference) take a two-pass over their own n values; a window of n equal values is exactly 0.
    """
    size, out = len(x), np.full(len(x), np.nan)
    if size < n or n < 2:
        return out
    finite = np.isfinite(x)
    x = np.asarray(x, dtype=float) if finite.all() else np.where(finite, x, 0.0)  # those windows: null
    m, seg_len = size - n + 1, block + n - 1
    padded = np.concatenate([x, np.full(-m % block, x[-1])])
    g = 2.1 * (seg_len + 4) * _U
    m2, err = np.empty(len(padded) - n + 1), np.empty(len(padded) - n + 1)
    step = 64 * block  # blocks per pass: bounded memory, cache-sized arrays
    for a in range(0, len(m2), step):
        seg = sliding_window_view(padded[a : a + step + n - 1], seg_len)[::block]
        e = seg - seg[:, :1]
        c1, c2 = np.zeros((len(seg), seg_len + 1)), np.zeros((len(seg), seg_len + 1))
        np.cumsum(e, axis=1, out=c1[:, 1:])
        np.cumsum(e * e, axis=1, out=c2[:, 1:])
        s1 = c1[:, n:] - c1[:, :block]
        m2_ = c2[:, n:] - c2[:, :block] - s1 * s1 / n
        err_s1 = g * np.cumsum(np.abs(e), axis=1)[:, n - 1 :]
        m2[a : a + m2_.size] = m2_.ravel()
        err[a : a + m2_.size] = (g * c2[:, n:] + (2 * np.abs(s1) * err_s1 + 2 * err_s1 * err_s1 + 3 * _U * s1 * s1) / n
                                 + _U * np.abs(m2_)).ravel()
    m2, err = m2[:m], err[:m]
    changes = np.concatenate([[0], np.cumsum(x[1:] != x[:-1])])
    flat = changes[n - 1 :] == changes[:m]
    redo = np.flatnonzero(~(err <= rel * m2) & ~flat)
    for a in range(0, len(redo), 8192):  # two-pass (corrected) on the window's own values
        rows = redo[a : a + 8192]
        e = x[rows[:, None] + np.arange(n)]
        e = e - e[:, -1:]
        e -= (e.sum(axis=1) / n)[:, None]
        c = e.sum(axis=1)
        m2[rows] = np.einsum("ij,ij->i", e, e) - c * c / n
    m2[flat] = 0.0
    out[n - 1 :] = np.sqrt(np.maximum(m2, 0.0) / (n - 1))
    if not finite.all():
        bad = np.concatenate([[0], np.cumsum(~finite)])
        out[n - 1 :][bad[n:] != bad[:m]] = np.nan
    return out


class _Windows:
    """Trailing windows of N trades (current included); null until N trades exist."""

    def __init__(self, x: np.ndarray):
        self.s = pd.Series(x)

    def roll(self, n: int):
        return self.s.rolling(n, min_periods=n)

    def mean(self, n):
        return self.roll(n).mean().to_numpy()

    def sum(self, n):
        return self.roll(n).sum().to_numpy()

    def std(self, n):
        return _rolling_std(self.s.to_numpy(), n)

    def min(self, n):
        return self.roll(n).min().to_numpy()

    def max(self, n):
        return self.roll(n).max().to_numpy()


def _count(flags: np.ndarray, n: int) -> np.ndarray:
    """Exact count of true flags in the last n (integer prefix sums), null until n rows exist."""
    cs = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
    out = np.full(len(flags), np.nan)
    if n <= len(flags):
        out[n - 1:] = cs[n:] - cs[: len(flags) - n + 1]
    return out


def _time_window(ts_us: np.ndarray, p: np.ndarray, s: np.ndarray, seconds: int):
    """Trades with time in (t - seconds, t] up to and including each row, and the reference price."""
    n = len(ts_us)
    horizon = ts_us - seconds * 1_000_000
    start = np.searchsorted(ts_us, horizon, side="right")  # first row strictly after t - window
    idx = np.arange(n)
    count = (idx + 1 - start).astype(float)
    # Sizes and notionals are small sums (no squares): prefix sums keep full precision here.
    cs_s = np.concatenate([[0.0], np.cumsum(s)])
    cs_n = np.concatenate([[0.0], np.cumsum(p * s)])
    volume = cs_s[idx + 1] - cs_s[start]
    notional = cs_n[idx + 1] - cs_n[start]
    ref = start - 1  # the last trade at or before t - window
    ref_price = np.where(ref >= 0, p[np.maximum(ref, 0)], np.nan)
    return count, volume, _div(notional, volume), _div(p - ref_price, ref_price) * 100


def _quotes(ts_us: np.ndarray, tickers: pd.DataFrame, quote_join: str) -> dict[str, np.ndarray]:
    """The ticker each trade sees: the latest with event time <= trade time ("asof").

    "minute_bucket" reproduces the replaced job's join (the last ticker of the trade's wall-clock
    minute, which can come after the trade): kept only to prove the leakage check can fail.
    """
    n = len(ts_us)
    if tickers is None or len(tickers) == 0:
        return {c: np.full(n, np.nan) for c in TICKER_FIELDS + ("event_time_us",)}
    k = tickers.sort_values(["event_time", "ticker_seq"], kind="mergesort")
    k_ts = k["event_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    if quote_join == "asof":
        pos = np.searchsorted(k_ts, ts_us, side="right") - 1
        ok = pos >= 0
    elif quote_join == "minute_bucket":
        minute = 60_000_000
        pos = np.searchsorted(k_ts, (ts_us // minute + 1) * minute, side="left") - 1
        ok = (pos >= 0) & (k_ts[np.maximum(pos, 0)] // minute == ts_us // minute)
    else:
        raise ValueError(f"unknown quote_join {quote_join!r}")
    take = np.maximum(pos, 0)
    out = {}
    for c in TICKER_FIELDS:
        vals = k[c].to_numpy(dtype=float)[take]
        out[c] = np.where(ok, vals, np.nan)
    out["event_time_us"] = np.where(ok, k_ts[take].astype(float), np.nan)
    return out


def compute_features(trades: pd.DataFrame, tickers: pd.DataFrame | None = None, quote_join: str = "asof") -> pd.DataFrame:
    """Features, targets, `lookback_ok` and `is_training_ready` for every trade of ONE product.

    `trades`: product_id, trade_id, trade_time, price, size, side. `tickers`: event_time,
    ticker_seq (tie-break among equal event times) and the ticker fields.
    """
    t, f = feature_arrays(trades, tickers, quote_join)
    out = t[["product_id", "trade_id", "trade_time", "price", "size", "side"]].copy()
    features = pd.DataFrame({c: f[c] for c in FEATURE_NAMES + TARGET_NAMES}, index=out.index)
    out = pd.concat([out, features], axis=1)
    out["lookback_ok"] = f["lookback_ok"]
    out["is_training_ready"] = f["is_training_ready"]
    return out


def _ordered(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`df` sorted by `keys` (stable, as a mergesort) with a fresh index. NumPy's lexsort on the raw
    keys is several times faster than pandas' sort, and Silver usually is in order already, which
    costs no copy at all."""
    cols = [df[k] for k in keys]
    if any(c.isna().any() for c in cols):
        return df.sort_values(keys, kind="mergesort").reset_index(drop=True)
    order = np.lexsort([c.to_numpy(dtype="datetime64[ns]").view(np.int64) if c.dtype.kind == "M" else c.to_numpy()
                        for c in reversed(cols)])
    if not np.array_equal(order, np.arange(len(order))):
        return df.take(order).reset_index(drop=True)
    fresh = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return df if fresh else df.reset_index(drop=True)


def feature_arrays(
    trades: pd.DataFrame, tickers: pd.DataFrame | None = None, quote_join: str = "asof"
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The core: one product's trades in (trade_time, trade_id) order, and one NumPy array per
    feature and target (float, NaN = null) plus the `lookback_ok` and `is_training_ready` masks."""
    t = _ordered(trades, ["trade_time", "trade_id"])
    n = len(t)
    p = t["price"].to_numpy(dtype=float)
    s = t["size"].to_numpy(dtype=float)
    buy = (t["side"] == "BUY").to_numpy()
    ts_us = t["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    f: dict[str, np.ndarray] = {}
    if n == 0:
        f = {c: np.empty(0) for c in FEATURE_NAMES + TARGET_NAMES}
        f["lookback_ok"] = f["is_training_ready"] = np.empty(0, dtype=bool)
        return t, f

    ref = p[0]  # re-centre prices: window variance without cancellation on prices near 100,000
    pc = _Windows(p - ref)
    sz = _Windows(s)
    ma = {m: pc.mean(m) + ref for m in (10, 50, 100, 500)}
    sd = {m: pc.std(m) for m in (10, 50, 100)}
    lo = {m: pc.min(m) + ref for m in (10, 50, 100, 500)}
    hi = {m: pc.max(m) + ref for m in (10, 50, 100, 500)}
    for m in (10, 50, 100, 500):
        f[f"ma_{m}_trades"] = ma[m]
    for m in (10, 50, 100):
        f[f"min_{m}_trades"], f[f"max_{m}_trades"] = lo[m], hi[m]
    for m in (10, 50, 100):
        f[f"price_range_{m}"] = hi[m] - lo[m]
    for m in (10, 50, 100):
        f[f"volatility_{m}"] = sd[m]
    lagged = {m: _lag(p, m) for m in (1, 5, 10, 50, 100)}
    for m in (1, 5, 10, 50):
        f[f"price_change_{m}"] = p - lagged[m]
    ret = {m: _div(p - lagged[m], lagged[m]) * 100 for m in (1, 10, 50, 100)}
    for m in (1, 10, 50, 100):
        f[f"return_{m}"] = ret[m]
    for m in (10, 50, 100):
        f[f"price_vs_ma_{m}"] = _div(p - ma[m], ma[m]) * 100
    vol = {m: sz.sum(m) for m in (10, 50, 100)}
    vol_ma = {m: sz.mean(m) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"volume_{m}"] = vol[m]
    for m in (10, 50, 100):
        f[f"volume_ma_{m}"] = vol_ma[m]
    for m in (10, 50):
        f[f"volume_ratio_{m}"] = _div(s, vol_ma[m])
    buys = {m: _count(buy, m) for m in (10, 50, 100)}
    sells = {m: _count(~buy, m) for m in (10, 50, 100)}
    for m in (50, 100):
        f[f"buy_count_{m}"], f[f"sell_count_{m}"] = buys[m], sells[m]
    for m in (50, 100):
        f[f"buy_sell_ratio_{m}"] = _div(buys[m], sells[m])
    buy_sz, sell_sz = _Windows(np.where(buy, s, 0.0)), _Windows(np.where(buy, 0.0, s))
    bvol = {m: buy_sz.sum(m) for m in (10, 50, 100)}
    svol = {m: sell_sz.sum(m) for m in (10, 50, 100)}
    for m in (50, 100):
        f[f"buy_volume_{m}"], f[f"sell_volume_{m}"] = bvol[m], svol[m]
    for m in (50, 100):
        # Over buy + sell volume (= volume) so rounding cannot push the ratio outside [0, 1].
        f[f"buy_volume_ratio_{m}"] = _div(bvol[m], bvol[m] + svol[m])
    dt = pd.DatetimeIndex(t["trade_time"])
    hour = dt.hour.to_numpy()
    dow = (dt.dayofweek.to_numpy() + 1) % 7 + 1  # pandas Monday=0 -> catalog Sunday=1 .. Saturday=7
    f["hour_of_day"] = hour.astype(float)
    f["day_of_week"] = dow.astype(float)
    f["is_weekend"] = np.isin(dow, (1, 7)).astype(float)
    f["is_buy"] = buy.astype(float)

    q = _quotes(ts_us, tickers, quote_join)
    bid, ask, bq, aq = q["best_bid"], q["best_ask"], q["best_bid_quantity"], q["best_ask_quantity"]
    f["best_bid"], f["best_ask"] = bid, ask
    f["bid_ask_spread"] = ask - bid
    f["spread_pct"] = _div(ask - bid, bid) * 100
    f["price_vs_bid"] = _div(p - bid, bid) * 100
    f["price_vs_ask"] = _div(p - ask, ask) * 100

    log_ret = {m: np.log(_div(p, lagged[m])) for m in (1, 10, 50, 100)}
    for m in (1, 10, 50, 100):
        f[f"log_return_{m}"] = log_ret[m]
    lr2 = _Windows(log_ret[1] ** 2)
    for m in (10, 50, 100):
        f[f"realized_vol_{m}"] = np.sqrt(lr2.sum(m))
    for m in (50, 100):
        f[f"zscore_{m}"] = _div(p - ma[m], sd[m])
    d = p - _lag(p, 1)
    gains, losses = _Windows(np.where(d > 0, d, 0.0)), _Windows(np.where(d < 0, -d, 0.0))
    d_known = ~np.isnan(d)
    for m in (14, 50):
        gain, loss = gains.sum(m) / m, losses.sum(m) / m
        # Whether any gain or loss exists is decided on exact counts, not on rounded sums.
        n_up, n_down = _count(d_known & (d > 0), m), _count(d_known & (d < 0), m)
        full = ~np.isnan(_lag(p, m))
        rsi = 100 - 100 / (1 + _div(gain, loss))
        rsi = np.where(n_down == 0, np.where(n_up > 0, 100.0, np.nan), rsi)
        f[f"rsi_{m}"] = np.where(full, rsi, np.nan)
    f["bollinger_pctb_50"] = _div(p - (ma[50] - 2 * sd[50]), 4 * sd[50])
    f["bollinger_width_50"] = _div(4 * sd[50], ma[50])
    for m in (100, 500):
        f[f"price_position_{m}"] = _div(p - lo[m], hi[m] - lo[m])
    f["ma_cross_10_50"] = _div(ma[10], ma[50]) - 1
    f["ma_cross_50_500"] = _div(ma[50], ma[500]) - 1
    notional = _Windows(p * s)
    notl = {m: notional.sum(m) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"notional_{m}"] = notl[m]
    vwap = {m: _div(notl[m], vol[m]) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"vwap_{m}"] = vwap[m]
    for m in (10, 50, 100):
        f[f"price_vs_vwap_{m}"] = _div(p - vwap[m], vwap[m]) * 100
    for m in (10, 50, 100):
        f[f"order_flow_imbalance_{m}"] = _div(bvol[m] - svol[m], bvol[m] + svol[m])
    signed = np.where(buy, s, -s)
    f["signed_volume"] = signed
    sv = _Windows(signed)
    for m in (50, 100):
        f[f"signed_volume_sum_{m}"] = sv.sum(m)
    f["size_zscore_100"] = _div(s - vol_ma[100], sz.std(100))
    def elapsed(m: int) -> np.ndarray:
        """Seconds since the trade m earlier, from integer microseconds (epoch seconds as floats
        would round to ~0.2 us and spoil the differences)."""
        out = np.full(n, np.nan)
        if m < n:
            out[m:] = (ts_us[m:] - ts_us[: n - m]) / 1e6
        return out

    f["seconds_since_prev_trade"] = elapsed(1)
    for m in (10, 50):
        f[f"mean_intertrade_seconds_{m}"] = elapsed(m) / m
    for m in (50, 100):
        f[f"trade_rate_{m}"] = _div(np.full(n, float(m)), elapsed(m - 1))
    for label, window in (("1m", 60), ("5m", 300)):
        count, volume, vw, r = _time_window(ts_us, p, s, window)
        f[f"trades_{label}"], f[f"volume_{label}"], f[f"vwap_{label}"], f[f"return_{label}"] = count, volume, vw, r
    f["amihud_50"] = _Windows(_div(np.abs(ret[1] / 100), p * s)).mean(50)
    f["best_bid_qty"], f["best_ask_qty"] = bq, aq
    mid = (bid + ask) / 2
    f["mid_price"] = mid
    f["microprice"] = _div(bid * aq + ask * bq, bq + aq)
    f["book_imbalance"] = _div(bq - aq, bq + aq)
    f["spread_bps"] = _div(ask - bid, mid) * 10_000
    f["price_vs_mid_bps"] = _div(p - mid, mid) * 10_000
    f["ticker_age_ms"] = (ts_us - q["event_time_us"]) / 1000.0
    f["volume_24h"] = q["volume_24_h"]
    f["price_change_24h"] = q["price_percent_chg_24_h"]
    f["range_position_24h"] = _div(p - q["low_24_h"], q["high_24_h"] - q["low_24_h"])
    f["range_position_52w"] = _div(p - q["low_52_w"], q["high_52_w"] - q["low_52_w"])
    h = hour + dt.minute.to_numpy() / 60
    f["hour_sin"], f["hour_cos"] = np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24)
    f["dow_sin"], f["dow_cos"] = np.sin(2 * np.pi * (dow - 1) / 7), np.cos(2 * np.pi * (dow - 1) / 7)

    for m in TARGET_HORIZONS:
        fut = _lead(p, m)
        f[f"future_price_{m}"] = fut
        tr = _div(fut - p, p) * 100
        f[f"target_return_{m}"] = tr
        f[f"target_direction_{m}"] = np.where(tr > 0, 1.0, np.where(tr < 0, 0.0, np.nan))

    f["lookback_ok"] = (np.arange(n) >= LOOKBACK_TRADES) & (ts_us - ts_us[0] >= LOOKBACK_SECONDS * 1_000_000)
    f["is_training_ready"] = ~np.isnan(f["future_price_10"]) & ~np.isnan(f["future_price_50"])
    return t, f


def _gold_rows_of(trade_time: pd.Series, lookback_ok: np.ndarray, day: date) -> np.ndarray:
    """The rows Gold writes for `day`: trades of that UTC day with a full lookback."""
    times = trade_time.to_numpy(dtype="datetime64[us]")
    start = np.datetime64(day.isoformat(), "us")
    return (times >= start) & (times < start + np.timedelta64(1, "D")) & lookback_ok


def gold_arrow_schema():
    """The Gold file schema: the catalog's columns and types in Arrow (partition columns stay in the path)."""
    import pyarrow as pa

    types = {"double": pa.float64(), "int": pa.int32(), "bigint": pa.int64(), "string": pa.string(),
             "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [pa.field(name, types[typ]) for name, typ in gold_columns() if name not in ("product_id", "event_date")]
    )


def gold_table(trades: pd.DataFrame, tickers: pd.DataFrame | None, day: date, quote_join: str = "asof"):
    """The rows Gold writes for `day` (`_gold_rows_of`) as an Arrow table in the catalog's types, built
    column by column from the feature arrays: `compute_features`' values, without assembling a
    134-column DataFrame."""
    import pyarrow as pa

    t, f = feature_arrays(trades, tickers, quote_join)
    keep = np.flatnonzero(_gold_rows_of(t["trade_time"], f["lookback_ok"], day))
    columns = {
        "trade_id": t["trade_id"].to_numpy(dtype=np.int64)[keep],
        "trade_time": t["trade_time"].to_numpy(dtype="datetime64[us]")[keep],
        "price": t["price"].to_numpy(dtype=float)[keep],
        "size": t["size"].to_numpy(dtype=float)[keep],
        "side": t["side"].to_numpy(dtype=object)[keep],
        "is_training_ready": f["is_training_ready"][keep],
    }
    arrays = []
    schema = gold_arrow_schema()
    for field in schema:
        if field.name in columns:
            values = columns[field.name]
            arrays.append(pa.array(values, type=pa.timestamp("us")).cast(field.type) if field.name == "trade_time"
                          else pa.array(values, type=field.type))
            continue
        values = f[field.name][keep]
        missing = np.isnan(values)
        if pa.types.is_integer(field.type):
            values = np.where(missing, 0, values).astype(np.int32)
        arrays.append(pa.array(values, mask=missing if missing.any() else None, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


TICKER_ORDER = ["event_time", "ingest_time", "kafka_partition", "kafka_offset", "item_index"]


def with_ticker_seq(tickers: pd.DataFrame) -> pd.DataFrame:
    """Silver tickers -> `ticker_seq`: ingestion order breaks ties among equal event times."""
    if "ticker_seq" in tickers.columns:
        return tickers
    ordered = _ordered(tickers, TICKER_ORDER)
    return ordered.assign(ticker_seq=np.arange(len(ordered), dtype=np.int64))

