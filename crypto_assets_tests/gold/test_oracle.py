"""Tests of the Gold feature ORACLE itself (and of the synthetic data sets it is run on).

Tiny hand-computed inputs make the reference trustworthy; an independent vectorised
recomputation and a prefix-invariance self-test cover the larger data sets.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from crypto_assets_tests.gold import datasets
from crypto_assets_tests.gold.oracle import FEATURES, TARGETS, oracle_features

SPEC = Path("/work/shared/specs/gold_features.md")
T0 = pd.Timestamp("2024-03-12 12:00:00")  # a Tuesday
NAN = float("nan")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def make_trades(rows) -> pd.DataFrame:
    """rows: (product_id, trade_id, trade_time, price, size, side)."""
    df = pd.DataFrame(rows, columns=["product_id", "trade_id", "trade_time", "price", "size", "side"])
    df["trade_id"] = df["trade_id"].astype("int64")
    df["trade_time"] = pd.Series([pd.Timestamp(x) for x in df["trade_time"]],
                                 dtype="datetime64[ns]")
    df["price"] = df["price"].astype("float64")
    df["size"] = df["size"].astype("float64")
    return df


def series_trades(prices, sizes=None, sides=None, step_s=1.0, start=T0, product="BTC-USD",
                  first_id=1) -> pd.DataFrame:
    n = len(prices)
    sizes = [1.0] * n if sizes is None else sizes
    sides = ["BUY"] * n if sides is None else sides
    return make_trades([
        (product, first_id + k, start + pd.Timedelta(seconds=step_s * k), prices[k], sizes[k],
         sides[k])
        for k in range(n)
    ])


def make_tickers(rows) -> pd.DataFrame:
    """rows: dicts with product_id, event_time, ticker_seq and any quote fields."""
    defaults = dict(price=100.0, best_bid=99.0, best_ask=101.0, best_bid_quantity=1.0,
                    best_ask_quantity=1.0, volume_24_h=1000.0, price_percent_chg_24_h=1.5,
                    low_24_h=90.0, high_24_h=110.0, low_52_w=50.0, high_52_w=150.0)
    df = pd.DataFrame([{**defaults, **r} for r in rows])
    df["event_time"] = pd.to_datetime(df["event_time"]).astype("datetime64[ns]")
    df["ticker_seq"] = df["ticker_seq"].astype("int64")
    return df[datasets.TICKER_COLUMNS]


NO_TICKERS = datasets.empty_tickers()


def run(trades, tickers=None) -> pd.DataFrame:
    return oracle_features(trades, NO_TICKERS if tickers is None else tickers)


def assert_values(actual, expected, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=rtol, atol=atol, equal_nan=True)


QUOTE_FEATURES = [
    "best_bid", "best_ask", "bid_ask_spread", "spread_pct", "price_vs_bid", "price_vs_ask",
    "best_bid_qty", "best_ask_qty", "mid_price", "microprice", "book_imbalance", "spread_bps",
    "price_vs_mid_bps", "ticker_age_ms", "volume_24h", "price_change_24h",
    "range_position_24h", "range_position_52w",
]


# --------------------------------------------------------------------------------------------
# catalog
# --------------------------------------------------------------------------------------------


def test_catalog_sizes():
    assert len(FEATURES) == 120
    assert len(set(FEATURES)) == 120
    assert TARGETS == ["future_price_10", "future_price_50", "target_return_10",
                       "target_return_50", "target_direction_10", "target_direction_50"]
    assert not set(FEATURES) & set(TARGETS)


def _spec_names():
    """Backticked names of the spec's table rows, split into (features, targets), in order."""
    features, targets = [], []
    section = None
    for line in SPEC.read_text().splitlines():
        if line.startswith("## "):
            section = line
            continue
        if not line.startswith("|"):
            continue
        first_cell = line.strip("|").split("|")[0]
        names = re.findall(r"`([a-z0-9_]+)`", first_cell)
        if not names:
            continue
        (targets if section and section.startswith("## Targets") else features).extend(names)
    return features, targets


@pytest.mark.skipif(not SPEC.exists(), reason="spec file not available")
def test_catalog_matches_spec_tables():
    spec_features, spec_targets = _spec_names()
    assert len(spec_features) == 120 and len(set(spec_features)) == 120
    assert set(FEATURES) == set(spec_features)
    assert FEATURES == spec_features  # catalog order = spec order (group A, A', B)
    assert TARGETS == spec_targets


