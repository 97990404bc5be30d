"""Trailing-window kernels Gold's features are built from, over one product's trades in sequence order.

Each costs O(1) per row: sums and means use pandas' online (add/remove, compensated) window kernels,
sample sd (`rolling_std`) short per-block prefix sums with a bound on their rounding and a two-pass
where the bound is too loose (no day-long accumulation), min/max pandas' monotonic-deque kernels, counts
integer prefix sums, time windows binary search plus prefix sums of counts and sizes. `sorted_by` puts
rows in the order the windows run over.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view


def div(a, b):
    """a / b with null (NaN) where b is 0 or the result is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=float) / np.asarray(b, dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def lag(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if n < len(x):
        out[n:] = x[: len(x) - n]
    return out


def lead(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if n < len(x):
        out[: len(x) - n] = x[n:]
    return out


_U = np.finfo(float).eps / 2  # unit roundoff of float64


def rolling_std(x: np.ndarray, n: int, block: int = 256, rel: float = 1e-8) -> np.ndarray:
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


class Windows:
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
        return rolling_std(self.s.to_numpy(), n)

    def min(self, n):
        return self.roll(n).min().to_numpy()

    def max(self, n):
        return self.roll(n).max().to_numpy()


def window_count(flags: np.ndarray, n: int) -> np.ndarray:
    """Exact count of true flags in the last n (integer prefix sums), null until n rows exist."""
    cs = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
    out = np.full(len(flags), np.nan)
    if n <= len(flags):
        out[n - 1:] = cs[n:] - cs[: len(flags) - n + 1]
    return out


def time_window(ts_us: np.ndarray, p: np.ndarray, s: np.ndarray, seconds: int):
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
    return count, volume, div(notional, volume), div(p - ref_price, ref_price) * 100


def sorted_by(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
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
