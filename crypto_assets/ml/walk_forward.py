"""Purged walk-forward splits on Gold rows: train on the days before the test day, never on a row whose
targets reach the test rows.

A Gold row's targets read the trades up to `HORIZON_TRADES` later (contracts.partitioning.TARGET_HORIZONS),
so the label of the last rows of a day is made of the next day's first trades. A split keeps a training
row only when the time of the row `HORIZON_TRADES` later of the same product (its horizon's end) is more
than `EMBARGO_SECONDS` before the first test row: at least the targets' horizon lies between the last
training row and the first test row, on row times, across midnight as anywhere else. A row whose horizon
ends beyond the rows loaded is dropped too (its end is unknown).

Rows are given sorted by (product, trade_time, trade_id), as the baseline and the exports hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crypto_assets.contracts.partitioning import TARGET_HORIZONS

HORIZON_TRADES = max(TARGET_HORIZONS)
# Beyond the purge: a minute between the end of the last training row's horizon and the first test row.
EMBARGO_SECONDS = 60
UNKNOWN_END = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Split:
    test_day: int  # days since the epoch
    train: np.ndarray  # row numbers
    test: np.ndarray
    purged: int  # rows of earlier days left out because their horizon reaches the embargo


def horizon_end(products: np.ndarray, times_us: np.ndarray, horizon: int = HORIZON_TRADES) -> np.ndarray:
    """The time of the row `horizon` later of the same product (UNKNOWN_END past the product's last rows)."""
    end = np.full(len(times_us), UNKNOWN_END, dtype=np.int64)
    if len(times_us) > horizon:
        same = products[horizon:] == products[:-horizon]
        end[:-horizon] = np.where(same, times_us[horizon:], UNKNOWN_END)
    return end


def walk_forward_splits(days: np.ndarray, products: np.ndarray, times_us: np.ndarray, test_days,
                        horizon: int = HORIZON_TRADES, embargo_seconds: float = EMBARGO_SECONDS) -> list[Split]:
    """One split per test day (days since the epoch) that holds rows: train = rows of earlier days, purged."""
    ends = horizon_end(products, times_us, horizon)
    embargo_us = int(embargo_seconds * 1_000_000)
    out = []
    for day in test_days:
        test = np.flatnonzero(days == day)
        if not len(test):
            continue
        first = int(times_us[test].min())
        earlier = days < day
        train = np.flatnonzero(earlier & (ends < first - embargo_us))
        out.append(Split(int(day), train, test, int(earlier.sum()) - len(train)))
    return out
