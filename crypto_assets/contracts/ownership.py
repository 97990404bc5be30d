"""Which Silver partition owns each Bronze item: the rule Bronze applies to say what a write adds
(`owner_table`, for its commit), compaction to cluster files by product (`owner_products`), and Silver
to read and mark a partition's rows (`owned_items`), so all three agree by construction.

Every Bronze item (one trade of a market_trades record, one ticker of a ticker record, or the whole
record when it could not be parsed) gets exactly one owner partition (event date x product). Valid
items belong to their event date; items without a usable event time, or later than the allowed
lateness, belong to their ingest date, whose Silver run quarantines them. Arrow and NumPy only: no Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crypto_assets.contracts.names import ITEMS, PRODUCT_ID_PATTERN, TRADES, UNKNOWN_PRODUCT
from crypto_assets.contracts.partitioning import DEFAULT_LISTING_DATE, SilverRules
from crypto_assets.contracts.values import flags, ints, null_unless, one_chunk, parse_timestamp

# The Bronze columns the rule reads, besides the kind's items (`ITEMS[kind]`).
OWNER_INPUT = ["partition", "offset", "kafka_timestamp", "key", "envelope_timestamp", "product_id", "is_malformed",
               "ingest_date"]
_US_PER_DAY = 86_400_000_000


def _micros(values) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since the epoch, present) of a timestamp array."""
    values = one_chunk(values)
    us = pc.cast(values, pa.int64())
    return ints(us), flags(pc.is_valid(values))


def _days(values) -> np.ndarray:
    return ints(pc.cast(one_chunk(values), pa.int32()))


def owner_products(product_id, key) -> pa.Array:
    """The product a Bronze row belongs to: its parsed product_id if well formed, else its Kafka key
    if well formed, else UNKNOWN (so even garbage has a product partition to be quarantined in)."""
    pid, key = one_chunk(product_id), one_chunk(key)
    pid_ok = flags(pc.match_substring_regex(pid, PRODUCT_ID_PATTERN))
    if pid_ok.all():
        return pid
    key_ok = flags(pc.match_substring_regex(key, PRODUCT_ID_PATTERN))
    return pc.coalesce(null_unless(pid, pid_ok), null_unless(key, key_ok), pa.scalar(UNKNOWN_PRODUCT))


@dataclass
class Items:
    """One row per Bronze item: `record` indexes the Bronze row; a record without items is one row
    with a null `item`."""

    record: np.ndarray
    item_index: np.ndarray
    item: pa.StructArray
    one_per_record: bool  # then item i is record i, and record columns need no gather

    def per_item(self, values) -> pa.Array:
        values = one_chunk(values)
        return values if self.one_per_record else values.take(pa.array(self.record))


def _explode(lists) -> Items:
    lists = one_chunk(lists)
    counts = ints(pc.list_value_length(lists))
    n = np.maximum(counts, 1)
    record = np.repeat(np.arange(len(lists)), n)
    starts = np.cumsum(n) - n
    item_index = (np.arange(len(record)) - starts[record]).astype(np.int32)
    flat_start = np.cumsum(counts) - counts  # where each record's items begin in the flattened items
    position = flat_start[record] + item_index
    has = counts[record] > 0
    flat = pc.list_flatten(lists)
    if not (has.all() and len(flat) == len(record)):  # else every record has exactly one item: no gather
        flat = flat.take(pa.array(np.where(has, position, 0), mask=~has) if len(record) else pa.array([], pa.int64()))
    return Items(record, item_index, flat, len(record) == len(lists))


@dataclass
class Owned:
    """Items with their event time and owner partition."""

    items: Items
    owner: pa.Array  # per item
    event_time_raw: pa.Array
    event_time: pa.Array
    has_time: np.ndarray
    ingest_us: np.ndarray
    before_listing: np.ndarray
    in_future: np.ndarray
    late: np.ndarray
    event_day: np.ndarray  # owner partition's date (days since the epoch)


def _listing_days(owner: pa.Array, rules: SilverRules) -> np.ndarray:
    products = sorted(rules.listing_dates)
    days = np.array([(rules.listing_dates[p] - date(1970, 1, 1)).days for p in products]
                    + [(DEFAULT_LISTING_DATE - date(1970, 1, 1)).days])
    at = ints(pc.index_in(owner, value_set=pa.array(products, pa.string())), len(products))
    return days[at]


def owned_items(bronze: pa.Table, kind: str, rules: SilverRules) -> Owned:
    """Bronze rows (`OWNER_INPUT` and the kind's items) as items, each with its event time and owner."""
    items = _explode(bronze.column(ITEMS[kind]))
    owner = items.per_item(owner_products(bronze.column("product_id"), bronze.column("key")))
    raw = pc.struct_field(items.item, "time") if kind == TRADES else items.per_item(bronze.column("envelope_timestamp"))
    event_time = parse_timestamp(raw)
    event_us, has_time = _micros(event_time)
    ingest_us, _ = _micros(bronze.column("kafka_timestamp"))
    ingest_us = ingest_us[items.record]
    ingest_day = _days(bronze.column("ingest_date"))[items.record]
    event_day = np.floor_divide(event_us, _US_PER_DAY)
    record_sound = (~flags(bronze.column("is_malformed"))[items.record] & flags(pc.is_valid(items.item))
                    & flags(pc.not_equal(owner, UNKNOWN_PRODUCT)))
    before_listing = has_time & (event_day < _listing_days(owner, rules))
    in_future = has_time & (event_us > ingest_us + rules.max_future_skew_seconds * 1_000_000)
    late = has_time & (ingest_day > event_day + rules.allowed_lateness_days)
    usable = record_sound & has_time & ~before_listing & ~in_future & ~late
    return Owned(items, owner, raw, event_time, has_time, ingest_us, before_listing, in_future, late,
                 np.where(usable, event_day, ingest_day).astype(np.int32))


def owner_table(bronze: pa.Table, kind: str, rules: SilverRules) -> pa.Table:
    """Per Bronze item, the Silver partition that owns it (what Silver's marking assigns, without
    typing the values): what a Bronze write adds, for its commit."""
    bronze = bronze.combine_chunks()
    o = owned_items(bronze, kind, rules)
    return pa.table({
        "ingest_date": o.items.per_item(bronze.column("ingest_date")),
        "kafka_partition": o.items.per_item(bronze.column("partition")),
        "kafka_offset": o.items.per_item(bronze.column("offset")),
        "item_index": pa.array(o.items.item_index),
        "event_date": pa.array(o.event_day, pa.int32()).cast(pa.date32()),
        "product_id": o.owner,
    })
