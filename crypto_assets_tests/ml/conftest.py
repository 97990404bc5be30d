"""The Gold lakes the ML tests read: generated trades written to Silver, Gold built by `build_gold`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import pytest

from crypto_assets.lake.store import Lake
from crypto_assets_tests.ml.gold_days import day_list, market, write_gold

FIRST = date(2024, 3, 11)  # a Monday; the days run across midnights


@dataclass
class GoldLake:
    root: str
    days: list[date]
    trades: pd.DataFrame
    tickers: pd.DataFrame
    snapshots: dict[date, int]

    @property
    def config(self):
        return Lake(self.root).catalog_config


def build_lake(root, days: int, trades_per_day: int, products=("BTC-USD",), seed: int = 11) -> GoldLake:
    trades, tickers = market(FIRST, days, trades_per_day, products, seed)
    dl = day_list(FIRST, days)
    return GoldLake(str(root), dl, trades, tickers, write_gold(str(root), trades, tickers, dl))


@pytest.fixture(scope="session")
def gold_lake(tmp_path_factory) -> GoldLake:
    """Four days of two products, about 3,000 trades a product-day (read only: tests that change Gold build their own)."""
    return build_lake(tmp_path_factory.mktemp("ml") / "lake", 4, 3000, ("BTC-USD", "ETH-USD"))
