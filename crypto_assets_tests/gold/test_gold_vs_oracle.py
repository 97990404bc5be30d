"""The production Gold engine against the independent oracle, on every generated data set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crypto_assets.contracts.gold_features import FEATURE_NAMES, TARGET_NAMES
from crypto_assets.gold.transforms import compute_features
from crypto_assets_tests.gold.datasets import ALL_DATASETS
from crypto_assets_tests.gold.oracle import FEATURES as ORACLE_FEATURES
from crypto_assets_tests.gold.oracle import oracle_features

REL, ABS = 1e-6, 1e-9  # the catalog's agreement with a plain two-pass computation


def engine(trades: pd.DataFrame, tickers: pd.DataFrame) -> pd.DataFrame:
    parts = [compute_features(g, tickers[tickers["product_id"] == pid]) for pid, g in trades.groupby("product_id")]
    return pd.concat(parts).sort_values(["product_id", "trade_time", "trade_id"], kind="mergesort").reset_index(drop=True)


def compare(ours: pd.DataFrame, ref: pd.DataFrame) -> dict[str, int]:
    """Columns that disagree -> number of rows, NaN matching NaN."""
    assert list(ours["trade_id"]) == list(ref["trade_id"])
    bad = {}
    for name in list(FEATURE_NAMES) + list(TARGET_NAMES) + ["lookback_ok", "is_training_ready"]:
        a = ours[name].to_numpy(dtype=float, na_value=np.nan)
        b = ref[name].to_numpy(dtype=float, na_value=np.nan)
        both_nan = np.isnan(a) & np.isnan(b)
        close = np.abs(a - b) <= np.maximum(ABS, REL * np.maximum(np.abs(a), np.abs(b)))
        wrong = ~(both_nan | close)
        if wrong.any():
            bad[name] = int(wrong.sum())
    return bad


def test_registry_and_oracle_name_the_same_features():
    assert list(FEATURE_NAMES) == list(ORACLE_FEATURES)


@pytest.mark.parametrize("name", sorted(ALL_DATASETS))
def test_engine_matches_oracle(name):
    trades, tickers = ALL_DATASETS[name]()
    ours, ref = engine(trades, tickers), oracle_features(trades, tickers)
    assert compare(ours, ref) == {}
    assert ours["lookback_ok"].sum() == ref["lookback_ok"].sum()
    if name == "small_day":
        assert not ours["lookback_ok"].any()  # fewer than 500 trades: no Gold row at all
    else:
        assert ours["lookback_ok"].any()


def test_engine_matches_oracle_without_tickers():
    trades, tickers = ALL_DATASETS["two_products_with_tickers"]()
    empty = tickers.iloc[0:0]
    ours, ref = engine(trades, empty), oracle_features(trades, empty)
    assert compare(ours, ref) == {}
    assert ours["best_bid"].isna().all() and ours["ma_10_trades"].notna().any()
