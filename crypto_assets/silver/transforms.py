"""Bronze -> Silver: typed, validated, deduplicated trades and ticker, with quarantine reasons.

The rules live once, as Arrow compute on a table of Bronze rows (`mark_table`, `owner_table`).
The local engine runs them on Bronze read with Arrow; Spark runs the very same functions in its
Python workers (`mark`, `write_summary`, through `mapInArrow`), so both engines agree by
construction and Spark's ANSI mode cannot change a result: Spark only moves the rows.

Every Bronze item (one trade of a market_trades record, one ticker of a ticker record, or the
whole record when it could not be parsed) gets exactly one owner partition (event date x
product) and one disposition there: `silver`, `duplicate` or `quarantined`. Valid items
belong to their event date; items without a usable event time, or later than the allowed
lateness, belong to their ingest date, whose Silver run quarantines them.

What parses (the exchange sends only the first form of each; anything else is quarantined):
- numbers: decimal text, optionally signed, with an optional exponent (`64589.41`, `1e-8`);
  NaN, infinities and values beyond a double are not numbers;
- trade ids: decimal digits (an optional sign, leading zeros allowed) within a signed 64-bit integer;
- times: ISO 8601 `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM]` (a space for `T` is accepted, no zone
  means UTC); digits past the microsecond are truncated;
- every value may carry surrounding whitespace; sides are compared upper-case.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crypto_assets.contracts.names import ITEMS, PRODUCT_ID_PATTERN, TICKER, TRADES, UNKNOWN_PRODUCT
from crypto_assets.contracts.partitioning import DEFAULT_LISTING_DATE, SilverRules

# Reason codes, in the order they are tested: the first failing rule names the reason.
TRADE_REASONS = (
    "malformed_record", "bad_product_id", "bad_trade_id", "missing_event_time", "event_time_before_listing",
    "event_time_in_future", "bad_price", "non_positive_price", "bad_size", "non_positive_size", "unknown_side",
    "too_late",
)
TICKER_REASONS = (
    "malformed_record", "bad_product_id", "missing_event_time", "event_time_before_listing", "event_time_in_future",
    "bad_price", "non_positive_price", "bad_quote", "too_late",
)

TICKER_NUMERIC = (
    "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w", "price_percent_chg_24_h",
    "best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity",
)

LINEAGE = [
    "kafka_topic", "kafka_partition", "kafka_offset", "item_index", "ingest_time", "ingest_date",
    "source", "connection_id", "sequence_num", "event_type", "is_snapshot",
]
SILVER_TRADE_COLUMNS = [
    "product_id", "trade_id", "trade_time", "price", "size", "side", "notional", *LINEAGE, "event_date",
]
SILVER_TICKER_COLUMNS = [
    "product_id", "event_time", *TICKER_NUMERIC, "content_hash", *LINEAGE, "event_date",
]
SILVER_COLUMNS = {TRADES: SILVER_TRADE_COLUMNS, TICKER: SILVER_TICKER_COLUMNS}
QUARANTINE_COLUMNS = [
    "product_id", "reason", "detail", "item_json", "value", "event_time_raw", *LINEAGE, "event_date",
]
# The Bronze columns the rules read (the raw `value` too, when at hand: see `mark_table`).
BRONZE_INPUT = [
    "topic", "partition", "offset", "kafka_timestamp", "key", "source", "connection_id", "envelope_timestamp",
    "sequence_num", "event_type", "product_id", "is_malformed", "malformed_reason", "ingest_date",
]
# Rows within a Silver partition file, and within a quarantine file.
SILVER_ORDER = {TRADES: ["trade_time", "trade_id"], TICKER: ["event_time", "kafka_partition", "kafka_offset", "item_index"]}
QUARANTINE_ORDER = ["kafka_partition", "kafka_offset", "item_index"]

_TS = pa.timestamp("us", tz="UTC")
_TYPES = {
    "product_id": pa.string(), "trade_id": pa.int64(), "trade_time": _TS, "event_time": _TS, "side": pa.string(),
    "notional": pa.float64(), "content_hash": pa.string(), "kafka_topic": pa.string(), "kafka_partition": pa.int32(),
    "kafka_offset": pa.int64(), "item_index": pa.int32(), "ingest_time": _TS, "ingest_date": pa.date32(),
    "source": pa.string(), "connection_id": pa.string(), "sequence_num": pa.int64(), "event_type": pa.string(),
    "is_snapshot": pa.bool_(), "event_date": pa.date32(), "reason": pa.string(), "detail": pa.string(),
    "malformed_reason": pa.string(), "event_time_raw": pa.string(), "value": pa.binary(), "item_json": pa.string(),
    "is_duplicate": pa.bool_(), "conflicting": pa.bool_(), "disposition": pa.string(),
    **{c: pa.float64() for c in ("price", "size", *TICKER_NUMERIC)},
}
# What `mark_table` returns: Silver's columns, then what quarantine and the counts need.
MARK_EXTRA = ["reason", "malformed_reason", "event_time_raw", "value", "item_json", "is_duplicate", "conflicting",
              "disposition"]


def _schema(columns: list[str], with_partition_columns: bool = True) -> pa.Schema:
    """`with_partition_columns=False`: without product_id and event_date, which the folder names hold."""
    return pa.schema([pa.field(c, _TYPES[c]) for c in columns
                      if with_partition_columns or c not in ("product_id", "event_date")])


def silver_schema(kind: str, with_partition_columns: bool = True) -> pa.Schema:
    return _schema(SILVER_COLUMNS[kind], with_partition_columns)


def quarantine_schema(with_partition_columns: bool = True) -> pa.Schema:
    return _schema(QUARANTINE_COLUMNS, with_partition_columns)


def marked_schema(kind: str) -> pa.Schema:
    return _schema(SILVER_COLUMNS[kind] + MARK_EXTRA)




# ---- parsing -----------------------------------------------------------------------------------

_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER = r"^-?[0-9]+$"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
_US_PER_DAY = 86_400_000_000


def _array(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _only(values: pa.Array, keep: np.ndarray) -> pa.Array:
    """`values` with null where `keep` is False, sharing its buffers (no copy of the strings)."""
    keep = keep & _bool(pc.is_valid(values))
    if keep.all():
        return values
    bits = np.packbits(np.concatenate([np.zeros(values.offset, dtype=bool), keep]), bitorder="little")
    return pa.Array.from_buffers(values.type, len(values), [pa.py_buffer(bits), *values.buffers()[1:]],
                                 null_count=int(len(keep) - keep.sum()), offset=values.offset)


def _cast_or_null(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast, with null wherever a value does not convert. Callers pass only text their pattern
    accepted, so this rarely fails; when it does the cast is bisected down to the offending values."""
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, OverflowError):
        if len(values) == 1:
            return pa.nulls(1, target)
        mid = len(values) // 2
        return pa.concat_arrays([_cast_or_null(values.slice(0, mid), target), _cast_or_null(values.slice(mid), target)])