def test_output_columns_and_row_order():
    trades = make_trades([
        ("ETH-USD", 7, T0 + pd.Timedelta(seconds=1), 10.0, 1.0, "SELL"),
        ("BTC-USD", 1000, T0, 100.0, 1.0, "BUY"),
        ("BTC-USD", 999, T0, 101.0, 1.0, "SELL"),
        ("ETH-USD", 6, T0 + pd.Timedelta(seconds=2), 11.0, 2.0, "BUY"),
        ("BTC-USD", 5, T0 - pd.Timedelta(seconds=1), 99.0, 1.0, "BUY"),
    ])
    out = run(trades)
    assert list(out.columns) == (["product_id", "trade_id", "trade_time", "price", "size", "side"]
                                 + FEATURES + TARGETS + ["is_training_ready", "lookback_ok"])
    assert len(out) == len(trades)
    assert list(zip(out.product_id, out.trade_id)) == [
        ("BTC-USD", 5), ("BTC-USD", 999), ("BTC-USD", 1000), ("ETH-USD", 7), ("ETH-USD", 6)]
    assert out["trade_id"].dtype == np.int64
    assert out["trade_time"].dtype == "datetime64[ns]"
    assert out["is_training_ready"].dtype == bool and out["lookback_ok"].dtype == bool
    for c in FEATURES + TARGETS:
        assert out[c].dtype == np.float64, c
    # products never mix: ETH's first trade has no predecessor
    assert math.isnan(out.loc[3, "price_change_1"])


# --------------------------------------------------------------------------------------------
# hand-computed small cases
# --------------------------------------------------------------------------------------------


def test_first_trades_hand_computed():
    trades = make_trades([
        ("BTC-USD", 1, T0, 100.0, 0.5, "BUY"),
        ("BTC-USD", 2, T0 + pd.Timedelta(seconds=1.5), 101.0, 0.25, "SELL"),
        ("BTC-USD", 3, T0 + pd.Timedelta(seconds=1.5), 99.0, 2.0, "SELL"),
        ("BTC-USD", 4, T0 + pd.Timedelta(seconds=3), 99.0, 1e-8, "BUY"),
    ])
    out = run(trades)
    assert out["ma_10_trades"].isna().all()  # too few trades: no partial windows
    assert out["volatility_10"].isna().all() and out["volume_10"].isna().all()
    assert_values(out["price_change_1"], [NAN, 1.0, -2.0, 0.0])
    assert_values(out["return_1"], [NAN, 1.0, -2.0 / 101.0 * 100.0, 0.0])
    assert_values(out["log_return_1"], [NAN, math.log(1.01), math.log(99 / 101), 0.0])
    assert out["price_change_5"].isna().all() and out["return_10"].isna().all()
    assert_values(out["seconds_since_prev_trade"], [NAN, 1.5, 0.0, 1.5])
    assert_values(out["is_buy"], [1, 0, 0, 1])
    assert_values(out["signed_volume"], [0.5, -0.25, -2.0, 1e-8])
    assert_values(out["trades_1m"], [1, 2, 3, 4])
    assert_values(out["volume_1m"], [0.5, 0.75, 2.75, 2.75 + 1e-8])
    assert_values(out["vwap_1m"][:3], [100.0, (50 + 25.25) / 0.75, (50 + 25.25 + 198) / 2.75])
    assert out["return_1m"].isna().all() and out["return_5m"].isna().all()
    assert_values(out["hour_of_day"], [12] * 4)
    assert out[QUOTE_FEATURES].isna().all().all()  # no tickers at all
    assert not out["lookback_ok"].any() and not out["is_training_ready"].any()


