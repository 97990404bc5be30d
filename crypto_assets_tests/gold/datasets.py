"""Seeded synthetic trade / ticker data sets for the Gold feature tests.

Every generator returns `(trades_df, tickers_df)` in the oracle's input format:

- trades: product_id, trade_id (int64), trade_time (datetime64[ns], naive UTC, microsecond
  precision), price, size (float64), side ("BUY" / "SELL"); rows shuffled (unsorted).
- tickers: product_id, event_time, price, best_bid, best_ask, best_bid_quantity,
  best_ask_quantity, volume_24_h, price_percent_chg_24_h, low_24_h, high_24_h, low_52_w,
  high_52_w, ticker_seq (int64, larger = later among equal event_time); rows shuffled.

Deterministic: everything comes from `numpy.random.default_rng(seed)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

US_PER_SECOND = 1_000_000

TRADE_COLUMNS = ["product_id", "trade_id", "trade_time", "price", "size", "side"]
TICKER_COLUMNS = [
    "product_id", "event_time", "price", "best_bid", "best_ask", "best_bid_quantity",
    "best_ask_quantity", "volume_24_h", "price_percent_chg_24_h", "low_24_h", "high_24_h",
    "low_52_w", "high_52_w", "ticker_seq",
]


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _us(ts: str) -> int:
    """Microseconds since the epoch of a naive UTC timestamp string."""
    return int(pd.Timestamp(ts).value // 1000)


def _to_datetime(us: np.ndarray) -> np.ndarray:
    return (np.asarray(us, dtype="int64") * 1000).astype("datetime64[ns]")


def _sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Positive sizes from 1e-8 to 5, mostly small, a few dust fills and a few big ones."""
    log10 = rng.normal(-2.0, 1.0, n)
    dust = rng.random(n) < 0.03
    log10[dust] = rng.uniform(-8.0, -6.0, dust.sum())
    big = rng.random(n) < 0.02
    log10[big] = rng.uniform(0.0, np.log10(5.0), big.sum())
    sizes = np.round(10.0 ** log10, 8)
    return np.clip(sizes, 1e-8, 5.0)


def _sides(rng: np.random.Generator, n: int, stay: float = 0.75) -> np.ndarray:
    """BUY / SELL with persistence (a two-state Markov chain)."""
    buy = np.empty(n, dtype=bool)
    buy[0] = rng.random() < 0.5
    flips = rng.random(n) >= stay
    for k in range(1, n):
        buy[k] = (not buy[k - 1]) if flips[k] else buy[k - 1]
    return np.where(buy, "BUY", "SELL")


def _prices(rng: np.random.Generator, n: int, start: float, rel_step: float,
            tick: float = 0.01) -> np.ndarray:
    """A positive random walk rounded to the tick, with some repeated prices."""
    steps = rng.normal(0.0, rel_step, n)
    steps[rng.random(n) < 0.25] = 0.0  # unchanged prices happen a lot on real books
    log_path = np.log(start) + np.cumsum(steps)
    prices = np.round(np.exp(log_path) / tick) * tick
    return np.maximum(prices, tick)


def _trades_frame(product_id: str, ids, times_us, prices, sizes, sides) -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": product_id,
        "trade_id": np.asarray(ids, dtype="int64"),
        "trade_time": _to_datetime(times_us),
        "price": np.asarray(prices, dtype="float64"),
        "size": np.asarray(sizes, dtype="float64"),
        "side": np.asarray(sides, dtype=object),
    })


def _simple_product(rng, product_id: str, times_us, first_id: int, start_price: float,
                    rel_step: float, tick: float = 0.01) -> pd.DataFrame:
    times_us = np.sort(np.asarray(times_us, dtype="int64"))
    n = len(times_us)
    return _trades_frame(
        product_id,
        np.arange(first_id, first_id + n),
        times_us,
        _prices(rng, n, start_price, rel_step, tick),
        _sizes(rng, n),
        _sides(rng, n),
    )


def _poisson_times(rng, start_us: int, n: int, mean_gap_s: float) -> np.ndarray:
    gaps = rng.exponential(mean_gap_s * US_PER_SECOND, n).astype("int64")
    gaps[0] = 0
    return start_us + np.cumsum(gaps)


