"""Consecutive days of generated trades and tickers written to Silver, then Gold built by `build_gold`:
the real Gold table the ML tests train on (a random walk: nothing in it predicts the next moves)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from crypto_assets.gold.build import build_gold
from crypto_assets.lake.store import Lake
from crypto_assets_tests.gold.datasets import _finish, _poisson_times, _simple_product, _tickers_for, _us
from crypto_assets_tests.gold.silver_writer import write_silver

START_PRICES = {"BTC-USD": 68_000.0, "ETH-USD": 3_600.0}


def market(first: date, days: int, trades_per_day: int, products=("BTC-USD",), seed: int = 11):
    """(trades, tickers) of `products` from `first` 00:00 for `days` days plus the first minutes of the next
    (their trades complete the last day's targets), continuous across midnight."""
    rng = np.random.default_rng(seed)
    start = _us(first.isoformat())
    gap = 86_400 / trades_per_day
    trades, tickers = [], []
    for k, product in enumerate(products):
        times = _poisson_times(rng, start + 1_000 * (k + 1), days * trades_per_day + 200, gap)
        frame = _simple_product(rng, product, times, 1_000_000 * (k + 1), START_PRICES.get(product, 100.0), 1e-4)
        trades.append(frame)
        tickers.append(_tickers_for(rng, frame, start, int(times.max()), gap * 2, n_at_trade_times=5, n_equal_pairs=3))
    return _finish(rng, trades, tickers)


def write_gold(lake_root: str, trades: pd.DataFrame, tickers: pd.DataFrame, days: list[date]) -> dict[date, int]:
    """Silver := the given rows; Gold built for each day (all products in one run); day -> Gold snapshot id."""
    write_silver(None, lake_root, trades, tickers)
    lake = Lake(lake_root)
    products = sorted(trades["product_id"].unique())
    return {d: next(iter(build_gold(lake, d, products, leakage_samples=0).values())).snapshot_id for d in days}


def day_list(first: date, days: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(days)]
