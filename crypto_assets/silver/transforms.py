"""Bronze -> Silver: typed, validated, deduplicated trades and ticker, with quarantine reasons.

The rules live once, as Arrow compute on a table of Bronze rows (`mark_table`), run on Bronze read
with Arrow (`silver.build`). Which partition owns an item is the contracts' rule
(`contracts.ownership`), shared with Bronze's commits; values parse as `contracts.values` says.

Every Bronze item (one trade of a market_trades record, one ticker of a ticker record, or the
whole record when it could not be parsed) gets exactly one owner partition (event date x
product) and one disposition there: `silver`, `duplicate` or `quarantined`. Valid items
belong to their event date; items without a usable event time, or later than the allowed
lateness, belong to their ingest date, whose Silver run quarantines them. Values that do not
parse are quarantined; sides are compared upper-case.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crypto_assets.contracts.names import TICKER, TRADES, UNKNOWN_PRODUCT
from crypto_assets.contracts.ownership import owned_items
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import (  # noqa: F401 - the column lists are re-exported
    COLUMN_TYPES,
    LINEAGE,
    QUARANTINE_COLUMNS,
    SILVER_COLUMNS,
    SILVER_TICKER_COLUMNS,
    SILVER_TRADE_COLUMNS,
    TICKER_NUMERIC,
)
from crypto_assets.contracts.values import flags, ints, one_chunk, parse_double, parse_int64

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

# The Bronze columns the rules read (the raw `value` too, when at hand: see `mark_table`).
BRONZE_INPUT = [
    "topic", "partition", "offset", "kafka_timestamp", "key", "source", "connection_id", "envelope_timestamp",
    "sequence_num", "event_type", "product_id", "is_malformed", "malformed_reason", "ingest_date",
]
# Rows within a Silver partition file, and within a quarantine file.
SILVER_ORDER = {TRADES: ["trade_time", "trade_id"], TICKER: ["event_time", "kafka_partition", "kafka_offset", "item_index"]}
QUARANTINE_ORDER = ["kafka_partition", "kafka_offset", "item_index"]

# What `mark_table` returns: Silver's columns, then what quarantine and the counts need.
MARK_EXTRA = ["reason", "malformed_reason", "event_time_raw", "value", "item_json", "is_duplicate", "conflicting",
              "disposition"]


def _schema(columns: list[str], with_partition_columns: bool = True) -> pa.Schema:
    """`with_partition_columns=False`: without product_id and event_date, which the folder names hold."""
    return pa.schema([pa.field(c, COLUMN_TYPES[c]) for c in columns
                      if with_partition_columns or c not in ("product_id", "event_date")])


def silver_schema(kind: str, with_partition_columns: bool = True) -> pa.Schema:
    return _schema(SILVER_COLUMNS[kind], with_partition_columns)


def quarantine_schema(with_partition_columns: bool = True) -> pa.Schema:
    return _schema(QUARANTINE_COLUMNS, with_partition_columns)


def marked_schema(kind: str) -> pa.Schema:
    return _schema(SILVER_COLUMNS[kind] + MARK_EXTRA)


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
    joined = pc.binary_join_element_wise(*[pc.fill_null(one_chunk(f), "\x00") for f in fields], "\x01")
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
        enc = pc.dictionary_encode(one_chunk(c), null_encoding="encode")
        ids = ids * len(enc.dictionary) + ints(enc.indices)
    if len(ids) and ids.max() > 4 * len(ids):  # keep them small enough to count with bincount
        ids = np.unique(ids, return_inverse=True)[1].reshape(-1)
    return ids


def _same(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Element-wise equality with null equal to null."""
    eq = flags(pc.equal(a, b))
    return eq | (flags(pc.is_null(a)) & flags(pc.is_null(b)))


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
    `disposition` (silver | duplicate | quarantined), its `reason`, and `conflicting` (a duplicate
    trade whose content differs from the copy kept).

    The raw `value` travels with rejected items only: from the table's `value` column, or from
    `values(bronze_rows)` when the caller kept it out of the table (it is most of Bronze's bytes)."""
    bronze = bronze.combine_chunks()
    o = owned_items(bronze, kind, rules)
    items, n = o.items, len(o.items.record)

    def record_col(name: str) -> pa.Array:
        return items.per_item(bronze.column(name))

    def field(name: str) -> pa.Array:
        return pc.struct_field(items.item, name)

    malformed = flags(record_col("is_malformed")) | ~flags(pc.is_valid(items.item))
    time_rules = [("missing_event_time", ~o.has_time), ("event_time_before_listing", o.before_listing),
                  ("event_time_in_future", o.in_future)]
    head = [("malformed_record", malformed), ("bad_product_id", flags(pc.equal(o.owner, UNKNOWN_PRODUCT)))]
    cols: dict[str, pa.Array] = {"product_id": o.owner}
    if kind == TRADES:
        trade_id = parse_int64(field("trade_id"))
        price, size = parse_double(field("price")), parse_double(field("size"))
        side = pc.utf8_upper(pc.utf8_trim_whitespace(field("side")))
        checks = head + [
            ("bad_trade_id", ~flags(pc.is_valid(trade_id)) | (ints(trade_id) < 0)),
            *time_rules,
            ("bad_price", ~flags(pc.is_valid(price))),
            ("non_positive_price", flags(pc.less_equal(price, 0.0))),
            ("bad_size", ~flags(pc.is_valid(size))),
            ("non_positive_size", flags(pc.less_equal(size, 0.0))),
            ("unknown_side", ~flags(pc.is_in(side, value_set=pa.array(["BUY", "SELL"])))),
        ]
        cols.update(trade_id=trade_id, trade_time=o.event_time, price=price, size=size, side=side,
                    notional=pc.multiply(price, size))
    else:
        numeric = {c: parse_double(field(c)) for c in TICKER_NUMERIC}
        bid, ask = numeric["best_bid"], numeric["best_ask"]
        checks = head + [
            *time_rules,
            ("bad_price", ~flags(pc.is_valid(numeric["price"]))),
            ("non_positive_price", flags(pc.less_equal(numeric["price"], 0.0))),
            ("bad_quote", flags(pc.less_equal(bid, 0.0)) | flags(pc.less_equal(ask, 0.0))),
        ]
        cols.update(event_time=o.event_time, **numeric)
    reason = _first_reason(checks + [("too_late", o.late)], n)
    valid = ~flags(pc.is_valid(reason))

    if kind == TICKER:
        hashed = content_hash(record_col("envelope_timestamp").filter(pa.array(valid)),
                              record_col("event_type").filter(pa.array(valid)), items.item.filter(pa.array(valid)))
        cols["content_hash"] = pa.nulls(n, pa.string()) if not valid.any() else _scatter(hashed, valid)
        key = cols["content_hash"]
    else:
        key = cols["trade_id"]
    partition, offset = record_col("partition"), record_col("offset")
    is_dup, kept_of = duplicate_flags(valid, _key_ids(o.owner, key),
                                      [o.ingest_us, ints(partition), ints(offset), items.item_index])
    conflicting = np.zeros(n, dtype=bool)
    if kind == TRADES and is_dup.any():
        dups = np.flatnonzero(is_dup)
        d, k = pa.array(dups), pa.array(kept_of[dups])
        same = np.ones(len(dups), dtype=bool)
        for c in ("price", "size", "side", "trade_time"):
            same &= _same(cols[c].take(d), cols[c].take(k))
        conflicting[dups[~same]] = True  # the duplicates whose content differs from the copy kept

    event_type = record_col("event_type")
    cols.update(
        kafka_topic=record_col("topic"), kafka_partition=partition, kafka_offset=offset,
        item_index=pa.array(items.item_index), ingest_time=record_col("kafka_timestamp"),
        ingest_date=record_col("ingest_date"), source=record_col("source"), connection_id=record_col("connection_id"),
        sequence_num=record_col("sequence_num"), event_type=event_type, is_snapshot=pc.equal(event_type, "snapshot"),
        event_date=pa.array(o.event_day, pa.int32()).cast(pa.date32()),
    )
    rejected = np.flatnonzero(~valid)
    raw_value = values(items.record[rejected]) if values else one_chunk(bronze.column("value")).take(pa.array(items.record[rejected]))
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
    return pa.table([pc.cast(one_chunk(cols[f.name]), f.type) for f in schema], schema=schema)


def _scatter(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """An array as long as `mask` holding `values` (one per True, in order) and null elsewhere."""
    at = np.full(len(mask), -1, dtype=np.int64)
    at[mask] = np.arange(int(mask.sum()))
    return one_chunk(values).take(pa.array(np.maximum(at, 0), mask=at < 0))


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
    columns = [ints(pc.cast(table.column(k), pa.int64()) if pa.types.is_timestamp(table.schema.field(k).type)
                    else table.column(k)) for k in keys]
    ordered, tied = np.zeros(table.num_rows - 1, dtype=bool), np.ones(table.num_rows - 1, dtype=bool)
    for c in columns:
        ordered |= tied & (c[1:] > c[:-1])
        tied &= c[1:] == c[:-1]
    if (ordered | tied).all():
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))