def _matching(text, pattern: str) -> tuple[pa.Array, np.ndarray]:
    """(trimmed text, which of it matches `pattern`)."""
    text = pc.utf8_trim_whitespace(_array(text))
    return text, _bool(pc.match_substring_regex(text, pattern))


def parse_double(text) -> pa.Array:
    """Finite doubles from trimmed decimal text (`_DECIMAL`); anything else, NaN, infinities and
    overflow become null. Arrow's parser accepts exactly `_DECIMAL` plus NaN and infinities, so when
    a whole column casts the pattern need not be run (a test keeps the two in step)."""
    text = pc.utf8_trim_whitespace(_array(text))
    try:
        values = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, OverflowError):
        values = _cast_or_null(_only(text, _bool(pc.match_substring_regex(text, _DECIMAL))), pa.float64())
    return _only(values, _bool(pc.is_finite(values)))


def parse_int64(text) -> pa.Array:
    """Decimal integers within 64 bits (`_INTEGER`: a `-` parses and the caller rejects negative
    ids; `+`, hex (which Arrow's cast would take) and anything else become null)."""
    text, ok = _matching(text, _INTEGER)
    return _cast_or_null(_only(text, ok), pa.int64())


def _digits(block: np.ndarray, start: int, width: int) -> np.ndarray:
    """The decimal number in columns [start, start + width) of a block of digit values."""
    value = block[:, start].astype(np.int64)
    for i in range(start + 1, start + width):
        value = value * 10 + block[:, i]
    return value


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_CHUNK = 1 << 18  # rows per block of the timestamp parser (bounds its scratch memory)