def _burst_times(rng, start_us: int, n: int, mean_gap_s: float, low: int = 2,
                 high: int = 10, burst_share: float = 0.6) -> np.ndarray:
    """Times where many trades share the exact same timestamp (bursts of low..high fills)."""
    times = []
    t = start_us
    while len(times) < n:
        t += int(rng.exponential(mean_gap_s * US_PER_SECOND)) + 1
        k = int(rng.integers(low, high + 1)) if rng.random() < burst_share else 1
        times.extend([t] * k)
    return np.asarray(times[:n], dtype="int64")


def _tickers_for(rng, trades: pd.DataFrame, start_us: int, end_us: int, mean_gap_s: float,
                 n_at_trade_times: int = 15, n_equal_pairs: int = 10) -> pd.DataFrame:
    """Tickers of one product at irregular times within [start_us, end_us].

    Includes some tickers at exactly a trade's time and some pairs of tickers with equal
    event_time (different quotes; ticker_seq, assigned later, decides which is later).
    """
    product_id = trades["product_id"].iloc[0]
    ordered = trades.sort_values(["trade_time", "trade_id"])
    trade_us = ordered["trade_time"].to_numpy().astype("datetime64[ns]").astype("int64") // 1000
    trade_px = ordered["price"].to_numpy()

    times = []
    t = start_us
    while True:
        t += int(rng.exponential(mean_gap_s * US_PER_SECOND)) + 1
        if t > end_us:
            break
        times.append(t)
    in_range = trade_us[(trade_us >= start_us) & (trade_us <= end_us)]
    if len(in_range) and n_at_trade_times:
        times.extend(rng.choice(in_range, size=min(n_at_trade_times, len(in_range)),
                                replace=False).tolist())
    times = np.sort(np.asarray(times, dtype="int64"))
    if len(times) and n_equal_pairs:
        dup = rng.choice(times, size=min(n_equal_pairs, len(times)), replace=False)
        times = np.sort(np.concatenate([times, dup]))
    n = len(times)
    if n == 0:
        return pd.DataFrame({c: [] for c in TICKER_COLUMNS})

    # reference price: last trade at or before the ticker (first trade's price before that)
    idx = np.searchsorted(trade_us, times, side="right") - 1
    ref = trade_px[np.maximum(idx, 0)] * (1.0 + rng.normal(0.0, 2e-5, n))
    tick = 0.01
    half_spread_ticks = np.maximum(1, np.round(ref * rng.uniform(0.0, 1e-4, n) / tick))
    best_bid = np.round(ref / tick) * tick - half_spread_ticks * tick
    best_bid = np.maximum(best_bid, tick)
    best_ask = best_bid + 2 * half_spread_ticks * tick
    low_24 = ref * (1.0 - rng.uniform(0.001, 0.05, n))
    high_24 = ref * (1.0 + rng.uniform(0.001, 0.05, n))
    return pd.DataFrame({
        "product_id": product_id,
        "event_time": _to_datetime(times),
        "price": np.round(ref / tick) * tick,
        "best_bid": best_bid,
        "best_ask": best_ask,
        "best_bid_quantity": np.round(rng.lognormal(-1.0, 1.5, n), 8) + 1e-8,
        "best_ask_quantity": np.round(rng.lognormal(-1.0, 1.5, n), 8) + 1e-8,
        "volume_24_h": rng.lognormal(8.0, 1.0, n),
        "price_percent_chg_24_h": rng.uniform(-5.0, 5.0, n),
        "low_24_h": low_24,
        "high_24_h": high_24,
        "low_52_w": ref * (1.0 - rng.uniform(0.2, 0.6, n)),
        "high_52_w": ref * (1.0 + rng.uniform(0.2, 0.9, n)),
    })


def _finish(rng, trades: list[pd.DataFrame], tickers: list[pd.DataFrame]):
    """Concatenate, assign ticker_seq in event order, shuffle rows, fix dtypes."""
    trades_df = pd.concat(trades, ignore_index=True)
    trades_df = trades_df.iloc[rng.permutation(len(trades_df))].reset_index(drop=True)
    trades_df["trade_id"] = trades_df["trade_id"].astype("int64")
    trades_df["trade_time"] = trades_df["trade_time"].astype("datetime64[ns]")

    tickers = [t for t in tickers if len(t)]
    if tickers:
        tickers_df = pd.concat(tickers, ignore_index=True)
        # ticker_seq: arrival order; the row order within equal event_time is the arrival order
        tickers_df = tickers_df.sort_values(["event_time"], kind="mergesort").reset_index(drop=True)
        tickers_df["ticker_seq"] = np.arange(len(tickers_df), dtype="int64")
        tickers_df = tickers_df.iloc[rng.permutation(len(tickers_df))].reset_index(drop=True)
    else:
        tickers_df = empty_tickers()
    tickers_df["event_time"] = tickers_df["event_time"].astype("datetime64[ns]")
    tickers_df["ticker_seq"] = tickers_df["ticker_seq"].astype("int64")
    return trades_df[TRADE_COLUMNS], tickers_df[TICKER_COLUMNS]


