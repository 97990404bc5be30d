"""Partitioning rules every layer applies the same way: the bounds of a UTC day, how late a record may
arrive and how far ahead of its ingest time it may claim to be, when a product began trading, which
product a Bronze row belongs to, and the hand-off from Silver D+1 to Gold D: Gold D's targets read
the first trades of D+1 (`DayHead`), which Silver reports so the Gold sensor knows when D is due."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import ClassVar

import numpy as np

from crypto_assets.contracts.names import PRODUCT_ID_PATTERN, UNKNOWN_PRODUCT
from crypto_assets.contracts.settings import Settings

# First day each product traded on Coinbase (UTC); earlier event times are absurd.
LISTING_DATES = {
    "BTC-USD": date(2015, 1, 26),
    "ETH-USD": date(2016, 5, 18),
    "SOL-USD": date(2021, 6, 17),
}
DEFAULT_LISTING_DATE = date(2015, 1, 26)  # Coinbase Exchange opened


@dataclass(frozen=True)
class SilverRules:
    """What makes a record acceptable for its Silver partition. The lateness is a setting
    (`CRYPTO_ALLOWED_LATENESS_DAYS`): build the rules with `from_settings`; the default is that setting's."""

    allowed_lateness_days: int = Settings.model_fields["allowed_lateness_days"].default
    max_future_skew_seconds: int = 300
    listing_dates: dict = field(default_factory=lambda: dict(LISTING_DATES))

    @classmethod
    def from_settings(cls, settings: Settings) -> SilverRules:
        return cls(allowed_lateness_days=settings.allowed_lateness_days)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def owner_product():
    """The product a Bronze row belongs to: its parsed product_id if well formed, else its Kafka key
    if well formed, else UNKNOWN (so even garbage has a product partition to be quarantined in). A Spark
    column; Arrow's form is `contracts.ownership.owner_products`, held to the same answers by a test."""
    from pyspark.sql import functions as F

    pid = F.when(F.col("product_id").rlike(PRODUCT_ID_PATTERN), F.col("product_id"))
    key = F.when(F.col("key").rlike(PRODUCT_ID_PATTERN), F.col("key"))
    return F.coalesce(pid, key, F.lit(UNKNOWN_PRODUCT))


TARGET_HORIZONS = (10, 50)  # the targets look this many trades ahead
LOOKAHEAD_TRADES = max(TARGET_HORIZONS)  # so Gold D reads only the first 50 trades of D+1
_DIGEST = re.compile("(?:[0-9a-f]{64})?")


@dataclass(frozen=True)
class DayHead:
    """The first trades of one product's Silver trades day: the first LOOKAHEAD_TRADES in the order
    (trade_time, trade_id), all that Gold of the day before reads of that day (its targets look that far
    ahead). Silver D+1 reports the head it wrote (metadata `SILVER_KEY`), Gold D the head of D+1 it read
    (`GOLD_KEY`); the Gold sensor recomputes Gold D only when the two differ.

    `digest` identifies the trades: SHA-256 (hex) of their ids, times (microseconds) and prices, "" for a
    day without trades. In metadata it is that text as is (the form instances already store)."""

    digest: str = ""

    SILVER_KEY: ClassVar[str] = "head_fingerprint"  # Silver trades D: the head of D it wrote
    GOLD_KEY: ClassVar[str] = "next_day_head"  # Gold D: the head of D+1 it read for its targets

    def __post_init__(self):
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"a day head is 64 lowercase hex digits or '' (no trades), not {self.digest!r}")

    @classmethod
    def of(cls, trade_id: np.ndarray, time_us: np.ndarray, price: np.ndarray) -> DayHead:
        """The head of a day's trades given as arrays in any order (`time_us`: integer microseconds)."""
        if not len(trade_id):
            return cls()
        first = np.lexsort((trade_id, time_us))[:LOOKAHEAD_TRADES]
        rows = zip(np.asarray(trade_id)[first].tolist(), np.asarray(time_us)[first].tolist(),
                   np.asarray(price)[first].tolist())
        return cls(hashlib.sha256(";".join(f"{i}:{t}:{p.hex()}" for i, t, p in rows).encode()).hexdigest())

    def to_metadata(self) -> str:
        """The text stored under SILVER_KEY / GOLD_KEY."""
        return self.digest

    @classmethod
    def from_metadata(cls, text: object) -> DayHead | None:
        """The head stored as `to_metadata` wrote it; None when the entry is missing (None) or is not a
        head (malformed): the caller cannot know which trades were read."""
        try:
            return cls(text) if text is not None else None
        except ValueError:
            return None