def _iso_micros(head: np.ndarray, tail: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(UTC microseconds, valid) of ISO 8601 strings given as their first 26 and last 6 bytes (minus
    '0'), for strings that match `_TIMESTAMP`, so every field's place is known."""
    year, month, day = _digits(head, 0, 4), _digits(head, 5, 2), _digits(head, 8, 2)
    hour, minute, second = _digits(head, 11, 2), _digits(head, 14, 2), _digits(head, 17, 2)
    sign = (tail == ord("+") - 48) | (tail == ord("-") - 48)
    zone_len = np.where(tail[:, 5] == ord("Z") - 48, 1, np.where(sign[:, 3], 3, np.where(
        sign[:, 1], 5, np.where(sign[:, 0] & (tail[:, 3] == ord(":") - 48), 6, 0))))
    zone_sign = np.where(tail[np.arange(len(tail)), np.clip(6 - zone_len, 0, 5)] == ord("-") - 48, -1, 1)
    zone_h = np.where(zone_len == 3, _digits(tail, 4, 2), np.where(zone_len == 5, _digits(tail, 2, 2), np.where(
        zone_len == 6, _digits(tail, 1, 2), 0)))
    zone_m = np.where(zone_len >= 5, _digits(tail, 4, 2), 0)
    fraction_len = np.where(head[:, 19] == ord(".") - 48, length - zone_len - 20, 0)
    micros = np.zeros(len(head), dtype=np.int64)
    for i in range(6):
        micros = micros * 10 + np.where(fraction_len > i, head[:, 20 + i], 0)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 1, 12) - 1] + (leap & (month == 2))
    valid = ((month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59)
             & (second <= 59) & (zone_h <= 23) & (zone_m <= 59))
    seconds = (_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
               - zone_sign * (zone_h * 3600 + zone_m * 60))
    return seconds * 1_000_000 + micros, valid


def parse_timestamp(text) -> pa.Array:
    """ISO 8601 text (`_TIMESTAMP`) -> UTC microseconds, null for anything else. The pattern fixes
    where every field sits, so the fields are read straight from the UTF-8 bytes, a block of rows
    at a time; digits past the microsecond are cut, as Spark does."""
    text, ok = _matching(text, _TIMESTAMP)
    out = np.zeros(len(text), dtype=np.int64)
    rows = np.flatnonzero(ok)
    if len(rows):
        wide = pa.types.is_large_string(text.type)
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[text.offset: text.offset + len(text) + 1].astype(np.int64) + 32
        # Padded, so fixed-width reads past either end of a short string stay inside the buffer.
        data = np.concatenate([np.zeros(32, np.uint8), np.frombuffer(text.buffers()[2], np.uint8), np.zeros(32, np.uint8)])
        data = data.astype(np.int16) - 48
        for lo in range(0, len(rows), _CHUNK):
            part = rows[lo: lo + _CHUNK]
            start, end = offsets[part], offsets[part + 1]
            head = data[start[:, None] + np.arange(26)]
            tail = data[end[:, None] + np.arange(-6, 0)]
            out[part], ok[part] = _iso_micros(head, tail, end - start)
    return pa.array(out, _TS, mask=~ok)


def _bool(values) -> np.ndarray:
    """A boolean Arrow array as NumPy, null counted as False."""
    return np.array(pc.fill_null(_array(values), False).to_numpy(zero_copy_only=False), dtype=bool)


def _int(values, fill: int = 0) -> np.ndarray:
    return np.asarray(pc.fill_null(_array(values), fill).to_numpy(zero_copy_only=False))