def test_window_boundaries():
    n = 60
    prices = [100.0 + (k % 7) - 0.5 * (k % 3) for k in range(n)]
    sizes = [0.1 + 0.01 * k for k in range(n)]
    out = run(series_trades(prices, sizes, step_s=2.0))
    p = np.array(prices)
    # ma_10: NaN for the first 9 trades, then the plain mean
    assert out["ma_10_trades"][:9].isna().all()
    assert_values(out["ma_10_trades"][9], p[:10].mean())
    assert_values(out["volatility_10"][9], np.std(p[:10], ddof=1))
    # p[-N] needs N earlier trades
    assert math.isnan(out["return_10"][9])
    assert_values(out["return_10"][10], (p[10] - p[0]) / p[0] * 100)
    assert_values(out["price_change_50"][50], p[50] - p[0])
    assert math.isnan(out["price_change_50"][49])
    # realized_vol_10 needs 11 trades
    assert math.isnan(out["realized_vol_10"][9])
    lr = np.log(p[1:11] / p[0:10])
    assert_values(out["realized_vol_10"][10], math.sqrt(np.sum(lr ** 2)))
    # amihud_50 needs 51 trades
    assert math.isnan(out["amihud_50"][49])
    r = np.abs((p[1:51] - p[:50]) / p[:50]) / (p[1:51] * np.array(sizes[1:51]))
    assert_values(out["amihud_50"][50], r.mean())
    # inter-trade timing
    assert math.isnan(out["mean_intertrade_seconds_10"][9])
    assert_values(out["mean_intertrade_seconds_10"][10], 2.0)
    assert math.isnan(out["trade_rate_50"][48])
    assert_values(out["trade_rate_50"][49], 50 / 98.0)
    # size_zscore_100 needs 100 trades
    assert out["size_zscore_100"].isna().all()
    assert out["ma_500_trades"].isna().all() and out["price_position_500"].isna().all()


def test_price_statistics_hand_computed():
    prices = [float(k) for k in range(1, 11)]  # 1..10
    out = run(series_trades(prices))
    row = out.iloc[9]
    assert row["ma_10_trades"] == 5.5
    assert row["min_10_trades"] == 1.0 and row["max_10_trades"] == 10.0
    assert row["price_range_10"] == 9.0
    assert_values(row["volatility_10"], math.sqrt(82.5 / 9))  # sum of squared deviations 82.5
    assert_values(row["price_vs_ma_10"], (10 - 5.5) / 5.5 * 100)
    assert_values(row["price_change_5"], 5.0)
    assert_values(row["price_change_1"], 1.0)


