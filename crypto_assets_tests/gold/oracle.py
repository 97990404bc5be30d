"""Independent reference ("oracle") for the Gold feature catalog.

Written straight from /work/shared/specs/gold_features.md plus the settled clarifications, for
clarity rather than speed: one plain Python loop per trade, every window statistic computed
directly over its own slice with a two-pass mean / sum of squared deviations (math.fsum for
the sums). Nothing here imports the production package `crypto_assets`.

Conventions:
- Order within a product: trade_time, then trade_id as an integer.
- "Last N trades" = the current trade and the N-1 before it; a window feature is NaN when
  fewer than N trades exist (no partial windows).
- Undefined values (too little history, division by zero, no as-of ticker) are NaN, and
  every result that would be +-inf is NaN too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NAN = float("nan")
NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000

# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------

GROUP_A: list[str] = [
    "ma_10_trades", "ma_50_trades", "ma_100_trades", "ma_500_trades",
    "min_10_trades", "max_10_trades", "min_50_trades", "max_50_trades",
    "min_100_trades", "max_100_trades",
    "price_range_10", "price_range_50", "price_range_100",
    "volatility_10", "volatility_50", "volatility_100",
    "price_change_1", "price_change_5", "price_change_10", "price_change_50",
    "return_1", "return_10", "return_50", "return_100",
    "price_vs_ma_10", "price_vs_ma_50", "price_vs_ma_100",
    "volume_10", "volume_50", "volume_100",
    "volume_ma_10", "volume_ma_50", "volume_ma_100",
    "volume_ratio_10", "volume_ratio_50",
    "buy_count_50", "sell_count_50", "buy_count_100", "sell_count_100",
    "buy_sell_ratio_50", "buy_sell_ratio_100",
    "buy_volume_50", "sell_volume_50", "buy_volume_100", "sell_volume_100",
    "buy_volume_ratio_50", "buy_volume_ratio_100",
    "hour_of_day", "day_of_week", "is_weekend",
    "is_buy",
]

GROUP_A_QUOTES: list[str] = [
    "best_bid", "best_ask",
    "bid_ask_spread",
    "spread_pct",
    "price_vs_bid", "price_vs_ask",
]

GROUP_B: list[str] = [
    "log_return_1", "log_return_10", "log_return_50", "log_return_100",
    "realized_vol_10", "realized_vol_50", "realized_vol_100",
    "zscore_50", "zscore_100",
    "rsi_14", "rsi_50",
    "bollinger_pctb_50", "bollinger_width_50",
    "price_position_100", "price_position_500",
    "ma_cross_10_50", "ma_cross_50_500",
    "notional_10", "notional_50", "notional_100",
    "vwap_10", "vwap_50", "vwap_100",
    "price_vs_vwap_10", "price_vs_vwap_50", "price_vs_vwap_100",
    "order_flow_imbalance_10", "order_flow_imbalance_50", "order_flow_imbalance_100",
    "signed_volume",
    "signed_volume_sum_50", "signed_volume_sum_100",
    "size_zscore_100",
    "seconds_since_prev_trade",
    "mean_intertrade_seconds_10", "mean_intertrade_seconds_50",
    "trade_rate_50", "trade_rate_100",
    "trades_1m", "volume_1m", "vwap_1m", "return_1m",
    "trades_5m", "volume_5m", "vwap_5m", "return_5m",
    "amihud_50",
    "best_bid_qty", "best_ask_qty",
    "mid_price",
    "microprice",
    "book_imbalance",
    "spread_bps",
    "price_vs_mid_bps",
    "ticker_age_ms",
    "volume_24h", "price_change_24h",
    "range_position_24h", "range_position_52w",
    "hour_sin", "hour_cos", "dow_sin", "dow_cos",
]

FEATURES: list[str] = GROUP_A + GROUP_A_QUOTES + GROUP_B

TARGETS: list[str] = [
    "future_price_10", "future_price_50",
    "target_return_10", "target_return_50",
    "target_direction_10", "target_direction_50",
]

KEY_COLUMNS: list[str] = ["product_id", "trade_id", "trade_time", "price", "size", "side"]
FLAG_COLUMNS: list[str] = ["is_training_ready", "lookback_ok"]
OUTPUT_COLUMNS: list[str] = KEY_COLUMNS + FEATURES + TARGETS + FLAG_COLUMNS

TICKER_COLUMNS: list[str] = [
    "product_id", "event_time", "price", "best_bid", "best_ask", "best_bid_quantity",
    "best_ask_quantity", "volume_24_h", "price_percent_chg_24_h", "low_24_h", "high_24_h",
    "low_52_w", "high_52_w", "ticker_seq",
]

assert len(GROUP_A) == 51 and len(GROUP_A_QUOTES) == 6 and len(GROUP_B) == 63
assert len(set(FEATURES)) == 120

# --------------------------------------------------------------------------------------------
# Small, obviously-correct helpers
# --------------------------------------------------------------------------------------------


def _is_nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _finite_or_nan(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else NAN


def _div(a: float, b: float) -> float:
    """a / b, NaN when either side is NaN, when b == 0, or when the result is not finite."""
    if _is_nan(a) or _is_nan(b):
        return NAN
    a = float(a)
    b = float(b)
    if b == 0.0:
        return NAN
    return _finite_or_nan(a / b)


def _pct(value: float, reference: float) -> float:
    """(value - reference) / reference x100."""
    if _is_nan(value) or _is_nan(reference):
        return NAN
    return _finite_or_nan(_div(value - reference, reference) * 100.0)


def _sum(values) -> float:
    """Correctly rounded sum (math.fsum) of an array or an iterable of numbers."""
    if isinstance(values, np.ndarray):
        return math.fsum(values.astype("float64").tolist())
    return math.fsum(float(v) for v in values)


def _mean(values) -> float:
    values = np.asarray(values, dtype="float64")
    return _sum(values) / len(values)


def _sample_sd(values) -> float:
    """Two-pass sample standard deviation (ddof = 1)."""
    values = np.asarray(values, dtype="float64")
    n = len(values)
    if n < 2:
        return NAN
    m = _sum(values) / n              # pass 1: mean
    deviations = values - m
    ss = _sum(deviations * deviations)  # pass 2: sum of squared deviations
    return math.sqrt(ss / (n - 1))


class _ProductSeries:
    """The trades of one product in canonical order, with window accessors."""

    def __init__(self, frame: pd.DataFrame):
        self.price = frame["price"].to_numpy(dtype="float64")
        self.size = frame["size"].to_numpy(dtype="float64")
        self.is_buy = (frame["side"].to_numpy() == "BUY")
        self.t_ns = frame["trade_time"].to_numpy().astype("datetime64[ns]").astype("int64")
        self.n = len(frame)
        # ln(p[k] / p[k-1]) of every trade (NaN for the first one)
        self.log_return_1 = np.array([_log_return_1(self.price, k) for k in range(self.n)])

    def window(self, arr: np.ndarray, i: int, n: int):
        """Values of `arr` for the last n trades ending at i (inclusive), or None if fewer."""
        start = i - n + 1
        if start < 0:
            return None
        return arr[start:i + 1]

    def earlier(self, arr: np.ndarray, i: int, k: int):
        """arr[i - k] (the value k trades earlier) or NaN when it does not exist."""
        j = i - k
        if j < 0:
            return NAN
        return float(arr[j])


# --------------------------------------------------------------------------------------------
# Feature computation for one trade
# --------------------------------------------------------------------------------------------


def _log_return_1(price: np.ndarray, k: int) -> float:
    """ln(p[k] / p[k-1]) for trade k of the product, NaN when k has no predecessor."""
    if k < 1:
        return NAN
    ratio = _div(price[k], price[k - 1])
    if _is_nan(ratio) or ratio <= 0:
        return NAN
    return _finite_or_nan(math.log(ratio))


def _price_features(ps: _ProductSeries, i: int, f: dict) -> None:
    p = float(ps.price[i])

    def win(n):
        return ps.window(ps.price, i, n)

    ma = {}
    sd = {}
    mins = {}
    maxs = {}
    for n in (10, 50, 100, 500):
        w = win(n)
        ma[n] = NAN if w is None else _mean(w)
        sd[n] = NAN if w is None else _sample_sd(w)
        mins[n] = NAN if w is None else float(np.min(w))
        maxs[n] = NAN if w is None else float(np.max(w))

    for n in (10, 50, 100, 500):
        f[f"ma_{n}_trades"] = ma[n]
    for n in (10, 50, 100):
        f[f"min_{n}_trades"] = mins[n]
        f[f"max_{n}_trades"] = maxs[n]
        f[f"price_range_{n}"] = maxs[n] - mins[n] if not _is_nan(mins[n]) else NAN
        f[f"volatility_{n}"] = sd[n]
    for n in (1, 5, 10, 50):
        ref = ps.earlier(ps.price, i, n)
        f[f"price_change_{n}"] = NAN if _is_nan(ref) else p - ref
    for n in (1, 10, 50, 100):
        f[f"return_{n}"] = _pct(p, ps.earlier(ps.price, i, n))
    for n in (10, 50, 100):
        f[f"price_vs_ma_{n}"] = _pct(p, ma[n])

    # Group B, price based
    for n in (1, 10, 50, 100):
        ref = ps.earlier(ps.price, i, n)
        ratio = _div(p, ref)
        f[f"log_return_{n}"] = (
            NAN if _is_nan(ratio) or ratio <= 0 else _finite_or_nan(math.log(ratio))
        )
    for n in (10, 50, 100):
        if i - n + 1 < 1:  # needs log_return_1 for each of the last n trades: n + 1 trades
            f[f"realized_vol_{n}"] = NAN
        else:
            lrs = ps.window(ps.log_return_1, i, n)
            if np.isnan(lrs).any():
                f[f"realized_vol_{n}"] = NAN
            else:
                f[f"realized_vol_{n}"] = math.sqrt(_sum(lrs * lrs))
    for n in (50, 100):
        f[f"zscore_{n}"] = _div(p - ma[n], sd[n]) if not _is_nan(ma[n]) else NAN
    for n in (14, 50):
        f[f"rsi_{n}"] = _rsi(ps, i, n)

    if _is_nan(ma[50]):
        f["bollinger_pctb_50"] = NAN
        f["bollinger_width_50"] = NAN
    else:
        lower = ma[50] - 2.0 * sd[50]
        f["bollinger_pctb_50"] = _div(p - lower, 4.0 * sd[50])
        f["bollinger_width_50"] = _div(4.0 * sd[50], ma[50])
    for n in (100, 500):
        if _is_nan(mins[n]):
            f[f"price_position_{n}"] = NAN
        else:
            f[f"price_position_{n}"] = _div(p - mins[n], maxs[n] - mins[n])

    def cross(a, b):
        r = _div(a, b)
        return NAN if _is_nan(r) else r - 1.0

    f["ma_cross_10_50"] = cross(ma[10], ma[50])
    f["ma_cross_50_500"] = cross(ma[50], ma[500])


def _rsi(ps: _ProductSeries, i: int, n: int) -> float:
    """Simple-mean RSI over the last n price changes (needs n + 1 trades)."""
    if i - n < 0:
        return NAN
    changes = [float(ps.price[k]) - float(ps.price[k - 1]) for k in range(i - n + 1, i + 1)]
    gain = math.fsum(max(d, 0.0) for d in changes) / n
    loss = math.fsum(max(-d, 0.0) for d in changes) / n
    if loss == 0.0:
        return 100.0 if gain > 0.0 else NAN
    return _finite_or_nan(100.0 - 100.0 / (1.0 + gain / loss))


def _volume_features(ps: _ProductSeries, i: int, f: dict) -> None:
    s = float(ps.size[i])
    p = float(ps.price[i])
    buy = bool(ps.is_buy[i])

    volume = {}
    volume_ma = {}
    for n in (10, 50, 100):
        w = ps.window(ps.size, i, n)
        volume[n] = NAN if w is None else _sum(w)
        volume_ma[n] = NAN if w is None else _mean(w)
        f[f"volume_{n}"] = volume[n]
        f[f"volume_ma_{n}"] = volume_ma[n]
    for n in (10, 50):
        f[f"volume_ratio_{n}"] = _div(s, volume_ma[n])

    buy_vol = {}
    sell_vol = {}
    for n in (10, 50, 100):
        sizes = ps.window(ps.size, i, n)
        buys = ps.window(ps.is_buy, i, n)
        if sizes is None:
            buy_count = sell_count = NAN
            buy_vol[n] = sell_vol[n] = NAN
        else:
            buy_count = float(np.count_nonzero(buys))
            sell_count = float(np.count_nonzero(~buys))
            buy_vol[n] = _sum(sizes[buys])
            sell_vol[n] = _sum(sizes[~buys])
        if n in (50, 100):
            f[f"buy_count_{n}"] = buy_count
            f[f"sell_count_{n}"] = sell_count
            f[f"buy_sell_ratio_{n}"] = _div(buy_count, sell_count)
            f[f"buy_volume_{n}"] = buy_vol[n]
            f[f"sell_volume_{n}"] = sell_vol[n]
            f[f"buy_volume_ratio_{n}"] = _div(buy_vol[n], volume[n])
        f[f"order_flow_imbalance_{n}"] = (
            NAN if sizes is None else _div(buy_vol[n] - sell_vol[n], volume[n])
        )

    f["is_buy"] = 1.0 if buy else 0.0
    f["signed_volume"] = s if buy else -s
    for n in (50, 100):
        sizes = ps.window(ps.size, i, n)
        buys = ps.window(ps.is_buy, i, n)
        f[f"signed_volume_sum_{n}"] = (
            NAN if sizes is None else _sum(np.where(buys, sizes, -sizes))
        )

    for n in (10, 50, 100):
        prices = ps.window(ps.price, i, n)
        sizes = ps.window(ps.size, i, n)
        if prices is None:
            notional = NAN
        else:
            notional = _sum(prices * sizes)
        vwap = _div(notional, volume[n])
        f[f"notional_{n}"] = notional
        f[f"vwap_{n}"] = vwap
        f[f"price_vs_vwap_{n}"] = _pct(p, vwap)

    sizes_100 = ps.window(ps.size, i, 100)
    if sizes_100 is None:
        f["size_zscore_100"] = NAN
    else:
        f["size_zscore_100"] = _div(s - volume_ma[100], _sample_sd(sizes_100))

    # amihud_50: mean over the last 50 trades of |return_1/100| / (p*s) of each trade;
    # every trade of the window needs a predecessor, so 51 trades are needed.
    if i - 50 < 0:
        f["amihud_50"] = NAN
    else:
        prices = ps.price[i - 49:i + 1]      # p of each trade of the window
        previous = ps.price[i - 50:i]        # p[-1] of each trade of the window
        sizes = ps.size[i - 49:i + 1]
        dollar_volume = prices * sizes
        if np.any(previous == 0) or np.any(dollar_volume == 0):
            f["amihud_50"] = NAN  # a term divides by zero
        else:
            return_1 = (prices - previous) / previous  # = return_1 / 100
            terms = np.abs(return_1) / dollar_volume
            f["amihud_50"] = _finite_or_nan(_sum(terms) / 50.0)


def _time_features(ps: _ProductSeries, i: int, f: dict) -> None:
    t = int(ps.t_ns[i])
    p = float(ps.price[i])

    f["seconds_since_prev_trade"] = (
        NAN if i < 1 else (t - int(ps.t_ns[i - 1])) / NS_PER_SECOND
    )
    for n in (10, 50):
        f[f"mean_intertrade_seconds_{n}"] = (
            NAN if i - n < 0 else (t - int(ps.t_ns[i - n])) / NS_PER_SECOND / n
        )
    for n in (50, 100):
        if i - n + 1 < 0:
            f[f"trade_rate_{n}"] = NAN
        else:
            span_seconds = (t - int(ps.t_ns[i - n + 1])) / NS_PER_SECOND
            f[f"trade_rate_{n}"] = _div(float(n), span_seconds)

    for label, seconds in (("1m", 60), ("5m", 300)):
        cutoff = t - seconds * NS_PER_SECOND
        # in-window trades: j <= i in order with t_j > t - window (i itself always included)
        upto_i = slice(0, i + 1)
        in_window = ps.t_ns[upto_i] > cutoff
        sizes = ps.size[upto_i][in_window]
        prices = ps.price[upto_i][in_window]
        volume = _sum(sizes)
        notional = _sum(prices * sizes)
        f[f"trades_{label}"] = float(in_window.sum())
        f[f"volume_{label}"] = volume
        f[f"vwap_{label}"] = _div(notional, volume)
        # reference: the last trade (j < i, in order) at or before t - window
        refs = np.flatnonzero(ps.t_ns[:i] <= cutoff)
        f[f"return_{label}"] = NAN if len(refs) == 0 else _pct(p, float(ps.price[refs[-1]]))

    ts = pd.Timestamp(t)  # naive UTC
    hour = ts.hour
    day_of_week = (ts.dayofweek + 1) % 7 + 1  # pandas Monday=0..Sunday=6 -> Sunday=1..Saturday=7
    f["hour_of_day"] = float(hour)
    f["day_of_week"] = float(day_of_week)
    f["is_weekend"] = 1.0 if day_of_week in (1, 7) else 0.0
    h = hour + ts.minute / 60.0
    f["hour_sin"] = math.sin(2.0 * math.pi * h / 24.0)
    f["hour_cos"] = math.cos(2.0 * math.pi * h / 24.0)
    f["dow_sin"] = math.sin(2.0 * math.pi * (day_of_week - 1) / 7.0)
    f["dow_cos"] = math.cos(2.0 * math.pi * (day_of_week - 1) / 7.0)


_QUOTE_FEATURES = [
    "best_bid", "best_ask", "bid_ask_spread", "spread_pct", "price_vs_bid", "price_vs_ask",
    "best_bid_qty", "best_ask_qty", "mid_price", "microprice", "book_imbalance", "spread_bps",
    "price_vs_mid_bps", "ticker_age_ms", "volume_24h", "price_change_24h",
    "range_position_24h", "range_position_52w",
]


class _ProductTickers:
    """One product's tickers as plain arrays/records for the as-of lookup."""

    def __init__(self, frame: pd.DataFrame):
        frame = frame.reset_index(drop=True)
        self.t_ns = frame["_t_ns"].to_numpy(dtype="int64")
        self.seq = frame["ticker_seq"].to_numpy(dtype="int64")
        self.records = frame.to_dict("records")

    def asof(self, t_ns: int):
        """Latest ticker with event_time <= t (ties on event_time: largest ticker_seq), or None."""
        eligible = np.flatnonzero(self.t_ns <= t_ns)
        if len(eligible) == 0:
            return None
        latest_time = self.t_ns[eligible].max()
        at_latest = eligible[self.t_ns[eligible] == latest_time]
        best = at_latest[np.argmax(self.seq[at_latest])]
        return self.records[best]