def _micros(values) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since the epoch, present) of a timestamp array."""
    values = _array(values)
    us = pc.cast(values, pa.int64())
    return _int(us), _bool(pc.is_valid(values))


def _days(values) -> np.ndarray:
    return _int(pc.cast(_array(values), pa.int32()))


# ---- owners --------------------------------------------------------------------------------------

def owner_products(product_id, key) -> pa.Array:
    """The product a Bronze row belongs to: its parsed product_id if well formed, else its Kafka key
    if well formed, else UNKNOWN (so even garbage has a product partition to be quarantined in)."""
    pid, key = _array(product_id), _array(key)
    pid_ok = _bool(pc.match_substring_regex(pid, PRODUCT_ID_PATTERN))
    if pid_ok.all():
        return pid
    key_ok = _bool(pc.match_substring_regex(key, PRODUCT_ID_PATTERN))
    return pc.coalesce(_only(pid, pid_ok), _only(key, key_ok), pa.scalar(UNKNOWN_PRODUCT))


@dataclass
class _Items:
    """One row per Bronze item: `record` indexes the Bronze row; a record without items is one row
    with a null `item`."""

    record: np.ndarray
    item_index: np.ndarray
    item: pa.StructArray
    one_per_record: bool  # then item i is record i, and record columns need no gather

    def per_item(self, values) -> pa.Array:
        values = _array(values)
        return values if self.one_per_record else values.take(pa.array(self.record))


def _explode(lists) -> _Items:
    lists = _array(lists)
    counts = _int(pc.list_value_length(lists))
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
    return _Items(record, item_index, flat, len(record) == len(lists))


@dataclass
class _Owned:
    """Items with their event time and owner partition."""

    items: _Items
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
    at = _int(pc.index_in(owner, value_set=pa.array(products, pa.string())), len(products))
    return days[at]


def _own(bronze: pa.Table, kind: str, rules: SilverRules) -> _Owned:
    items = _explode(bronze.column(ITEMS[kind]))
    owner = items.per_item(owner_products(bronze.column("product_id"), bronze.column("key")))
    raw = pc.struct_field(items.item, "time") if kind == TRADES else items.per_item(bronze.column("envelope_timestamp"))
    event_time = parse_timestamp(raw)
    event_us, has_time = _micros(event_time)
    ingest_us, _ = _micros(bronze.column("kafka_timestamp"))
    ingest_us = ingest_us[items.record]
    ingest_day = _days(bronze.column("ingest_date"))[items.record]
    event_day = np.floor_divide(event_us, _US_PER_DAY)
    record_sound = (~_bool(bronze.column("is_malformed"))[items.record] & _bool(pc.is_valid(items.item))
                    & _bool(pc.not_equal(owner, UNKNOWN_PRODUCT)))
    before_listing = has_time & (event_day < _listing_days(owner, rules))
    in_future = has_time & (event_us > ingest_us + rules.max_future_skew_seconds * 1_000_000)
    late = has_time & (ingest_day > event_day + rules.allowed_lateness_days)
    usable = record_sound & has_time & ~before_listing & ~in_future & ~late
    return _Owned(items, owner, raw, event_time, has_time, ingest_us, before_listing, in_future, late,
                  np.where(usable, event_day, ingest_day).astype(np.int32))


def owner_table(bronze: pa.Table, kind: str, rules: SilverRules) -> pa.Table:
    """Per Bronze item, the Silver partition that owns it (the rules of `mark_table`, without typing
    the values): what a Bronze write adds, for its commit."""
    bronze = bronze.combine_chunks()
    o = _own(bronze, kind, rules)
    return pa.table({
        "ingest_date": o.items.per_item(bronze.column("ingest_date")),
        "kafka_partition": o.items.per_item(bronze.column("partition")),
        "kafka_offset": o.items.per_item(bronze.column("offset")),
        "item_index": pa.array(o.items.item_index),
        "event_date": pa.array(o.event_day, pa.int32()).cast(pa.date32()),
        "product_id": o.owner,
    })


# ---- marking -------------------------------------------------------------------------------------

def _first_reason(rules: list[tuple[str, np.ndarray]], n: int) -> pa.Array:
    code = np.zeros(n, dtype=np.int8)
    for i in range(len(rules), 0, -1):
        code[rules[i - 1][1]] = i
    names = pa.array([None] + [name for name, _ in rules], pa.string())
    return names.take(pa.array(code))


def content_hash(envelope_timestamp: pa.Array, event_type: pa.Array, item: pa.StructArray) -> pa.Array:
    """SHA-256 (hex) of what the exchange said: the envelope time, the event type and every ticker
    field as sent (not lineage), in the order of the Bronze schema. Fields are joined by \\x01 with
    \\x00 standing for null, so a missing field never shifts the others."""
    fields = [envelope_timestamp, event_type] + [pc.struct_field(item, i) for i in range(item.type.num_fields)]
    joined = pc.binary_join_element_wise(*[pc.fill_null(_array(f), "\x00") for f in fields], "\x01")
    width = np.int64 if pa.types.is_large_string(joined.type) else np.int32
    offsets = np.frombuffer(joined.buffers()[1], dtype=width)[joined.offset: joined.offset + len(joined) + 1]
    data = memoryview(joined.buffers()[2] or b"")
    sha = hashlib.sha256
    digests = b"".join(sha(data[a:b]).digest() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()))
    hex_bytes = _HEX[np.frombuffer(digests, dtype=np.uint8)].tobytes()
    n = len(joined)
    return pa.StringArray.from_buffers(n, pa.py_buffer(np.arange(0, 64 * n + 1, 64, dtype=np.int32)),
                                       pa.py_buffer(hex_bytes))


_DISPOSITIONS = pa.array(["silver", "duplicate", "quarantined"])
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype="S2")


def duplicate_flags(valid: np.ndarray, key_ids: np.ndarray, order_keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(is_duplicate, kept row of each row's key or -1). Among valid rows with the same key, the first
    in `order_keys` order (earliest ingested copy) is kept and the others are duplicates. Only keys
    seen more than once are ordered at all."""
    n = len(valid)
    is_dup, kept_of = np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(valid)
    if not len(rows):
        return is_dup, kept_of
    ids = key_ids[rows]
    repeated = rows[np.bincount(ids)[ids] > 1]
    if not len(repeated):
        return is_dup, kept_of
    ordered = repeated[np.lexsort([k[repeated] for k in reversed(order_keys)])]
    _, first = np.unique(key_ids[ordered], return_index=True)
    kept = ordered[first]
    kept_row = np.full(int(key_ids.max()) + 1, -1, dtype=np.int64)
    kept_row[key_ids[kept]] = kept
    is_dup[repeated] = True
    is_dup[kept] = False
    kept_of[repeated] = kept_row[key_ids[repeated]]
    return is_dup, kept_of


