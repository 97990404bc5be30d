"""Purged walk-forward splits on real Gold rows, checked against the Silver trades (row times): no training
row's targets reach a test row, across midnight, and only those rows are left out."""

from __future__ import annotations

from datetime import date

import numpy as np

from crypto_assets.contracts.gold_features import FEATURE_NAMES
from crypto_assets.ml.baseline import load_rows
from crypto_assets.ml.export import lake_of, pin_window, read_partition
from crypto_assets.ml.walk_forward import EMBARGO_SECONDS, HORIZON_TRADES, UNKNOWN_END, horizon_end, walk_forward_splits

EPOCH = date(1970, 1, 1)


def _silver_horizon_end(trades, product: str, times_us: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For Gold rows (trade time, id) of `product`: the time of the Silver trade HORIZON_TRADES later."""
    t = trades[trades["product_id"] == product].sort_values(["trade_time", "trade_id"], kind="mergesort")
    silver_ids = t["trade_id"].to_numpy()
    silver_us = t["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    at = np.searchsorted(silver_ids, ids)  # ids grow with time in the generated market
    assert (silver_ids[at] == ids).all() and (silver_us[at] == times_us).all()
    later = at + HORIZON_TRADES
    return np.where(later < len(silver_us), silver_us[np.minimum(later, len(silver_us) - 1)], UNKNOWN_END)


def test_no_training_row_reaches_the_test_day_on_row_times_across_midnight(gold_lake):
    window = pin_window(gold_lake.config, gold_lake.days[0], gold_lake.days[-1])
    rows = load_rows(gold_lake.config, window, list(FEATURE_NAMES[:2]))
    ids = np.concatenate([read_partition(lake_of(gold_lake.config), window.files[(d, p)], ["trade_id"])
                          .column("trade_id").to_numpy() for p in window.products for d in window.days])
    test_days = [(d - EPOCH).days for d in gold_lake.days[1:]]
    splits = walk_forward_splits(rows.days, rows.products, rows.times_us, test_days)
    assert [s.test_day for s in splits] == test_days
    ends = np.empty(len(ids), np.int64)
    for k, product in enumerate(window.products):
        mine = rows.products == k
        ends[mine] = _silver_horizon_end(gold_lake.trades, product, rows.times_us[mine], ids[mine])
    embargo = int(EMBARGO_SECONDS * 1_000_000)
    for split in splits:
        first_test = rows.times_us[split.test].min()
        midnight = split.test_day * 86_400_000_000
        assert (rows.days[split.test] == split.test_day).all() and (rows.days[split.train] < split.test_day).all()
        # Every training row's horizon (its targets' trades, per Silver) ends before the embargo ahead of the test day.
        assert (ends[split.train] < first_test - embargo).all()
        assert rows.times_us[split.train].max() < midnight <= first_test
        # Only those rows are left out: every earlier row not trained on has a horizon reaching the embargo ...
        earlier = np.flatnonzero(rows.days < split.test_day)
        left_out = np.setdiff1d(earlier, split.train)
        assert len(left_out) == split.purged > 0 and (ends[left_out] >= first_test - embargo).all()
        # ... and they are the last trades of each product before midnight (the day before's, across midnight).
        for k in range(len(window.products)):
            theirs = left_out[rows.products[left_out] == k]
            assert (rows.days[theirs] == split.test_day - 1).all() and len(theirs) >= HORIZON_TRADES


def test_the_horizon_is_counted_per_product_and_unknown_past_the_rows():
    products = np.array([0, 1, 0, 1, 0, 0, 1, 0])
    order = np.argsort(products, kind="stable")  # the layout the baseline reads: product-major, time order
    times = np.array([10, 11, 20, 21, 30, 40, 41, 50])[order]
    products = products[order]
    assert horizon_end(products, times, 2).tolist() == [30, 40, 50, UNKNOWN_END, UNKNOWN_END, 41,
                                                        UNKNOWN_END, UNKNOWN_END]
    (split,) = walk_forward_splits(np.array([0, 0, 0, 1, 1, 0, 0, 1]), products, times * 1_000_000, [1],
                                   horizon=2, embargo_seconds=5)
    # The test rows start at t=40: of the five earlier rows only t=10 (its horizon ends at 30 < 40 - 5) is kept.
    assert split.train.tolist() == [0] and split.purged == 4
