"""Partitioning rules every layer applies the same way: the bounds of a UTC day, how late a record may
arrive and how far ahead of its ingest time it may claim to be, when a product began trading, which
product a Bronze row belongs to, and the hand-off from Silver D+1 to Gold D: Gold D's targets read
the first trades of D+1, and Silver reports their fingerprint so the Gold sensor knows when D is due."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from crypto_assets.contracts.names import PRODUCT_ID_PATTERN, UNKNOWN_PRODUCT

# First day each product traded on Coinbase (UTC); earlier event times are absurd.
LISTING_DATES = {
    "BTC-USD": date(2015, 1, 26),
    "ETH-USD": date(2016, 5, 18),
    "SOL-USD": date(2021, 6, 17),
}
DEFAULT_LISTING_DATE = date(2015, 1, 26)  # Coinbase Exchange opened


@dataclass(frozen=True)
class SilverRules:
    allowed_lateness_days: int = 1
    max_future_skew_seconds: int = 300
    listing_dates: dict = field(default_factory=lambda: dict(LISTING_DATES))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def owner_product():
    """The product a Bronze row belongs to: its parsed product_id if well formed, else its Kafka key
    if well formed, else UNKNOWN (so even garbage has a product partition to be quarantined in). A Spark
    column; Arrow's form is `silver.transforms.owner_products`, held to the same answers by a test."""
    from pyspark.sql import functions as F

    pid = F.when(F.col("product_id").rlike(PRODUCT_ID_PATTERN), F.col("product_id"))
    key = F.when(F.col("key").rlike(PRODUCT_ID_PATTERN), F.col("key"))
    return F.coalesce(pid, key, F.lit(UNKNOWN_PRODUCT))


TARGET_HORIZONS = (10, 50)  # the targets look this many trades ahead
LOOKAHEAD_TRADES = max(TARGET_HORIZONS)  # so Gold D reads only the first 50 trades of D+1


def head_fingerprint(trade_id: np.ndarray, time_us: np.ndarray, price: np.ndarray, n: int) -> str:
    """SHA-256 of the first `n` trades of a Silver trades partition in its order (trade_time, trade_id):
    their ids, times and prices, all the day before's Gold reads of it. "" for no trades."""
    if not len(trade_id):
        return ""
    first = np.lexsort((trade_id, time_us))[:n]
    rows = zip(np.asarray(trade_id)[first].tolist(), np.asarray(time_us)[first].tolist(), np.asarray(price)[first].tolist())
    return hashlib.sha256(";".join(f"{i}:{t}:{p.hex()}" for i, t, p in rows).encode()).hexdigest()
