"""The lake's tables, declared once: name, Arrow schema, identity partition columns, description.

Every writer (pyiceberg from Arrow, Spark through the Iceberg catalog) and every reader takes the
columns and types from here; the Iceberg schema is derived from the Arrow one when a table is
created, and the Hive type names Athena shows (`hive_type`) are derived from it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from crypto_assets.contracts.gold_features import gold_columns
from crypto_assets.contracts.names import (
    BRONZE_TABLE,
    CANDLE_INTERVALS,
    GOLD_TABLE,
    SILVER_TABLE,
    TICKER,
    TRADES,
    candles_table,
)
from crypto_assets.contracts.values import UTC_MICROS

# ---- Bronze: one row per Kafka record; the values stay strings exactly as Coinbase sent them ----------

TRADE_ITEM_FIELDS = ("trade_id", "product_id", "price", "size", "side", "time")
TICKER_ITEM_FIELDS = (
    "type", "product_id", "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
    "price_percent_chg_24_h", "best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity",
)
BRONZE_ITEMS_COLUMN = {TRADES: "trades", TICKER: "tickers"}


def _items(fields: tuple[str, ...]) -> pa.DataType:
    return pa.list_(pa.struct([pa.field(n, pa.string()) for n in fields]))


_KAFKA_FIELDS = [
    pa.field("topic", pa.string()), pa.field("partition", pa.int32()), pa.field("offset", pa.int64()),
    pa.field("kafka_timestamp", UTC_MICROS), pa.field("key", pa.string()), pa.field("value", pa.binary()),
    pa.field("source", pa.string()), pa.field("connection_id", pa.string()),
    pa.field("headers", pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.string())]))),
    pa.field("channel", pa.string()), pa.field("envelope_timestamp", pa.string()),
    pa.field("sequence_num", pa.int64()), pa.field("event_type", pa.string()), pa.field("product_id", pa.string()),
]
_BRONZE_TAIL = [pa.field("is_malformed", pa.bool_()), pa.field("malformed_reason", pa.string()),
                pa.field("ingest_date", pa.date32())]


def bronze_schema(kind: str) -> pa.Schema:
    items = TRADE_ITEM_FIELDS if kind == TRADES else TICKER_ITEM_FIELDS
    return pa.schema([*_KAFKA_FIELDS, pa.field(BRONZE_ITEMS_COLUMN[kind], _items(items)), *_BRONZE_TAIL])


# ---- Silver and quarantine ------------------------------------------------------------------------------

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
# The type of every column Silver and quarantine hold (and of the rules' working columns).
COLUMN_TYPES = {
    "product_id": pa.string(), "trade_id": pa.int64(), "trade_time": UTC_MICROS, "event_time": UTC_MICROS,
    "side": pa.string(), "notional": pa.float64(), "content_hash": pa.string(), "kafka_topic": pa.string(),
    "kafka_partition": pa.int32(), "kafka_offset": pa.int64(), "item_index": pa.int32(), "ingest_time": UTC_MICROS,
    "ingest_date": pa.date32(), "source": pa.string(), "connection_id": pa.string(), "sequence_num": pa.int64(),
    "event_type": pa.string(), "is_snapshot": pa.bool_(), "event_date": pa.date32(), "reason": pa.string(),
    "detail": pa.string(), "malformed_reason": pa.string(), "event_time_raw": pa.string(), "value": pa.binary(),
    "item_json": pa.string(), "is_duplicate": pa.bool_(), "conflicting": pa.bool_(), "disposition": pa.string(),
    **{c: pa.float64() for c in ("price", "size", *TICKER_NUMERIC)},
}


def columns_schema(columns: list[str]) -> pa.Schema:
    return pa.schema([pa.field(c, COLUMN_TYPES[c]) for c in columns])


# ---- Gold -----------------------------------------------------------------------------------------------

_SQL_TO_ARROW = {"double": pa.float64(), "int": pa.int32(), "bigint": pa.int64(), "string": pa.string(),
                 "boolean": pa.bool_(), "timestamp": UTC_MICROS, "date": pa.date32()}


def gold_schema() -> pa.Schema:
    return pa.schema([pa.field(n, _SQL_TO_ARROW[t]) for n, t in gold_columns()])


# OHLCV candles: one row per product and window holding at least one trade. The quote columns come from the
# Silver tickers of the window with both a best bid and a best ask (`ticker_count` of them; null when none).
CANDLE_COLUMNS = [
    ("window_start", "timestamp"), ("open", "double"), ("high", "double"), ("low", "double"), ("close", "double"),
    ("volume", "double"), ("notional", "double"), ("vwap", "double"), ("trade_count", "bigint"),
    ("buy_volume", "double"), ("sell_volume", "double"), ("last_best_bid", "double"), ("last_best_ask", "double"),
    ("mean_spread", "double"), ("ticker_count", "bigint"), ("product_id", "string"), ("event_date", "date"),
]


def candles_schema() -> pa.Schema:
    return pa.schema([pa.field(n, _SQL_TO_ARROW[t]) for n, t in CANDLE_COLUMNS])


# ---- The tables -----------------------------------------------------------------------------------------

INGEST_PARTITION = ("ingest_date",)
EVENT_PARTITION = ("product_id", "event_date")


@dataclass(frozen=True)
class TableDef:
    layer: str  # the namespace: bronze | silver | quarantine | gold
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...]  # identity partitions, in order
    description: str

    @property
    def identifier(self) -> str:
        """`bronze.kafka_trades`: the name in the local catalog and in Spark (`lake.bronze.kafka_trades`)."""
        return f"{self.layer}.{self.name}"

    @property
    def flat_name(self) -> str:
        """`bronze_kafka_trades`: the name in one Glue/Athena database (and in the SQL layer)."""
        return f"{self.layer}_{self.name}"


def _tables() -> dict[str, TableDef]:
    out = {}
    for kind, title in ((TRADES, "trades"), (TICKER, "ticker")):
        topic = "crypto.trades.raw" if kind == TRADES else "crypto.ticker.raw"
        out[f"bronze.{BRONZE_TABLE[kind]}"] = TableDef(
            "bronze", BRONZE_TABLE[kind], bronze_schema(kind), INGEST_PARTITION,
            f"Bronze: one row per Kafka record of {topic}, by ingest date")
        out[f"silver.{SILVER_TABLE[kind]}"] = TableDef(
            "silver", SILVER_TABLE[kind], columns_schema(SILVER_COLUMNS[kind]), EVENT_PARTITION,
            f"Silver: typed, validated, deduplicated {title}")
        out[f"quarantine.{SILVER_TABLE[kind]}"] = TableDef(
            "quarantine", SILVER_TABLE[kind], columns_schema(QUARANTINE_COLUMNS), EVENT_PARTITION,
            f"{title.capitalize()} items Silver rejected, with the reason")
    out[f"gold.{GOLD_TABLE}"] = TableDef(
        "gold", GOLD_TABLE, gold_schema(), EVENT_PARTITION,
        "Gold: one row per trade with the 120 features and 6 targets of docs/feature_catalog.md")
    for interval in CANDLE_INTERVALS:
        out[f"gold.{candles_table(interval)}"] = TableDef(
            "gold", candles_table(interval), candles_schema(), EVENT_PARTITION,
            f"Gold: {interval} OHLCV candles, one row per product and UTC {interval} window with at least one trade "
            f"(windows without trades are absent), with the window's last quote and mean spread")
    return out


TABLES: dict[str, TableDef] = _tables()


def bronze_table(kind: str) -> TableDef:
    return TABLES[f"bronze.{BRONZE_TABLE[kind]}"]


def silver_table_def(kind: str) -> TableDef:
    return TABLES[f"silver.{SILVER_TABLE[kind]}"]


def quarantine_table_def(kind: str) -> TableDef:
    return TABLES[f"quarantine.{SILVER_TABLE[kind]}"]


def gold_table_def() -> TableDef:
    return TABLES[f"gold.{GOLD_TABLE}"]


def candles_table_def(interval: str) -> TableDef:
    return TABLES[f"gold.{candles_table(interval)}"]


def hive_type(t: pa.DataType) -> str:
    """The Hive/Athena type name of an Arrow type (what the Glue catalog and Athena show)."""
    if pa.types.is_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"
    simple = {pa.string(): "string", pa.int32(): "int", pa.int64(): "bigint", pa.float64(): "double",
              pa.bool_(): "boolean", pa.date32(): "date", pa.binary(): "binary", UTC_MICROS: "timestamp"}
    return simple[t]