def _quote_features(p: float, t_ns: int, ticker, f: dict) -> None:
    if ticker is None:
        for name in _QUOTE_FEATURES:
            f[name] = NAN
        return
    bid = float(ticker["best_bid"])
    ask = float(ticker["best_ask"])
    bid_qty = float(ticker["best_bid_quantity"])
    ask_qty = float(ticker["best_ask_quantity"])
    f["best_bid"] = bid
    f["best_ask"] = ask
    f["bid_ask_spread"] = ask - bid
    f["spread_pct"] = _pct(ask, bid)
    f["price_vs_bid"] = _pct(p, bid)
    f["price_vs_ask"] = _pct(p, ask)
    f["best_bid_qty"] = bid_qty
    f["best_ask_qty"] = ask_qty
    mid = (bid + ask) / 2.0
    f["mid_price"] = mid
    f["microprice"] = _div(bid * ask_qty + ask * bid_qty, bid_qty + ask_qty)
    f["book_imbalance"] = _div(bid_qty - ask_qty, bid_qty + ask_qty)
    f["spread_bps"] = _finite_or_nan(_div(ask - bid, mid) * 10_000.0)
    f["price_vs_mid_bps"] = _finite_or_nan(_div(p - mid, mid) * 10_000.0)
    f["ticker_age_ms"] = (t_ns - int(ticker["_t_ns"])) / NS_PER_MS
    f["volume_24h"] = float(ticker["volume_24_h"])
    f["price_change_24h"] = float(ticker["price_percent_chg_24_h"])
    low24, high24 = float(ticker["low_24_h"]), float(ticker["high_24_h"])
    low52, high52 = float(ticker["low_52_w"]), float(ticker["high_52_w"])
    f["range_position_24h"] = _div(p - low24, high24 - low24)
    f["range_position_52w"] = _div(p - low52, high52 - low52)