def test_volume_and_flow_hand_computed():
    sizes = [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    sides = ["BUY", "SELL", "BUY", "SELL", "BUY", "BUY", "BUY", "SELL", "BUY", "BUY"]
    prices = [10.0, 11.0, 12.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 20.0]
    row = run(series_trades(prices, sizes, sides)).iloc[9]
    assert row["volume_10"] == 20.0
    assert row["volume_ma_10"] == 2.0
    assert row["volume_ratio_10"] == 0.5
    # buy volume = 1+3+5+1+1+1+1 = 13, sell = 2+4+1 = 7
    assert_values(row["order_flow_imbalance_10"], (13 - 7) / 20)
    notional = 10 + 22 + 36 + 40 + 50 + 10 + 10 + 10 + 10 + 20
    assert_values(row["notional_10"], notional)
    assert_values(row["vwap_10"], notional / 20)
    assert_values(row["price_vs_vwap_10"], (20 - notional / 20) / (notional / 20) * 100)
    assert math.isnan(row["buy_count_50"]) and math.isnan(row["signed_volume_sum_50"])


def test_buy_sell_counts_over_50():
    sides = ["BUY" if k % 5 else "SELL" for k in range(50)]  # 10 SELL, 40 BUY
    sizes = [2.0 if s == "SELL" else 1.0 for s in sides]
    row = run(series_trades([100.0] * 50, sizes, sides)).iloc[49]
    assert row["buy_count_50"] == 40 and row["sell_count_50"] == 10
    assert row["buy_sell_ratio_50"] == 4.0
    assert row["buy_volume_50"] == 40.0 and row["sell_volume_50"] == 20.0
    assert_values(row["buy_volume_ratio_50"], 40 / 60)
    assert row["signed_volume_sum_50"] == 20.0
    assert_values(row["order_flow_imbalance_50"], 20 / 60)


def test_one_and_five_minute_windows():
    trades = make_trades([
        ("BTC-USD", 1, T0, 100.0, 1.0, "BUY"),
        ("BTC-USD", 2, T0 + pd.Timedelta(seconds=30), 102.0, 2.0, "BUY"),
        ("BTC-USD", 3, T0 + pd.Timedelta(seconds=60), 105.0, 1.0, "SELL"),
        ("BTC-USD", 4, T0 + pd.Timedelta(seconds=60), 104.0, 3.0, "BUY"),
        ("BTC-USD", 5, T0 + pd.Timedelta(seconds=360), 110.0, 1.0, "BUY"),
    ])
    out = run(trades)
    # trade 3: window (t-60s, t] excludes trade 1 (exactly at t-60s) and excludes trade 4
    # (same timestamp, later in order); trade 1 is the return reference.
    assert_values(out["trades_1m"], [1, 2, 2, 3, 1])
    assert_values(out["volume_1m"], [1.0, 3.0, 3.0, 6.0, 1.0])
    assert_values(out["vwap_1m"][2], (204 + 105) / 3)
    assert_values(out["vwap_1m"][3], (204 + 105 + 312) / 6)
    assert_values(out["return_1m"], [NAN, NAN, 5.0, 4.0, (110 - 104) / 104 * 100])
    # 5 minutes: trade 5 at t0+360s: window (t0+60s, t0+360s] -> only itself;
    # reference = last trade at or before t0+60s in order = trade 4
    assert_values(out["trades_5m"], [1, 2, 3, 4, 1])
    assert_values(out["return_5m"], [NAN, NAN, NAN, NAN, (110 - 104) / 104 * 100])
    assert_values(out["vwap_5m"][4], 110.0)


def test_trade_id_integer_order_within_equal_timestamps():
    trades = make_trades([
        ("BTC-USD", 1000, T0, 200.0, 1.0, "BUY"),
        ("BTC-USD", 999, T0, 100.0, 1.0, "SELL"),
        ("BTC-USD", 10, T0 - pd.Timedelta(seconds=1), 50.0, 1.0, "BUY"),
        ("BTC-USD", 9, T0 - pd.Timedelta(seconds=1), 40.0, 1.0, "BUY"),
    ])
    out = run(trades)
    assert list(out.trade_id) == [9, 10, 999, 1000]
    assert_values(out["price_change_1"], [NAN, 10.0, 50.0, 100.0])
    # the equal-timestamp trade 1000 is after 999: not in 999's 1-minute window
    assert_values(out["trades_1m"], [1, 2, 3, 4])


def test_asof_ticker_tie_break_and_no_lookahead():
    t = T0
    trades = make_trades([
        ("BTC-USD", 1, t - pd.Timedelta(seconds=10), 100.0, 1.0, "BUY"),  # before any ticker
        ("BTC-USD", 2, t, 100.0, 1.0, "BUY"),
        ("BTC-USD", 3, t + pd.Timedelta(seconds=5), 100.0, 1.0, "SELL"),  # ticker at same time
    ])
    tickers = make_tickers([
        dict(product_id="BTC-USD", event_time=t - pd.Timedelta(seconds=2), ticker_seq=5,
             best_bid=99.0),
        # equal event_time: the larger ticker_seq wins, whatever the row order
        dict(product_id="BTC-USD", event_time=t - pd.Timedelta(seconds=1), ticker_seq=7,
             best_bid=98.0, best_ask=102.0, best_bid_quantity=1.0, best_ask_quantity=3.0),
        dict(product_id="BTC-USD", event_time=t - pd.Timedelta(seconds=1), ticker_seq=6,
             best_bid=97.0),
        # after trade 2 by one microsecond: never used by trade 2
        dict(product_id="BTC-USD", event_time=t + pd.Timedelta(microseconds=1), ticker_seq=8,
             best_bid=1.0, best_ask=2.0),
        # another product's ticker right at the trade time: ignored
        dict(product_id="ETH-USD", event_time=t, ticker_seq=9, best_bid=3.0, best_ask=4.0),
        # exactly at trade 3's time: used
        dict(product_id="BTC-USD", event_time=t + pd.Timedelta(seconds=5), ticker_seq=10,
             best_bid=99.5, best_ask=100.5),
        dict(product_id="BTC-USD", event_time=t + pd.Timedelta(seconds=5, microseconds=1),
             ticker_seq=11, best_bid=50.0, best_ask=51.0),
    ])
    out = run(trades, tickers)
    assert out.loc[0, QUOTE_FEATURES].isna().all()
    r = out.iloc[1]
    assert r["best_bid"] == 98.0 and r["best_ask"] == 102.0
    assert r["best_bid_qty"] == 1.0 and r["best_ask_qty"] == 3.0
    assert r["bid_ask_spread"] == 4.0
    assert_values(r["spread_pct"], 4 / 98 * 100)
    assert_values(r["price_vs_bid"], 2 / 98 * 100)
    assert_values(r["price_vs_ask"], -2 / 102 * 100)
    assert r["mid_price"] == 100.0
    assert_values(r["microprice"], (98 * 3 + 102 * 1) / 4)  # = 99
    assert_values(r["book_imbalance"], -0.5)
    assert_values(r["spread_bps"], 400.0)
    assert_values(r["price_vs_mid_bps"], 0.0)
    assert_values(r["ticker_age_ms"], 1000.0)
    assert r["volume_24h"] == 1000.0 and r["price_change_24h"] == 1.5
    assert_values(r["range_position_24h"], 0.5)
    assert_values(r["range_position_52w"], 0.5)
    r3 = out.iloc[2]
    assert r3["best_bid"] == 99.5 and r3["ticker_age_ms"] == 0.0


def test_ticker_age_microsecond_precision():
    trades = make_trades([("BTC-USD", 1, T0 + pd.Timedelta(microseconds=1234), 100.0, 1.0,
                           "BUY")])
    tickers = make_tickers([dict(product_id="BTC-USD", event_time=T0, ticker_seq=1)])
    assert_values(run(trades, tickers)["ticker_age_ms"], [1.234])


def test_rsi():
    up = [100.0 + k for k in range(15)]
    out = run(series_trades(up))
    assert math.isnan(out["rsi_14"][13])  # only 13 changes
    assert out["rsi_14"][14] == 100.0  # L = 0, G > 0
    flat = run(series_trades([100.0] * 15))
    assert math.isnan(flat["rsi_14"][14])  # L = 0, G = 0
    # 14 changes: seven +2, seven -1 -> G = 1, L = 0.5, RSI = 100 - 100/3
    prices = [100.0]
    for k in range(14):
        prices.append(prices[-1] + (2.0 if k % 2 == 0 else -1.0))
    out = run(series_trades(prices))
    assert_values(out["rsi_14"][14], 100 - 100 / 3)
    # an earlier change outside the window does not count
    prices2 = [500.0] + prices
    assert_values(run(series_trades(prices2))["rsi_14"][15], 100 - 100 / 3)


def test_division_by_zero_gives_nan():
    n = 110
    out = run(series_trades([100.0] * n, step_s=0.0))  # constant price, one timestamp, all BUY
    last = out.iloc[-1]
    assert last["volatility_10"] == 0.0 and last["price_range_100"] == 0.0
    for c in ["zscore_50", "zscore_100", "bollinger_pctb_50", "price_position_100",
              "buy_sell_ratio_50", "buy_sell_ratio_100", "trade_rate_50", "trade_rate_100",
              "size_zscore_100", "rsi_14", "rsi_50"]:
        assert math.isnan(last[c]), c
    assert last["bollinger_width_50"] == 0.0  # 0 / ma: well defined
    assert last["seconds_since_prev_trade"] == 0.0
    assert last["mean_intertrade_seconds_10"] == 0.0
    # zero bid / zero quantities / flat 24h range
    trades = make_trades([("BTC-USD", 1, T0, 100.0, 1.0, "SELL")])
    tickers = make_tickers([dict(product_id="BTC-USD", event_time=T0, ticker_seq=1,
                                 best_bid=0.0, best_ask=0.0, best_bid_quantity=0.0,
                                 best_ask_quantity=0.0, low_24_h=100.0, high_24_h=100.0)])
    r = run(trades, tickers).iloc[0]
    for c in ["spread_pct", "price_vs_bid", "price_vs_ask", "microprice", "book_imbalance",
              "spread_bps", "price_vs_mid_bps", "range_position_24h"]:
        assert math.isnan(r[c]), c
    assert r["bid_ask_spread"] == 0.0 and r["mid_price"] == 0.0
    vals = out[FEATURES].to_numpy()
    assert not np.isinf(vals).any()


def test_calendar_features():
    trades = make_trades([
        ("BTC-USD", 1, "2024-03-09 23:59:59.999999", 100.0, 1.0, "BUY"),  # Saturday
        ("BTC-USD", 2, "2024-03-10 13:45:59", 100.0, 1.0, "BUY"),  # Sunday
        ("BTC-USD", 3, "2024-03-11 00:00:00", 100.0, 1.0, "BUY"),  # Monday
        ("BTC-USD", 4, "2024-03-15 06:30:00", 100.0, 1.0, "BUY"),  # Friday
    ])
    out = run(trades)
    assert_values(out["day_of_week"], [7, 1, 2, 6])
    assert_values(out["is_weekend"], [1, 1, 0, 0])
    assert_values(out["hour_of_day"], [23, 13, 0, 6])
    h = np.array([23 + 59 / 60, 13.75, 0.0, 6.5])  # seconds ignored
    assert_values(out["hour_sin"], np.sin(2 * np.pi * h / 24), atol=1e-15)
    assert_values(out["hour_cos"], np.cos(2 * np.pi * h / 24), atol=1e-15)
    d = np.array([6, 0, 1, 5])
    assert_values(out["dow_sin"], np.sin(2 * np.pi * d / 7), atol=1e-15)
    assert_values(out["dow_cos"], np.cos(2 * np.pi * d / 7), atol=1e-15)
    assert out.loc[1, "dow_sin"] == 0.0 and out.loc[1, "dow_cos"] == 1.0


def test_targets_and_training_ready():
    n = 60
    prices = [100.0 + (k % 4) for k in range(n)]  # period 4: +10 / +50 later is +2 / +2 etc.
    out = run(series_trades(prices))
    p = np.array(prices)
    fp10 = np.full(n, np.nan)
    fp10[: n - 10] = p[10:]
    fp50 = np.full(n, np.nan)
    fp50[: n - 50] = p[50:]
    assert_values(out["future_price_10"], fp10)
    assert_values(out["future_price_50"], fp50)
    assert_values(out["target_return_10"], (fp10 - p) / p * 100)
    tr50 = (fp50 - p) / p * 100
    direction = np.where(tr50 > 0, 1.0, np.where(tr50 < 0, 0.0, np.nan))
    assert_values(out["target_direction_50"], direction)
    assert np.isnan(out["target_direction_10"][p == np.roll(p, -10)][: n - 10]).all()
    assert list(out["is_training_ready"]) == [k < 10 for k in range(n)]
    # another product's later trades never serve as future prices
    two = pd.concat([series_trades(prices[:12]),
                     series_trades([1.0] * 20, product="ETH-USD", first_id=1)])
    out2 = run(two)
    btc = out2[out2.product_id == "BTC-USD"].reset_index(drop=True)
    assert_values(btc["future_price_10"], list(p[10:12]) + [NAN] * 10)
    assert not out2["is_training_ready"].any()


def test_lookback_ok_flips_at_500th_trade_and_5_minutes():
    # 1 s apart: the 500th trade (index 499) is at 499 s >= 300 s -> the count decides
    out = run(series_trades([100.0 + (k % 3) for k in range(520)], step_s=1.0))
    assert not out["lookback_ok"][:499].any()
    assert out["lookback_ok"][499:].all()
    # 0.5 s apart: 500 trades only span 249.5 s; the flag flips at index 600 (exactly 300 s)
    out = run(series_trades([100.0] * 620, step_s=0.5))
    assert not out["lookback_ok"][:600].any()
    assert out["lookback_ok"][600:].all()


# --------------------------------------------------------------------------------------------
# the data sets and the oracle on them
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset_frames():
    return {name: fn() for name, fn in datasets.ALL_DATASETS.items()}


def test_datasets_format_and_determinism(dataset_frames):
    for name, fn in datasets.ALL_DATASETS.items():
        trades, tickers = dataset_frames[name]
        again_trades, again_tickers = fn()
        pd.testing.assert_frame_equal(trades, again_trades)
        pd.testing.assert_frame_equal(tickers, again_tickers)
        assert list(trades.columns) == datasets.TRADE_COLUMNS, name
        assert list(tickers.columns) == datasets.TICKER_COLUMNS, name
        assert trades["trade_id"].dtype == np.int64
        assert trades["trade_time"].dtype == "datetime64[ns]"
        assert (trades["trade_time"].dt.nanosecond == 0).all()  # microsecond precision
        assert (trades["price"] > 0).all() and trades["price"].dtype == np.float64
        assert trades["size"].between(1e-8, 5.0).all()
        assert trades["size"].min() < 1e-4 and trades["size"].max() > 1.0, name
        assert set(trades["side"]) == {"BUY", "SELL"}
        assert not trades.duplicated(["product_id", "trade_id"]).any()
        # trade ids increase with the (time, id) order
        for _, g in trades.groupby("product_id"):
            g = g.sort_values(["trade_time", "trade_id"])
            assert g["trade_id"].is_monotonic_increasing
        assert len(tickers) > 0 and tickers["ticker_seq"].dtype == np.int64
        assert (tickers["best_bid"] < tickers["best_ask"]).all()
        assert (tickers["best_bid"] > 0).all()
        assert set(tickers["product_id"]) == set(trades["product_id"])
        assert not tickers.duplicated(["product_id", "event_time", "ticker_seq"]).any()
        # input is unsorted
        assert not trades["trade_time"].is_monotonic_increasing


def test_dataset_specific_properties(dataset_frames):
    tr, _ = dataset_frames["prices_near_100k"]
    assert tr["price"].between(99_000, 101_000).all()
    assert (tr["price"].max() - tr["price"].min()) / 100_000 < 0.01

    tr, _ = dataset_frames["equal_timestamps"]
    burst_sizes = tr.groupby("trade_time").size()
    assert (burst_sizes >= 2).sum() > 100 and burst_sizes.max() <= 10

    tr, _ = dataset_frames["trade_ids_cross_power_of_ten"]
    a = tr[tr.product_id == "BTC-USD"]
    assert a.trade_id.min() == 999_400 and a.trade_id.max() == 1_000_900
    b = tr[tr.product_id != "BTC-USD"]
    assert b.trade_id.min() < 99_999 and b.trade_id.max() > 100_000
    same = a[a.trade_id.isin([999_999, 1_000_000])]["trade_time"]
    assert same.nunique() == 1
    same = b[b.trade_id.isin([99_999, 100_000])]["trade_time"]
    assert same.nunique() == 1

    tr, _ = dataset_frames["sparse_and_bursty"]
    gaps = tr.sort_values(["trade_time", "trade_id"])["trade_time"].diff().dt.total_seconds()
    assert (gaps > 60).sum() >= 10 and (gaps < 0.05).sum() > 500
    assert 1400 <= len(tr) <= 1600

    tr, _ = dataset_frames["small_day"]
    assert len(tr) < 500

    tr, tk = dataset_frames["two_products_with_tickers"]
    assert tr["product_id"].nunique() == 2
    for pid, g in tr.groupby("product_id"):
        k = tk[tk.product_id == pid]
        assert 1100 <= len(g) <= 1300
        assert k["event_time"].min() - g["trade_time"].min() >= pd.Timedelta(minutes=3)
        assert k["event_time"].isin(set(g["trade_time"])).sum() >= 10
        assert k.duplicated("event_time").sum() >= 10

    tr, _ = dataset_frames["cross_midnight"]
    days = tr["trade_time"].dt.normalize().value_counts()
    assert days[pd.Timestamp("2024-03-10")] > 500 and days[pd.Timestamp("2024-03-11")] > 500
    assert 50 <= days[pd.Timestamp("2024-03-12")] <= 150
    assert tr["trade_time"].min() >= pd.Timestamp("2024-03-10 23:30")


@pytest.fixture(scope="module")
def oracle_outputs(dataset_frames):
    names = ["small_day", "prices_near_100k", "two_products_with_tickers"]
    return {name: oracle_features(*dataset_frames[name]) for name in names}


def test_oracle_on_datasets_sane(dataset_frames, oracle_outputs):
    for name, out in oracle_outputs.items():
        trades, tickers = dataset_frames[name]
        assert len(out) == len(trades)
        vals = out[FEATURES + TARGETS].to_numpy()
        assert not np.isinf(vals).any(), name
        assert (out["trades_1m"] >= 1).all() and (out["trades_5m"] >= out["trades_1m"]).all()
        # quote features are NaN exactly when no ticker of the product is at/before the trade
        first_tick = tickers.groupby("product_id")["event_time"].min()
        no_ticker = out["trade_time"] < out["product_id"].map(first_tick)
        assert out.loc[no_ticker, QUOTE_FEATURES].isna().all().all()
        assert out.loc[~no_ticker, QUOTE_FEATURES].notna().all().all()
        assert (out.loc[~no_ticker, "ticker_age_ms"] >= 0).all()
    assert not oracle_outputs["small_day"]["lookback_ok"].any()
    assert oracle_outputs["two_products_with_tickers"]["best_bid"].isna().sum() > 100


def test_oracle_matches_vectorised_recomputation(oracle_outputs):
    """An independent formulation (numpy sliding windows) agrees with the per-trade loop."""
    for name, out in oracle_outputs.items():
        for _, g in out.groupby("product_id"):
            p = g["price"].to_numpy()
            s = g["size"].to_numpy()
            for n in (10, 50, 100, 500):
                if len(p) < n:
                    continue
                w = sliding_window_view(p, n)
                pad = np.full(n - 1, np.nan)
                assert_values(g[f"ma_{n}_trades"], np.concatenate([pad, w.mean(axis=1)]),
                              rtol=1e-12)
                if n < 500:
                    assert_values(g[f"volatility_{n}"],
                                  np.concatenate([pad, w.std(axis=1, ddof=1)]),
                                  rtol=1e-7, atol=1e-9)
                    assert_values(g[f"max_{n}_trades"], np.concatenate([pad, w.max(axis=1)]))
                    ws = sliding_window_view(s, n)
                    assert_values(g[f"volume_{n}"], np.concatenate([pad, ws.sum(axis=1)]),
                                  rtol=1e-12)
                    wn = sliding_window_view(p * s, n)
                    assert_values(g[f"vwap_{n}"],
                                  np.concatenate([pad, wn.sum(axis=1) / ws.sum(axis=1)]),
                                  rtol=1e-11)
            ret1 = np.concatenate([[np.nan], (p[1:] - p[:-1]) / p[:-1] * 100])
            assert_values(g["return_1"], ret1, rtol=1e-9, atol=1e-12)


def _prefix_check(trades, tickers, positions):
    full = oracle_features(trades, tickers)
    cols = FEATURES + ["lookback_ok"]
    for pos in positions:
        row = full.iloc[pos]
        pid = row["product_id"]
        key = (row["trade_time"], row["trade_id"])
        mine = trades["product_id"] == pid
        later = mine & ((trades["trade_time"] > key[0])
                        | ((trades["trade_time"] == key[0]) & (trades["trade_id"] > key[1])))
        cut = oracle_features(trades[~later], tickers)
        cut_row = cut[(cut.product_id == pid) & (cut.trade_id == row["trade_id"])]
        assert len(cut_row) == 1
        np.testing.assert_array_equal(cut_row[cols].to_numpy(dtype=float)[0],
                                      row[cols].to_numpy(dtype=float),
                                      err_msg=f"prefix invariance broken at row {pos}")
        # trades after it with the same timestamp exist in some sampled cases
    return full


def test_prefix_invariance_equal_timestamps():
    trades, tickers = datasets.equal_timestamps(n=400, seed=12)
    ordered = trades.sort_values(["product_id", "trade_time", "trade_id"]).reset_index(drop=True)
    # pick positions that are the first fill of a burst with later fills at the same time
    same_next = ordered["trade_time"].eq(ordered["trade_time"].shift(-1))
    burst_firsts = list(np.flatnonzero(same_next.to_numpy())[[3, 40, 120, 200]])
    _prefix_check(trades, tickers, burst_firsts + [0, 55, 300, 399])


def test_prefix_invariance_two_products_with_tickers():
    trades, tickers = datasets.two_products_with_tickers()
    # keep a prefix of each product to stay fast (tickers start 3 min in)
    ordered = trades.sort_values(["product_id", "trade_time", "trade_id"])
    trades = ordered.groupby("product_id").head(300).sample(frac=1.0, random_state=0)
    n_btc = int((trades.product_id == "BTC-USD").sum())
    full = _prefix_check(trades, tickers, [10, 150, 299, n_btc + 5, n_btc + 250, n_btc + 299])
    assert full["best_bid"].notna().any() and full["best_bid"].isna().any()