def empty_tickers() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in TICKER_COLUMNS})
    frame["product_id"] = pd.Series(dtype=object)
    frame["event_time"] = pd.Series(dtype="datetime64[ns]")
    frame["ticker_seq"] = pd.Series(dtype="int64")
    return frame


def _span_us(trades: pd.DataFrame) -> tuple[int, int]:
    us = trades["trade_time"].to_numpy().astype("datetime64[ns]").astype("int64") // 1000
    return int(us.min()), int(us.max())


# --------------------------------------------------------------------------------------------
# The data sets
# --------------------------------------------------------------------------------------------


def prices_near_100k(n: int = 1500, seed: int = 1):
    """BTC-like prices around 100,000 with tiny relative moves (precision stress), 1 product."""
    rng = np.random.default_rng(seed)
    times = _poisson_times(rng, _us("2024-03-12 14:00:00"), n, 0.5)
    trades = _simple_product(rng, "BTC-USD", times, 5_000_000, 100_000.0, 2e-7)
    start, end = _span_us(trades)
    tickers = _tickers_for(rng, trades, start - 2 * US_PER_SECOND, end, 1.0)
    return _finish(rng, [trades], [tickers])


def equal_timestamps(n: int = 1200, seed: int = 2):
    """Bursts of 2-10 fills sharing one exact trade_time; ids increasing with order."""
    rng = np.random.default_rng(seed)
    times = _burst_times(rng, _us("2024-03-13 09:00:00"), n, 1.5, 2, 10, burst_share=0.7)
    trades = _simple_product(rng, "ETH-USD", times, 700_000, 3_500.0, 1e-4)
    start, end = _span_us(trades)
    tickers = _tickers_for(rng, trades, start - US_PER_SECOND, end, 2.0, n_at_trade_times=25)
    return _finish(rng, [trades], [tickers])


def trade_ids_cross_power_of_ten(seed: int = 3):
    """Product A: ids 999_400..1_000_900; product B: ids crossing 99_999 -> 100_000.

    Equal-timestamp bursts everywhere, and in particular 999_998, 999_999, 1_000_000 (and
    99_999, 100_000) share a timestamp, so string ordering of ids would give a wrong order.
    """
    rng = np.random.default_rng(seed)
    start = _us("2024-03-14 16:00:00")

    def product(product_id, first_id, last_id, forced_ids, price, rel):
        ids = np.arange(first_id, last_id + 1, dtype="int64")
        times = _burst_times(rng, start, len(ids), 0.6, 2, 6, burst_share=0.5)
        # force the ids across the power of ten onto one timestamp
        pos = np.searchsorted(ids, forced_ids)
        times[pos] = times[pos[0]]
        times = np.maximum.accumulate(times)  # keep time non-decreasing with id
        return _trades_frame(product_id, ids, times, _prices(rng, len(ids), price, rel),
                             _sizes(rng, len(ids)), _sides(rng, len(ids)))

    a = product("BTC-USD", 999_400, 1_000_900, [999_998, 999_999, 1_000_000, 1_000_001],
                65_000.0, 3e-5)
    b = product("SOL-USD", 99_500, 100_700, [99_998, 99_999, 100_000], 150.0, 2e-4)
    tk = []
    for tr in (a, b):
        s, e = _span_us(tr)
        tk.append(_tickers_for(rng, tr, s, e, 1.5))
    return _finish(rng, [a, b], tk)