def _targets(ps: _ProductSeries, i: int, f: dict) -> None:
    p = float(ps.price[i])
    for n in (10, 50):
        j = i + n
        future = float(ps.price[j]) if j < ps.n else NAN
        ret = _pct(future, p)
        f[f"future_price_{n}"] = future
        f[f"target_return_{n}"] = ret
        if _is_nan(ret) or ret == 0.0:
            f[f"target_direction_{n}"] = NAN
        else:
            f[f"target_direction_{n}"] = 1.0 if ret > 0 else 0.0
    f["is_training_ready"] = (not _is_nan(f["future_price_10"])) and (
        not _is_nan(f["future_price_50"])
    )
    first_t = int(ps.t_ns[0])
    f["lookback_ok"] = (i >= 499) and (int(ps.t_ns[i]) - first_t >= 300 * NS_PER_SECOND)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _to_naive_ns(series: pd.Series) -> pd.Series:
    s = pd.to_datetime(series)
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[ns]")


def oracle_features(trades: pd.DataFrame, tickers: pd.DataFrame) -> pd.DataFrame:
    """One row per input trade, sorted by product_id, trade_time, trade_id (see module doc)."""
    trades = trades[KEY_COLUMNS].copy()
    trades["product_id"] = trades["product_id"].astype(str)
    trades["trade_id"] = trades["trade_id"].astype("int64")
    trades["trade_time"] = _to_naive_ns(trades["trade_time"])
    trades["price"] = trades["price"].astype("float64")
    trades["size"] = trades["size"].astype("float64")
    trades["side"] = trades["side"].astype(str)
    trades = trades.sort_values(
        ["product_id", "trade_time", "trade_id"], kind="mergesort"
    ).reset_index(drop=True)

    tickers = tickers.copy()
    if len(tickers) == 0:
        tickers = pd.DataFrame({c: pd.Series(dtype="float64") for c in TICKER_COLUMNS})
        tickers["product_id"] = tickers["product_id"].astype(object)
        tickers["event_time"] = pd.Series(dtype="datetime64[ns]")
        tickers["ticker_seq"] = pd.Series(dtype="int64")
    tickers["product_id"] = tickers["product_id"].astype(str)
    tickers["_t_ns"] = _to_naive_ns(tickers["event_time"]).to_numpy().astype("int64")

    rows = []
    for product_id, frame in trades.groupby("product_id", sort=True):
        frame = frame.reset_index(drop=True)
        ps = _ProductSeries(frame)
        product_tickers = _ProductTickers(tickers[tickers["product_id"] == product_id])
        for i in range(ps.n):
            f: dict = {}
            _price_features(ps, i, f)
            _volume_features(ps, i, f)
            _time_features(ps, i, f)
            t_ns = int(ps.t_ns[i])
            _quote_features(float(ps.price[i]), t_ns, product_tickers.asof(t_ns), f)
            _targets(ps, i, f)
            row = {c: frame.at[i, c] for c in KEY_COLUMNS}
            row.update(f)
            rows.append(row)

    out = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    if len(out) == 0:
        out = pd.DataFrame({c: pd.Series(dtype="float64") for c in OUTPUT_COLUMNS})
    for c in FEATURES + TARGETS:
        out[c] = out[c].astype("float64")
    for c in FLAG_COLUMNS:
        out[c] = out[c].astype(bool)
    out["product_id"] = out["product_id"].astype(object)
    out["trade_id"] = out["trade_id"].astype("int64")
    out["trade_time"] = out["trade_time"].astype("datetime64[ns]")
    out["side"] = out["side"].astype(object)
    return out
