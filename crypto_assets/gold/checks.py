"""Gold quality checks that need more than counting: prefix invariance (no look-ahead).

Pure pandas: recompute the features of sampled trades from the input cut right after each
trade (and its tickers up to the trade's time) and compare with the values Gold wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_assets.contracts.gold_features import FEATURE_NAMES
from crypto_assets.gold.transforms import feature_arrays

# Recomputing from a cut restarts the rolling kernels, so values agree to rounding, not bit for
# bit; 1e-7 is ten times tighter than the catalog's agreement with a two-pass computation, and
# a look-ahead changes values far more (a different ticker, a different window).
REL_TOL = 1e-7
ABS_TOL = 1e-9
# The cut keeps enough history for every feature: at least this many earlier trades and seconds.
PREFIX_TRADES = 2000
PREFIX_SECONDS = 600


@dataclass
class LeakageResult:
    sampled: int = 0
    mismatched_rows: int = 0
    mismatched_features: dict[str, int] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.sampled > 0 and self.mismatched_rows == 0


def sample_trade_ids(gold_trade_ids: np.ndarray, k: int, seed: int) -> np.ndarray:
    """First, last and k-2 random rows of the partition (deterministic for a seed)."""
    if len(gold_trade_ids) <= k:
        return gold_trade_ids
    rng = np.random.default_rng(seed)
    middle = rng.choice(np.arange(1, len(gold_trade_ids) - 1), size=k - 2, replace=False)
    return gold_trade_ids[np.sort(np.concatenate([[0, len(gold_trade_ids) - 1], middle]))]


def prefix_invariance(
    trades: pd.DataFrame,
    tickers: pd.DataFrame,
    written: pd.DataFrame,
    quote_join: str = "asof",
) -> LeakageResult:
    """`trades`/`tickers`: the product's full input; `written`: the Gold rows to verify (features as written)."""
    t = trades.sort_values(["trade_time", "trade_id"], kind="mergesort").reset_index(drop=True)
    position = pd.Series(np.arange(len(t)), index=t["trade_id"].to_numpy())
    t_us = t["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    k = tickers.sort_values(["event_time", "ticker_seq"], kind="mergesort").reset_index(drop=True)
    k_us = k["event_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    result = LeakageResult()
    for _, row in written.iterrows():
        i = int(position[row["trade_id"]])
        by_time = int(np.searchsorted(t_us, t_us[i] - PREFIX_SECONDS * 1_000_000, side="left"))
        start = max(0, min(i - PREFIX_TRADES, by_time))
        prefix = t.iloc[start : i + 1]
        # Tickers: from the one the cut's first trade sees, up to the sampled trade's time.
        first = max(0, int(np.searchsorted(k_us, t_us[start], side="right")) - 1)
        last = int(np.searchsorted(k_us, t_us[i], side="right"))
        prefix_tickers = k.iloc[first:last]
        # Only the sampled (last) row: the features of its segment, from the prefix alone.
        _, values = feature_arrays(prefix, prefix_tickers, quote_join, rows=(len(prefix) - 1, len(prefix)))
        recomputed = {name: values[name][0] for name in FEATURE_NAMES}
        result.sampled += 1
        bad = []
        for name in FEATURE_NAMES:
            a, b = float(row[name]) if pd.notna(row[name]) else np.nan, float(recomputed[name]) if pd.notna(recomputed[name]) else np.nan
            if np.isnan(a) and np.isnan(b):
                continue
            if np.isnan(a) != np.isnan(b) or abs(a - b) > max(ABS_TOL, REL_TOL * max(abs(a), abs(b))):
                bad.append((name, a, b))
        if bad:
            result.mismatched_rows += 1
            for name, _, _ in bad:
                result.mismatched_features[name] = result.mismatched_features.get(name, 0) + 1
            if len(result.examples) < 3:
                result.examples.append(
                    {"trade_id": int(row["trade_id"]), **{n: {"written": a, "prefix": b} for n, a, b in bad[:4]}}
                )
    return result