def sparse_and_bursty(seed: int = 4):
    """~1500 trades: dense bursts (many trades within a second) separated by minute-long gaps."""
    rng = np.random.default_rng(seed)
    t = _us("2024-03-15 03:00:00")
    times: list[int] = []
    while len(times) < 1500:
        gap_s = rng.uniform(60.0, 600.0) if rng.random() < 0.5 else rng.exponential(5.0)
        t += int(gap_s * US_PER_SECOND) + 1
        burst = int(rng.integers(5, 80))
        offsets = np.sort(rng.integers(0, 900_000, burst))  # within a second, some equal
        if rng.random() < 0.3:
            offsets[: burst // 3] = offsets[0]
        times.extend((t + offsets).tolist())
        t = times[-1]
    times_arr = np.asarray(times[:1500], dtype="int64")
    trades = _simple_product(rng, "BTC-USD", times_arr, 42_000_000, 70_000.0, 5e-5)
    start, end = _span_us(trades)
    tickers = _tickers_for(rng, trades, start - 30 * US_PER_SECOND, end, 20.0)
    return _finish(rng, [trades], [tickers])


def small_day(seed: int = 5):
    """300 trades only: no row has a full 500-trade lookback."""
    rng = np.random.default_rng(seed)
    times = _poisson_times(rng, _us("2024-03-16 11:00:00"), 300, 3.0)
    trades = _simple_product(rng, "ADA-USD", times, 10_000, 0.45, 5e-4, tick=0.0001)
    start, end = _span_us(trades)
    tickers = _tickers_for(rng, trades, start - 5 * US_PER_SECOND, end, 5.0)
    return _finish(rng, [trades], [tickers])


def two_products_with_tickers(seed: int = 6):
    """2 products x ~1200 trades, irregular tickers (some exactly at trade times, some
    equal-time pairs with different ticker_seq) and no tickers in the first 3 minutes."""
    rng = np.random.default_rng(seed)
    start = _us("2024-03-17 20:00:00")
    btc = _simple_product(rng, "BTC-USD", _poisson_times(rng, start, 1200, 0.8),
                          8_000_000, 68_000.0, 3e-5)
    eth = _simple_product(rng, "ETH-USD",
                          _burst_times(rng, start + 1234, 1200, 1.0, 2, 4, burst_share=0.3),
                          600_000, 3_600.0, 8e-5)
    tk = []
    for tr in (btc, eth):
        s, e = _span_us(tr)
        tk.append(_tickers_for(rng, tr, s + 180 * US_PER_SECOND, e, 2.5,
                               n_at_trade_times=40, n_equal_pairs=30))
    return _finish(rng, [btc, eth], tk)


def cross_midnight(seed: int = 7):
    """~1500 trades from 23:30 Sunday 2024-03-10 to 00:30 Monday 2024-03-11 (day D), plus
    ~100 trades at the start of D+1 (2024-03-12), which only feed the targets."""
    rng = np.random.default_rng(seed)
    start = _us("2024-03-10 23:30:00")
    end = _us("2024-03-11 00:30:00")
    main = np.sort(rng.integers(start, end, 1500))
    next_day = np.sort(rng.integers(_us("2024-03-12 00:00:00"), _us("2024-03-12 00:02:00"), 100))
    times = np.concatenate([main, next_day])
    trades = _simple_product(rng, "BTC-USD", times, 3_000_000, 69_000.0, 4e-5)
    tickers = [
        _tickers_for(rng, trades, start - 60 * US_PER_SECOND, int(main.max()), 3.0),
        _tickers_for(rng, trades, int(next_day.min()) - 10 * US_PER_SECOND,
                     int(next_day.max()), 3.0, n_at_trade_times=5, n_equal_pairs=3),
    ]
    return _finish(rng, [trades], tickers)


def three_days(seed: int = 9):
    """Trades over several 15-minute segments of three days: ~3,000 from 23:20 on 2024-03-10 (D-1) to
    midnight, ~6,000 from midnight to 02:00 on D (bursts of equal times), ~800 from 23:50 on D to 00:06 on
    D+1, and tickers over all of it (some at trade times, some equal pairs)."""
    rng = np.random.default_rng(seed)
    first = _burst_times(rng, _us("2024-03-10 23:20:00"), 9_000, 1.0, 2, 4, burst_share=0.3)
    first = first[first < _us("2024-03-11 02:00:00")]
    late = np.sort(rng.integers(_us("2024-03-11 23:50:00"), _us("2024-03-12 00:06:00"), 800))
    trades = _simple_product(rng, "BTC-USD", np.concatenate([first, late]), 5_000_000, 70_000.0, 4e-5)
    tickers = [_tickers_for(rng, trades, _us("2024-03-10 23:19:00"), int(first.max()), 2.0, 40, 20),
               _tickers_for(rng, trades, _us("2024-03-11 23:49:00"), int(late.max()), 2.0, 10, 5)]
    return _finish(rng, [trades], tickers)


def increments(frame: pd.DataFrame, time_col: str, k: int, seed: int) -> list[pd.DataFrame]:
    """`frame` split into k arrivals: mostly in time order, one row in 20 arriving late (in a later
    increment than rows after it), so later increments hold rows earlier than ones already written."""
    rng = np.random.default_rng(seed)
    frame = frame.reset_index(drop=True)
    order = frame.sort_values(time_col, kind="mergesort").index.to_numpy()
    arrival = np.empty(len(frame), dtype=int)
    arrival[order] = np.arange(len(frame)) * k // max(len(frame), 1)
    late = rng.random(len(frame)) < 0.05
    arrival[late] = np.minimum(arrival[late] + rng.integers(1, 4, late.sum()), k - 1)
    return [frame[arrival == i] for i in range(k)]


def long_realistic_day(n: int = 240_000, seed: int = 8):
    """A whole UTC day of BTC at 95,000 (precision stress for online window kernels, issue #14).

    Ticks of 0.01 and tiny variance: trades bounce between bid and ask (one tick apart) around a
    level that walks a few ticks at a time, with long flat stretches (level still: a window's sd
    is 0 when every trade is on one side, else about half a tick) and a drift that carries the
    price thousands of ticks away from the first price. Too long for the oracle's loop: tests
    compare it with a vectorised two-pass reference (and the oracle on short slices).
    """
    rng = np.random.default_rng(seed)
    start = _us("2024-03-18 00:00:00")
    gaps = rng.exponential(86_000 / (0.8 * n) * US_PER_SECOND, n).astype("int64")
    gaps[rng.random(n) < 0.2] = 0  # fills of one order share a timestamp
    times = start + np.cumsum(gaps) - gaps[0]
    # The level in ticks: stretches of 20..5,000 trades, flat or walking +-1..3 ticks; some
    # open with a sweep of the book (a jump of 10 to 80 dollars), as news moves BTC.
    steps = np.zeros(n, dtype=np.int64)
    at = 0
    while at < n:
        length = int(rng.integers(20, 5_000))
        if rng.random() < 0.5:  # walking: a step on ~40% of trades, upward more often (drift)
            moves = rng.integers(1, 4, length) * np.where(rng.random(length) < 0.62, 1, -1)
            steps[at : at + length] = np.where(rng.random(length) < 0.4, moves, 0)[: n - at]
        if at and rng.random() < 0.2:
            steps[at] = int(rng.integers(1_000, 8_000)) * (1 if rng.random() < 0.6 else -1)
        at += length
    level = 9_500_000 + np.cumsum(steps)
    buy = np.empty(n, dtype=bool)
    buy[0] = True
    flips = rng.random(n) < np.where(steps == 0, 0.008, 0.5)
    for k in range(1, n):  # sides persist, and flip rarely in flat stretches
        buy[k] = (not buy[k - 1]) if flips[k] else buy[k - 1]
    ticks = level + buy  # a buy lifts the ask, a sell hits the bid
    prices = ticks / 100.0  # what float("95000.01") gives
    trades = _trades_frame("BTC-USD", np.arange(77_000_000, 77_000_000 + n), times, prices,
                           _sizes(rng, n), np.where(buy, "BUY", "SELL"))
    first, last = _span_us(trades)
    tickers = _tickers_for(rng, trades, first - 10 * US_PER_SECOND, last, 5.0)
    return _finish(rng, [trades], [tickers])


ALL_DATASETS = {
    "prices_near_100k": prices_near_100k,
    "equal_timestamps": equal_timestamps,
    "trade_ids_cross_power_of_ten": trade_ids_cross_power_of_ten,
    "sparse_and_bursty": sparse_and_bursty,
    "small_day": small_day,
    "two_products_with_tickers": two_products_with_tickers,
    "cross_midnight": cross_midnight,
}

# Too long for the oracle's per-trade loop: compared with vectorised two-pass references instead.
LONG_DATASETS = {
    "long_realistic_day": long_realistic_day,
}