def _key_ids(*columns: pa.Array) -> np.ndarray:
    """Small non-negative integers, one per distinct combination of the columns (null is a value too)."""
    ids = np.zeros(len(columns[0]), dtype=np.int64)
    for c in columns:
        enc = pc.dictionary_encode(_array(c), null_encoding="encode")
        ids = ids * len(enc.dictionary) + _int(enc.indices)
    if len(ids) and ids.max() > 4 * len(ids):  # keep them small enough to count with bincount
        ids = np.unique(ids, return_inverse=True)[1].reshape(-1)
    return ids


def _same(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Element-wise equality with null equal to null."""
    eq = _bool(pc.equal(a, b))
    return eq | (_bool(pc.is_null(a)) & _bool(pc.is_null(b)))


def _item_json(item: pa.StructArray) -> pa.Array:
    """Rejected items as compact JSON of their fields as sent (absent fields left out)."""
    return pa.array(
        [None if d is None else json.dumps({k: v for k, v in d.items() if v is not None}, separators=(",", ":"),
                                           ensure_ascii=False)
         for d in item.to_pylist()],
        pa.string(),
    )


def mark_table(bronze: pa.Table, kind: str, rules: SilverRules,
               values: Callable[[np.ndarray], pa.Array] | None = None) -> pa.Table:
    """Types, validates and deduplicates Bronze rows; one row per item (`marked_schema`) with
    `disposition` (silver | duplicate | quarantined), its `reason`, and `conflicting` (a kept trade
    whose duplicates differ in content).

    The raw `value` travels with rejected items only: from the table's `value` column, or from
    `values(bronze_rows)` when the caller kept it out of the table (it is most of Bronze's bytes)."""
    bronze = bronze.combine_chunks()
    o = _own(bronze, kind, rules)
    items, n = o.items, len(o.items.record)

    def record_col(name: str) -> pa.Array:
        return items.per_item(bronze.column(name))

    def field(name: str) -> pa.Array:
        return pc.struct_field(items.item, name)

    malformed = _bool(record_col("is_malformed")) | ~_bool(pc.is_valid(items.item))
    time_rules = [("missing_event_time", ~o.has_time), ("event_time_before_listing", o.before_listing),
                  ("event_time_in_future", o.in_future)]
    head = [("malformed_record", malformed), ("bad_product_id", _bool(pc.equal(o.owner, UNKNOWN_PRODUCT)))]
    cols: dict[str, pa.Array] = {"product_id": o.owner}
    if kind == TRADES:
        trade_id = parse_int64(field("trade_id"))
        price, size = parse_double(field("price")), parse_double(field("size"))
        side = pc.utf8_upper(pc.utf8_trim_whitespace(field("side")))
        checks = head + [
            ("bad_trade_id", ~_bool(pc.is_valid(trade_id)) | (_int(trade_id) < 0)),
            *time_rules,
            ("bad_price", ~_bool(pc.is_valid(price))),
            ("non_positive_price", _bool(pc.less_equal(price, 0.0))),
            ("bad_size", ~_bool(pc.is_valid(size))),
            ("non_positive_size", _bool(pc.less_equal(size, 0.0))),
            ("unknown_side", ~_bool(pc.is_in(side, value_set=pa.array(["BUY", "SELL"])))),
        ]
        cols.update(trade_id=trade_id, trade_time=o.event_time, price=price, size=size, side=side,
                    notional=pc.multiply(price, size))
    else:
        numeric = {c: parse_double(field(c)) for c in TICKER_NUMERIC}
        bid, ask = numeric["best_bid"], numeric["best_ask"]
        checks = head + [
            *time_rules,
            ("bad_price", ~_bool(pc.is_valid(numeric["price"]))),
            ("non_positive_price", _bool(pc.less_equal(numeric["price"], 0.0))),
            ("bad_quote", _bool(pc.less_equal(bid, 0.0)) | _bool(pc.less_equal(ask, 0.0))),
        ]
        cols.update(event_time=o.event_time, **numeric)
    reason = _first_reason(checks + [("too_late", o.late)], n)
    valid = ~_bool(pc.is_valid(reason))

    if kind == TICKER:
        hashed = content_hash(record_col("envelope_timestamp").filter(pa.array(valid)),
                              record_col("event_type").filter(pa.array(valid)), items.item.filter(pa.array(valid)))
        cols["content_hash"] = pa.nulls(n, pa.string()) if not valid.any() else _scatter(hashed, valid)
        key = cols["content_hash"]
    else:
        key = cols["trade_id"]
    partition, offset = record_col("partition"), record_col("offset")
    is_dup, kept_of = duplicate_flags(valid, _key_ids(o.owner, key),
                                      [o.ingest_us, _int(partition), _int(offset), items.item_index])
    conflicting = np.zeros(n, dtype=bool)
    if kind == TRADES and is_dup.any():
        dups = np.flatnonzero(is_dup)
        d, k = pa.array(dups), pa.array(kept_of[dups])
        same = np.ones(len(dups), dtype=bool)
        for c in ("price", "size", "side", "trade_time"):
            same &= _same(cols[c].take(d), cols[c].take(k))
        conflicting[kept_of[dups][~same]] = True

    event_type = record_col("event_type")
    cols.update(
        kafka_topic=record_col("topic"), kafka_partition=partition, kafka_offset=offset,
        item_index=pa.array(items.item_index), ingest_time=record_col("kafka_timestamp"),
        ingest_date=record_col("ingest_date"), source=record_col("source"), connection_id=record_col("connection_id"),
        sequence_num=record_col("sequence_num"), event_type=event_type, is_snapshot=pc.equal(event_type, "snapshot"),
        event_date=pa.array(o.event_day, pa.int32()).cast(pa.date32()),
    )
    rejected = np.flatnonzero(~valid)
    raw_value = values(items.record[rejected]) if values else _array(bronze.column("value")).take(pa.array(items.record[rejected]))
    cols.update(
        reason=reason,
        malformed_reason=record_col("malformed_reason"),
        event_time_raw=o.event_time_raw,
        value=_scatter(raw_value, ~valid),
        item_json=_scatter(_item_json(items.item.take(pa.array(rejected))), ~valid),
        is_duplicate=pa.array(is_dup),
        conflicting=pa.array(conflicting),
        disposition=_DISPOSITIONS.take(pa.array(np.where(~valid, 2, np.where(is_dup, 1, 0)).astype(np.int8))),
    )
    schema = marked_schema(kind)
    return pa.table([pc.cast(_array(cols[f.name]), f.type) for f in schema], schema=schema)


def _scatter(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """An array as long as `mask` holding `values` (one per True, in order) and null elsewhere."""
    at = np.full(len(mask), -1, dtype=np.int64)
    at[mask] = np.arange(int(mask.sum()))
    return _array(values).take(pa.array(np.maximum(at, 0), mask=at < 0))


def silver_table(marked: pa.Table, kind: str, with_partition_columns: bool = True) -> pa.Table:
    """The Silver rows of marked rows, in Silver's order (`SILVER_ORDER`)."""
    rows = marked.filter(pc.equal(marked.column("disposition"), "silver"))
    schema = silver_schema(kind, with_partition_columns)
    return _sorted(rows, SILVER_ORDER[kind]).select(schema.names)


def quarantine_table(marked: pa.Table, with_partition_columns: bool = True) -> pa.Table:
    rows = marked.filter(pc.equal(marked.column("disposition"), "quarantined"))
    detail = pc.if_else(pc.equal(rows.column("reason"), "malformed_record"), rows.column("malformed_reason"),
                        pa.scalar(None, pa.string()))
    rows = rows.append_column("detail", detail)
    return _sorted(rows, QUARANTINE_ORDER).select(quarantine_schema(with_partition_columns).names)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    """The table in `keys` order; no copy when it already is (Bronze mostly arrives in time order)."""
    if table.num_rows < 2:
        return table
    columns = [_int(pc.cast(table.column(k), pa.int64()) if pa.types.is_timestamp(table.schema.field(k).type)
                    else table.column(k)) for k in keys]
    ordered, tied = np.zeros(table.num_rows - 1, dtype=bool), np.ones(table.num_rows - 1, dtype=bool)
    for c in columns:
        ordered |= tied & (c[1:] > c[:-1])
        tied &= c[1:] == c[:-1]
    if (ordered | tied).all():
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))


# ---- the same rules in Spark's Python workers -----------------------------------------------------

def _spark_type(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def mark(bronze, kind: str, rules: SilverRules):
    """`mark_table` on a Spark DataFrame of Bronze rows: all rows of a product are brought to one task
    (dedup compares them), then marked there, in Arrow."""
    from crypto_assets.contracts.partitioning import owner_product

    schema = marked_schema(kind)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        batches = [b for b in batches if b.num_rows]
        if batches:
            yield from mark_table(pa.Table.from_batches(batches), kind, rules).to_batches(max_chunksize=10_000)

    columns = [*BRONZE_INPUT, ITEMS[kind], "value"]
    return bronze.select(*columns).repartition(owner_product()).mapInArrow(run, _spark_type(schema))


def write_summary(bronze, kind: str, rules: SilverRules):
    """What some Bronze rows add, in one pass: per (ingest_date, Kafka partition, owning Silver
    partition) the items, the records (each counted once, with its first item) and the offset range.
    Owners are assigned by the rules Silver uses (`owner_table`)."""
    from pyspark.sql import functions as F

    schema = pa.schema([("ingest_date", pa.date32()), ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()),
                        ("item_index", pa.int32()), ("event_date", pa.date32()), ("product_id", pa.string())])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from owner_table(pa.Table.from_batches([batch]), kind, rules).cast(schema).to_batches()

    owners = bronze.select(*BRONZE_INPUT, ITEMS[kind]).mapInArrow(run, _spark_type(schema))
    return owners.groupBy("ingest_date", "kafka_partition", "event_date", "product_id").agg(
        F.count(F.lit(1)).alias("items"),
        F.sum((F.col("item_index") == 0).cast("long")).alias("records"),
        F.min("kafka_offset").alias("lo"),
        F.max("kafka_offset").alias("hi"),
    )


def silver_rows(marked, kind: str):
    """The Silver rows of a Spark DataFrame from `mark`."""
    from pyspark.sql import functions as F

    return marked.where(F.col("disposition") == "silver").select(*SILVER_COLUMNS[kind])


def quarantine_rows(marked):
    from pyspark.sql import functions as F

    detail = F.when(F.col("reason") == "malformed_record", F.col("malformed_reason")).alias("detail")
    return marked.where(F.col("disposition") == "quarantined").select(
        *[detail if c == "detail" else c for c in QUARANTINE_COLUMNS])
