"""The quote each trade sees: Silver tickers in event-time order (ties broken by ingestion order) and the
latest one at or before each trade (an as-of join), for Gold's quote features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.gold.windows import sorted_by

TICKER_FIELDS = (
    "best_bid", "best_ask", "best_bid_quantity", "best_ask_quantity", "volume_24_h", "price_percent_chg_24_h",
    "low_24_h", "high_24_h", "low_52_w", "high_52_w",
)
TICKER_ORDER = ["event_time", "ingest_time", "kafka_partition", "kafka_offset", "item_index"]


def with_ticker_seq(tickers: pd.DataFrame) -> pd.DataFrame:
    """Silver tickers -> `ticker_seq`: ingestion order breaks ties among equal event times."""
    if "ticker_seq" in tickers.columns:
        return tickers
    rows = sorted_by(tickers, TICKER_ORDER)
    return rows.assign(ticker_seq=np.arange(len(rows), dtype=np.int64))


class Quotes:
    """A product's tickers in (event time, ticker_seq) order, as arrays: sorted once, looked up per slice."""

    def __init__(self, tickers: pd.DataFrame | None):
        if tickers is None or len(tickers) == 0:
            self.ts, self.values = np.empty(0, dtype=np.int64), {}
            return
        k = tickers.sort_values(["event_time", "ticker_seq"], kind="mergesort")
        self.ts = k["event_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        self.values = {c: k[c].to_numpy(dtype=float) for c in TICKER_FIELDS}


def quotes_seen(ts_us: np.ndarray, quotes: Quotes, quote_join: str) -> dict[str, np.ndarray]:
    """The ticker each trade sees: the latest with event time <= trade time ("asof").

    "minute_bucket" reproduces the replaced job's join (the last ticker of the trade's wall-clock
    minute, which can come after the trade): kept only to prove the leakage check can fail.
    """
    n = len(ts_us)
    k_ts = quotes.ts
    if len(k_ts) == 0:
        return {c: np.full(n, np.nan) for c in TICKER_FIELDS + ("event_time_us",)}
    if quote_join == "asof":
        pos = np.searchsorted(k_ts, ts_us, side="right") - 1
        ok = pos >= 0
    elif quote_join == "minute_bucket":
        minute = 60_000_000
        pos = np.searchsorted(k_ts, (ts_us // minute + 1) * minute, side="left") - 1
        ok = (pos >= 0) & (k_ts[np.maximum(pos, 0)] // minute == ts_us // minute)
    else:
        raise ValueError(f"unknown quote_join {quote_join!r}")
    take = np.maximum(pos, 0)
    out = {c: np.where(ok, quotes.values[c][take], np.nan) for c in TICKER_FIELDS}
    out["event_time_us"] = np.where(ok, k_ts[take].astype(float), np.nan)
    return out
