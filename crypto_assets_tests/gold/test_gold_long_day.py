"""Gold on a whole realistic day (issue #14, item 5): online window kernels must not drift.

240,000 BTC trades at 95,000 with ticks of 0.01, tiny variance, flat stretches and jumps of tens
of dollars (datasets.long_realistic_day). Every feature family over trade windows (and over lags
and time windows) is compared with an exact reference (window_reference: two-pass per window,
integer sums) within the catalog's tolerance, flat windows must give a volatility of exactly 0,
and the oracle itself checks every feature on slices of the day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crypto_assets.contracts.gold_features import FEATURE_NAMES
from crypto_assets.gold.transforms import compute_features
from crypto_assets_tests.gold import window_reference as ref
from crypto_assets_tests.gold.datasets import long_realistic_day
from crypto_assets_tests.gold.oracle import oracle_features
from crypto_assets_tests.gold.test_gold_vs_oracle import compare

REFERENCE_FAMILIES = sorted({ref.family(name) for name in ref.reference_features(long_realistic_day(n=600)[0])})


@pytest.fixture(scope="module")
def day():
    trades, tickers = long_realistic_day()
    ours = compute_features(trades, tickers).sort_values(["trade_time", "trade_id"], kind="mergesort")
    return trades, tickers, ours.reset_index(drop=True), ref.reference_features(trades)


def test_long_day_is_realistic_and_hard(day):
    trades, _, ours, expected = day
    p = ours["price"].to_numpy()
    assert len(p) >= 200_000
    days = ours["trade_time"].dt.normalize().unique()
    assert len(days) == 1 and ours["trade_time"].max() - ours["trade_time"].min() > pd.Timedelta(hours=23)
    assert np.array_equal(np.round(p * 100) / 100, p) and (np.abs(p - 95_000) < 1_000).all()  # ticks of 0.01
    assert np.abs(p - p[0]).max() * 100 > 10_000  # wanders thousands of ticks from the first price
    for n in (10, 50, 100):
        sd = expected[f"volatility_{n}"][n - 1 :]
        assert (sd == 0).sum() > 100, n  # flat windows
        assert 0 < np.median(sd[sd > 0]) < 0.05, n  # a few ticks at most
    assert np.abs(np.diff(p)).max() > 10  # jumps of tens of dollars


def test_reference_covers_every_feature_over_trades():
    """All but the per-row ones (calendar, side, quotes) have an exact reference."""
    per_row = {"hour_of_day", "day_of_week", "is_weekend", "hour_sin", "hour_cos", "dow_sin", "dow_cos", "is_buy",
               "signed_volume", "best_bid", "best_ask", "bid_ask_spread", "spread_pct", "price_vs_bid", "price_vs_ask",
               "best_bid_qty", "best_ask_qty", "mid_price", "microprice", "book_imbalance", "spread_bps",
               "price_vs_mid_bps", "ticker_age_ms", "volume_24h", "price_change_24h", "range_position_24h",
               "range_position_52w"}
    covered = set(ref.reference_features(long_realistic_day(n=600)[0]))
    assert covered == set(FEATURE_NAMES) - per_row
    assert {"volatility", "ma", "zscore", "bollinger_pctb", "size_zscore", "volume", "vwap", "rsi",
            "realized_vol", "amihud", "signed_volume_sum", "return", "trades"} <= set(REFERENCE_FAMILIES)


@pytest.mark.parametrize("family", REFERENCE_FAMILIES)
def test_family_matches_exact_reference(day, family):
    _, _, ours, expected = day
    report = {}
    for name in expected:
        if ref.family(name) == family:
            e = ref.errors(ours[name].to_numpy(dtype=float), expected[name])
            if e["bad_rows"]:
                report[name] = (f"{e['bad_rows']} rows out of tolerance, worst relative {e['worst_rel']:.3g}, "
                                f"absolute {e['worst_abs']:.3g}")
    assert report == {}


def test_flat_windows_have_volatility_exactly_zero(day):
    _, _, ours, expected = day
    for n in (10, 50, 100):
        ours_sd, flat = ours[f"volatility_{n}"].to_numpy(), expected[f"volatility_{n}"] == 0
        assert (ours_sd[flat] == 0.0).all(), n  # exactly 0, not rounding noise
        assert (ours_sd[n - 1 :][~flat[n - 1 :]] > 0).all(), n
    flat50 = expected["volatility_50"] == 0
    for name in ("zscore_50", "bollinger_pctb_50"):  # division by a zero sd: null
        assert ours[name][flat50].isna().all(), name
    assert (ours["bollinger_width_50"][flat50] == 0.0).all()


@pytest.mark.parametrize("where", ["after_the_largest_jump", "end_of_day"])
def test_oracle_agrees_on_slices_of_the_long_day(day, where):
    """The per-trade oracle on 1,700 consecutive trades: every feature of the rows whose 500-trade
    and 5-minute lookback lies inside the slice must match the engine's values from the whole day."""
    trades, tickers, ours, _ = day
    p = ours["price"].to_numpy()
    end = len(ours) if where == "end_of_day" else min(len(ours), int(np.argmax(np.abs(np.diff(p)))) + 1_200)
    piece = ours.iloc[end - 1_700 : end]
    oracle = oracle_features(trades[trades["trade_id"].isin(piece["trade_id"])], tickers)
    times = piece["trade_time"]
    keep = (np.arange(len(piece)) >= 499) & (times >= times.iloc[0] + pd.Timedelta(minutes=5)).to_numpy()
    assert keep.sum() > 300
    a, b = piece[keep].reset_index(drop=True), oracle[keep].reset_index(drop=True)
    b["lookback_ok"] = a["lookback_ok"]  # the slice's own lookback is shorter by design
    bad = compare(a, b)
    assert {k: v for k, v in bad.items() if k in FEATURE_NAMES} == {}
    assert set(bad) <= {"future_price_10", "future_price_50", "target_return_10", "target_return_50",
                        "target_direction_10", "target_direction_50", "is_training_ready"}  # the slice's end


def test_window_features_are_prefix_invariant_bit_for_bit(day):
    """Cutting the day right after a row changes none of its features (the block layout and the
    reference of each block come from earlier rows only)."""
    trades, tickers, ours, _ = day
    p = ours["price"].to_numpy()
    jump = int(np.argmax(np.abs(np.diff(p)))) + 1
    for cut in (jump + 7, 40_000 + 129):
        head = compute_features(ours.iloc[:cut][trades.columns], tickers)
        for name in FEATURE_NAMES:
            np.testing.assert_array_equal(head[name].to_numpy(dtype=float), ours[name].to_numpy(dtype=float)[:cut],
                                          err_msg=name)
