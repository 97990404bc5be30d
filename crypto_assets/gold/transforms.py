"""Silver -> Gold: the 120 per-trade features of the feature catalog and its 6 targets, for one product.

`feature_arrays` computes them family by family as NumPy arrays (float, NaN = null) from the product's
trades in (trade_time, trade_id) order and its tickers: trade windows from `gold.windows`, the quote
each trade sees from `gold.quotes`, the targets from `gold.targets`. `compute_features` returns them as
rows (the leakage check and the tests), `gold.table.gold_table` as the table Gold writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.contracts.gold_features import FEATURE_NAMES, TARGET_NAMES
from crypto_assets.contracts.partitioning import LOOKAHEAD_TRADES
from crypto_assets.gold.quotes import Quotes, quotes_seen
from crypto_assets.gold.targets import targets
from crypto_assets.gold.windows import Windows, div, lag, sorted_by, time_window, window_count

LOOKBACK_TRADES = 499  # earlier trades a row needs (every 500-trade window full)
LOOKBACK_SECONDS = 300  # seconds of earlier history a row needs (the 5-minute windows full)
# Rows are computed per UTC segment of this length, each from its own slice of the input (`segments`).
# Longer: less overlap in a full build; shorter: less for an incremental run to recompute.
SEGMENT_SECONDS = 900


def compute_features(trades: pd.DataFrame, tickers: pd.DataFrame | None = None, quote_join: str = "asof") -> pd.DataFrame:
    """Features, targets, `lookback_ok` and `is_training_ready` for every trade of ONE product.

    `trades`: product_id, trade_id, trade_time, price, size, side. `tickers`: event_time,
    ticker_seq (tie-break among equal event times) and the ticker fields.
    """
    t, f = feature_arrays(trades, tickers, quote_join)
    out = t[["product_id", "trade_id", "trade_time", "price", "size", "side"]].copy()
    features = pd.DataFrame({c: f[c] for c in FEATURE_NAMES + TARGET_NAMES}, index=out.index)
    out = pd.concat([out, features], axis=1)
    out["lookback_ok"] = f["lookback_ok"]
    out["is_training_ready"] = f["is_training_ready"]
    return out


def feature_arrays(
    trades: pd.DataFrame, tickers: pd.DataFrame | None = None, quote_join: str = "asof",
    rows: tuple[int, int] | None = None, suffix: bool = False,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The core: one product's trades in (trade_time, trade_id) order, and one NumPy array per
    feature and target (float, NaN = null) plus the `lookback_ok` and `is_training_ready` masks, for the
    rows [lo, hi) of that order (`rows`; default all).

    Rows are computed segment by segment (`segments`): a row's values depend only on the trades of its
    segment's slice, which the data alone defines, so a run that recomputes the rows from some point on
    (incremental Gold) reproduces them bit for bit. `suffix`: `trades` holds only the later part of the
    product's input, and the caller has made sure it reaches back over the slice of the first row asked
    for: those rows have their lookback.
    """
    t = sorted_by(trades, ["trade_time", "trade_id"])
    n = len(t)
    lo, hi = rows if rows is not None else (0, n)
    ts_us = t["trade_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    f: dict[str, np.ndarray] = {c: np.full(hi - lo, np.nan) for c in FEATURE_NAMES + TARGET_NAMES}
    f["is_training_ready"] = np.zeros(hi - lo, dtype=bool)
    if hi > lo:
        quotes = Quotes(tickers)
        for a, first, last, b in segments(ts_us, lo, hi):
            part = _slice_features(t.iloc[a:b], ts_us[a:b], quotes, quote_join)
            for name, values in part.items():
                f[name][first - lo : last - lo] = values[first - a : last - a]
    idx = np.arange(lo, hi)
    f["lookback_ok"] = (np.ones(hi - lo, dtype=bool) if suffix else
                        (idx >= LOOKBACK_TRADES) & (ts_us[lo:hi] - ts_us[0] >= LOOKBACK_SECONDS * 1_000_000))
    return t.iloc[lo:hi].reset_index(drop=True), f


def segment_of(ts_us: np.ndarray) -> np.ndarray:
    return ts_us // (SEGMENT_SECONDS * 1_000_000)


def slice_start(ts_us: np.ndarray, r0: int) -> int:
    """The first trade the slice of a segment starting at row r0 holds: enough history for every window
    of the segment's rows (LOOKBACK_TRADES + 1 earlier trades, and the last trade at or before
    LOOKBACK_SECONDS before r0); negative when the input does not reach back that far."""
    ref = int(np.searchsorted(ts_us, ts_us[r0] - LOOKBACK_SECONDS * 1_000_000, side="right")) - 1
    return min(r0 - LOOKBACK_TRADES - 1, ref)


def segments(ts_us: np.ndarray, lo: int, hi: int):
    """(slice start, first row, end row, slice end) of each UTC time segment holding rows of [lo, hi): the
    slice runs from `slice_start` of the segment's first row (at least 0) to LOOKAHEAD_TRADES past its
    last row (the targets)."""
    seg = segment_of(ts_us)
    starts = np.flatnonzero(np.diff(seg)) + 1
    first_rows = np.concatenate([[0], starts])  # the first row of every segment of the input
    bounds = np.concatenate([first_rows, [len(ts_us)]])
    for k in range(int(np.searchsorted(first_rows, lo, side="right")) - 1, len(first_rows)):
        r0, r1 = int(bounds[k]), int(bounds[k + 1])
        if r0 >= hi:
            break
        yield max(slice_start(ts_us, r0), 0), max(r0, lo), min(r1, hi), min(r1 + LOOKAHEAD_TRADES, len(ts_us))


def _slice_features(t: pd.DataFrame, ts_us: np.ndarray, quotes: Quotes, quote_join: str) -> dict[str, np.ndarray]:
    """Every feature and target of the trades of one slice, computed from the slice alone."""
    n = len(t)
    p = t["price"].to_numpy(dtype=float)
    s = t["size"].to_numpy(dtype=float)
    buy = (t["side"] == "BUY").to_numpy()
    f: dict[str, np.ndarray] = {}
    ref = p[0]  # re-centre prices: window variance without cancellation on prices near 100,000
    pc = Windows(p - ref)
    sz = Windows(s)
    ma = {m: pc.mean(m) + ref for m in (10, 50, 100, 500)}
    sd = {m: pc.std(m) for m in (10, 50, 100)}
    lo = {m: pc.min(m) + ref for m in (10, 50, 100, 500)}
    hi = {m: pc.max(m) + ref for m in (10, 50, 100, 500)}
    for m in (10, 50, 100, 500):
        f[f"ma_{m}_trades"] = ma[m]
    for m in (10, 50, 100):
        f[f"min_{m}_trades"], f[f"max_{m}_trades"] = lo[m], hi[m]
    for m in (10, 50, 100):
        f[f"price_range_{m}"] = hi[m] - lo[m]
    for m in (10, 50, 100):
        f[f"volatility_{m}"] = sd[m]
    lagged = {m: lag(p, m) for m in (1, 5, 10, 50, 100)}
    for m in (1, 5, 10, 50):
        f[f"price_change_{m}"] = p - lagged[m]
    ret = {m: div(p - lagged[m], lagged[m]) * 100 for m in (1, 10, 50, 100)}
    for m in (1, 10, 50, 100):
        f[f"return_{m}"] = ret[m]
    for m in (10, 50, 100):
        f[f"price_vs_ma_{m}"] = div(p - ma[m], ma[m]) * 100
    vol = {m: sz.sum(m) for m in (10, 50, 100)}
    vol_ma = {m: sz.mean(m) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"volume_{m}"] = vol[m]
    for m in (10, 50, 100):
        f[f"volume_ma_{m}"] = vol_ma[m]
    for m in (10, 50):
        f[f"volume_ratio_{m}"] = div(s, vol_ma[m])
    buys = {m: window_count(buy, m) for m in (10, 50, 100)}
    sells = {m: window_count(~buy, m) for m in (10, 50, 100)}
    for m in (50, 100):
        f[f"buy_count_{m}"], f[f"sell_count_{m}"] = buys[m], sells[m]
    for m in (50, 100):
        f[f"buy_sell_ratio_{m}"] = div(buys[m], sells[m])
    buy_sz, sell_sz = Windows(np.where(buy, s, 0.0)), Windows(np.where(buy, 0.0, s))
    bvol = {m: buy_sz.sum(m) for m in (10, 50, 100)}
    svol = {m: sell_sz.sum(m) for m in (10, 50, 100)}
    for m in (50, 100):
        f[f"buy_volume_{m}"], f[f"sell_volume_{m}"] = bvol[m], svol[m]
    for m in (50, 100):
        # Over buy + sell volume (= volume) so rounding cannot push the ratio outside [0, 1].
        f[f"buy_volume_ratio_{m}"] = div(bvol[m], bvol[m] + svol[m])
    dt = pd.DatetimeIndex(t["trade_time"])
    hour = dt.hour.to_numpy()
    dow = (dt.dayofweek.to_numpy() + 1) % 7 + 1  # pandas Monday=0 -> catalog Sunday=1 .. Saturday=7
    f["hour_of_day"] = hour.astype(float)
    f["day_of_week"] = dow.astype(float)
    f["is_weekend"] = np.isin(dow, (1, 7)).astype(float)
    f["is_buy"] = buy.astype(float)

    q = quotes_seen(ts_us, quotes, quote_join)
    bid, ask, bq, aq = q["best_bid"], q["best_ask"], q["best_bid_quantity"], q["best_ask_quantity"]
    f["best_bid"], f["best_ask"] = bid, ask
    f["bid_ask_spread"] = ask - bid
    f["spread_pct"] = div(ask - bid, bid) * 100
    f["price_vs_bid"] = div(p - bid, bid) * 100
    f["price_vs_ask"] = div(p - ask, ask) * 100

    log_ret = {m: np.log(div(p, lagged[m])) for m in (1, 10, 50, 100)}
    for m in (1, 10, 50, 100):
        f[f"log_return_{m}"] = log_ret[m]
    lr2 = Windows(log_ret[1] ** 2)
    for m in (10, 50, 100):
        f[f"realized_vol_{m}"] = np.sqrt(lr2.sum(m))
    for m in (50, 100):
        f[f"zscore_{m}"] = div(p - ma[m], sd[m])
    d = p - lag(p, 1)
    gains, losses = Windows(np.where(d > 0, d, 0.0)), Windows(np.where(d < 0, -d, 0.0))
    d_known = ~np.isnan(d)
    for m in (14, 50):
        gain, loss = gains.sum(m) / m, losses.sum(m) / m
        # Whether any gain or loss exists is decided on exact counts, not on rounded sums.
        n_up, n_down = window_count(d_known & (d > 0), m), window_count(d_known & (d < 0), m)
        full = ~np.isnan(lag(p, m))
        rsi = 100 - 100 / (1 + div(gain, loss))
        rsi = np.where(n_down == 0, np.where(n_up > 0, 100.0, np.nan), rsi)
        f[f"rsi_{m}"] = np.where(full, rsi, np.nan)
    f["bollinger_pctb_50"] = div(p - (ma[50] - 2 * sd[50]), 4 * sd[50])
    f["bollinger_width_50"] = div(4 * sd[50], ma[50])
    for m in (100, 500):
        f[f"price_position_{m}"] = div(p - lo[m], hi[m] - lo[m])
    f["ma_cross_10_50"] = div(ma[10], ma[50]) - 1
    f["ma_cross_50_500"] = div(ma[50], ma[500]) - 1
    notional = Windows(p * s)
    notl = {m: notional.sum(m) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"notional_{m}"] = notl[m]
    vwap = {m: div(notl[m], vol[m]) for m in (10, 50, 100)}
    for m in (10, 50, 100):
        f[f"vwap_{m}"] = vwap[m]
    for m in (10, 50, 100):
        f[f"price_vs_vwap_{m}"] = div(p - vwap[m], vwap[m]) * 100
    for m in (10, 50, 100):
        f[f"order_flow_imbalance_{m}"] = div(bvol[m] - svol[m], bvol[m] + svol[m])
    signed = np.where(buy, s, -s)
    f["signed_volume"] = signed
    sv = Windows(signed)
    for m in (50, 100):
        f[f"signed_volume_sum_{m}"] = sv.sum(m)
    f["size_zscore_100"] = div(s - vol_ma[100], sz.std(100))
    def elapsed(m: int) -> np.ndarray:
        """Seconds since the trade m earlier, from integer microseconds (epoch seconds as floats
        would round to ~0.2 us and spoil the differences)."""
        out = np.full(n, np.nan)
        if m < n:
            out[m:] = (ts_us[m:] - ts_us[: n - m]) / 1e6
        return out

    f["seconds_since_prev_trade"] = elapsed(1)
    for m in (10, 50):
        f[f"mean_intertrade_seconds_{m}"] = elapsed(m) / m
    for m in (50, 100):
        f[f"trade_rate_{m}"] = div(np.full(n, float(m)), elapsed(m - 1))
    for label, window in (("1m", 60), ("5m", 300)):
        count, volume, vw, r = time_window(ts_us, p, s, window)
        f[f"trades_{label}"], f[f"volume_{label}"], f[f"vwap_{label}"], f[f"return_{label}"] = count, volume, vw, r
    f["amihud_50"] = Windows(div(np.abs(ret[1] / 100), p * s)).mean(50)
    f["best_bid_qty"], f["best_ask_qty"] = bq, aq
    mid = (bid + ask) / 2
    f["mid_price"] = mid
    f["microprice"] = div(bid * aq + ask * bq, bq + aq)
    f["book_imbalance"] = div(bq - aq, bq + aq)
    f["spread_bps"] = div(ask - bid, mid) * 10_000
    f["price_vs_mid_bps"] = div(p - mid, mid) * 10_000
    f["ticker_age_ms"] = (ts_us - q["event_time_us"]) / 1000.0
    f["volume_24h"] = q["volume_24_h"]
    f["price_change_24h"] = q["price_percent_chg_24_h"]
    f["range_position_24h"] = div(p - q["low_24_h"], q["high_24_h"] - q["low_24_h"])
    f["range_position_52w"] = div(p - q["low_52_w"], q["high_52_w"] - q["low_52_w"])
    h = hour + dt.minute.to_numpy() / 60
    f["hour_sin"], f["hour_cos"] = np.sin(2 * np.pi * h / 24), np.cos(2 * np.pi * h / 24)
    f["dow_sin"], f["dow_cos"] = np.sin(2 * np.pi * (dow - 1) / 7), np.cos(2 * np.pi * (dow - 1) / 7)

    f.update(targets(p))
    return f
