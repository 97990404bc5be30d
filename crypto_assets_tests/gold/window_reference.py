"""Exact two-pass reference for Gold's trade-window features, vectorised for day-long inputs.

The oracle's definitions (oracle.py), computed over NumPy sliding windows instead of a per-trade
loop: means and variances per window on values re-centred on the window's own last value (so a
flat window has sd exactly 0), NumPy's two-pass `std(ddof=1)`, plain window sums. Used by the
long-day tests and by benchmarks/bench_gold.py; imports nothing from `crypto_assets`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from crypto_assets_tests.gold.test_gold_vs_oracle import ABS, REL

CHUNK = 8192  # windows per pass: keeps the (windows x n) temporaries small


def family(name: str) -> str:
    """A feature's family: its name up to the first token that starts with a digit
    (volatility_10 -> volatility, ma_500_trades -> ma, trades_1m -> trades)."""
    return re.split(r"_\d", name, maxsplit=1)[0]


def _per_window(x: np.ndarray, n: int, fn, lag: int = 0) -> np.ndarray:
    """fn(windows) for every trailing window of n values of x, NaN for the first n - 1 + lag rows."""
    out = np.full(len(x) + lag, np.nan)
    if len(x) >= n:
        w = sliding_window_view(x, n)
        out[n - 1 + lag :] = np.concatenate([fn(w[a : a + CHUNK]) for a in range(0, len(w), CHUNK)])
    return out


def _centred(w: np.ndarray) -> np.ndarray:
    return w - w[:, -1:]


def _mean(x, n):
    return _per_window(x, n, lambda w: w[:, -1] + _centred(w).mean(axis=1))


def _sd(x, n):
    return _per_window(x, n, lambda w: _centred(w).std(axis=1, ddof=1))


def _sum(x, n, lag: int = 0):
    return _per_window(x, n, lambda w: w.sum(axis=1), lag)


def _div(a, b):
    """a / b, NaN where b is 0 or the result is not finite (the catalog's null)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    return np.where(np.isfinite(r), r, np.nan)


def ordered(trades: pd.DataFrame) -> pd.DataFrame:
    return trades.sort_values(["trade_time", "trade_id"], kind="mergesort").reset_index(drop=True)


def window_features(trades: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every trade-window feature of one product's trades, in (trade_time, trade_id) order."""
    t = ordered(trades)
    p, s = t["price"].to_numpy(dtype=float), t["size"].to_numpy(dtype=float)
    buy = (t["side"] == "BUY").to_numpy()
    f: dict[str, np.ndarray] = {}
    ma = {n: _mean(p, n) for n in (10, 50, 100, 500)}
    sd = {n: _sd(p, n) for n in (10, 50, 100)}
    lo = {n: _per_window(p, n, lambda w: w.min(axis=1)) for n in (10, 50, 100, 500)}
    hi = {n: _per_window(p, n, lambda w: w.max(axis=1)) for n in (10, 50, 100, 500)}
    for n in (10, 50, 100, 500):
        f[f"ma_{n}_trades"] = ma[n]
    for n in (10, 50, 100):
        f[f"min_{n}_trades"], f[f"max_{n}_trades"] = lo[n], hi[n]
        f[f"price_range_{n}"] = hi[n] - lo[n]
        f[f"volatility_{n}"] = sd[n]
        f[f"price_vs_ma_{n}"] = _div(p - ma[n], ma[n]) * 100
    for n in (50, 100):
        f[f"zscore_{n}"] = _div(p - ma[n], sd[n])
    f["bollinger_pctb_50"] = _div(p - (ma[50] - 2 * sd[50]), 4 * sd[50])
    f["bollinger_width_50"] = _div(4 * sd[50], ma[50])
    for n in (100, 500):
        f[f"price_position_{n}"] = _div(p - lo[n], hi[n] - lo[n])
    f["ma_cross_10_50"] = _div(ma[10], ma[50]) - 1
    f["ma_cross_50_500"] = _div(ma[50], ma[500]) - 1

    volume = {n: _sum(s, n) for n in (10, 50, 100)}
    bvol = {n: _sum(np.where(buy, s, 0.0), n) for n in (10, 50, 100)}
    svol = {n: _sum(np.where(buy, 0.0, s), n) for n in (10, 50, 100)}
    notional = {n: _sum(p * s, n) for n in (10, 50, 100)}
    for n in (10, 50, 100):
        f[f"volume_{n}"], f[f"volume_ma_{n}"] = volume[n], volume[n] / n
        f[f"notional_{n}"] = notional[n]
        f[f"vwap_{n}"] = vwap = _div(notional[n], volume[n])
        f[f"price_vs_vwap_{n}"] = _div(p - vwap, vwap) * 100
        f[f"order_flow_imbalance_{n}"] = _div(bvol[n] - svol[n], volume[n])
    for n in (10, 50):
        f[f"volume_ratio_{n}"] = _div(s, volume[n] / n)
    for n in (50, 100):
        buys = _sum(buy.astype(float), n)
        f[f"buy_count_{n}"], f[f"sell_count_{n}"] = buys, n - buys
        f[f"buy_sell_ratio_{n}"] = _div(buys, n - buys)
        f[f"buy_volume_{n}"], f[f"sell_volume_{n}"] = bvol[n], svol[n]
        f[f"buy_volume_ratio_{n}"] = _div(bvol[n], volume[n])
        f[f"signed_volume_sum_{n}"] = _sum(np.where(buy, s, -s), n)
    f["size_zscore_100"] = _div(s - _mean(s, 100), _sd(s, 100))

    # Windows of per-trade changes: trade k's change needs trade k - 1, so n + 1 trades.
    lr = np.log(p[1:] / p[:-1])
    change = p[1:] - p[:-1]
    for n in (10, 50, 100):
        f[f"realized_vol_{n}"] = np.sqrt(_sum(lr * lr, n, lag=1))
    for n in (14, 50):
        gain = _sum(np.maximum(change, 0.0), n, lag=1) / n
        loss = _sum(np.maximum(-change, 0.0), n, lag=1) / n
        rsi = 100 - 100 / (1 + _div(gain, loss))
        f[f"rsi_{n}"] = np.where(loss == 0, np.where(gain > 0, 100.0, np.nan), rsi)
    terms = _div(np.abs(change / p[:-1]), p[1:] * s[1:])
    f["amihud_50"] = _sum(terms, 50, lag=1) / 50
    return f


def lag_and_time_features(trades: pd.DataFrame) -> dict[str, np.ndarray]:
    """The features over the last N trades' endpoints and over time windows, exactly: prices in cents
    and sizes in units of 1e-8 as integers (Python integers for notionals), one rounding at the end."""
    t = ordered(trades)
    p, s = t["price"].to_numpy(dtype=float), t["size"].to_numpy(dtype=float)
    cents, units = np.rint(p * 100).astype(np.int64), np.rint(s * 1e8).astype(np.int64)
    if not (np.array_equal(cents / 100, p) and np.array_equal(units / 1e8, s)):
        raise ValueError("exact time windows need prices in cents and sizes in units of 1e-8")
    us = t["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    idx = np.arange(len(p))
    f: dict[str, np.ndarray] = {}

    def lag(x, n):
        out = np.full(len(x), np.nan)
        out[n:] = x[:-n]
        return out

    for n in (1, 5, 10, 50):
        f[f"price_change_{n}"] = p - lag(p, n)
    for n in (1, 10, 50, 100):
        f[f"return_{n}"] = _div(p - lag(p, n), lag(p, n)) * 100
        with np.errstate(invalid="ignore"):
            f[f"log_return_{n}"] = np.log(_div(p, lag(p, n)))
    f["seconds_since_prev_trade"] = (us - lag(us.astype(float), 1)) / 1e6
    for n in (10, 50):
        f[f"mean_intertrade_seconds_{n}"] = (us - lag(us.astype(float), n)) / 1e6 / n
    for n in (50, 100):
        f[f"trade_rate_{n}"] = _div(n, (us - lag(us.astype(float), n - 1)) / 1e6)
    cum_units = np.concatenate([[0], np.cumsum(units)])
    cum_notional = np.concatenate([[0], np.cumsum(cents.astype(object) * units.astype(object))])
    for label, seconds in (("1m", 60), ("5m", 300)):
        start = np.searchsorted(us, us - seconds * 1_000_000, side="right")
        volume = cum_units[idx + 1] - cum_units[start]
        notional = cum_notional[idx + 1] - cum_notional[start]
        f[f"trades_{label}"] = (idx + 1 - start).astype(float)
        f[f"volume_{label}"] = volume / 1e8
        f[f"vwap_{label}"] = np.array([a / (100 * b) if b else np.nan for a, b in zip(notional, volume)])
        before = np.where(start > 0, p[np.maximum(start - 1, 0)], np.nan)
        f[f"return_{label}"] = _div(p - before, before) * 100
    return f


def reference_features(trades: pd.DataFrame) -> dict[str, np.ndarray]:
    """window_features and lag_and_time_features of one product's trades."""
    return {**window_features(trades), **lag_and_time_features(trades)}


def errors(ours: np.ndarray, ref: np.ndarray, rel: float = REL, abs_: float = ABS) -> dict:
    """How far `ours` is from `ref`: rows out of the catalog's tolerance (|a - b| <= max(abs_, rel *
    max(|a|, |b|)), NaN matching NaN only), the worst relative error (over max(|a|, |b|); where values
    are ~0 only the absolute tolerance means anything), the worst absolute error, and the worst share
    of the tolerance used (1.0 = at the limit). A NaN on one side only counts as infinitely wrong."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    one_nan = np.isnan(ours) != np.isnan(ref)
    diff = np.abs(ours - ref)
    scale = np.maximum(np.abs(ours), np.abs(ref))
    both = ~np.isnan(diff)
    diff, scale = diff[both], scale[both]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(diff == 0, 0.0, diff / scale)
    used = diff / np.maximum(abs_, rel * scale)
    worst = (lambda v: float(v.max(initial=0.0))) if not one_nan.any() else (lambda v: float("inf"))
    return {"bad_rows": int((used > 1).sum() + one_nan.sum()), "worst_rel": worst(rel_err),
            "worst_abs": worst(diff), "tolerance_used": worst(used)}


def by_family(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, dict]:
    """`errors` per family (the worst over its features), with the feature of the worst relative error."""
    out: dict[str, dict] = {}
    for name in ref:
        e = errors(ours[name], ref[name])
        fam = out.setdefault(family(name), {"features": 0, "bad_rows": 0, "worst_rel": 0.0, "worst_abs": 0.0,
                                            "tolerance_used": 0.0, "worst_feature": name})
        fam["features"] += 1
        fam["bad_rows"] += e["bad_rows"]
        if e["worst_rel"] > fam["worst_rel"]:
            fam["worst_rel"], fam["worst_feature"] = e["worst_rel"], name
        fam["worst_abs"] = max(fam["worst_abs"], e["worst_abs"])
        fam["tolerance_used"] = max(fam["tolerance_used"], e["tolerance_used"])
    return out
