"""Kafka records -> Bronze rows: one row per Kafka record, raw value kept, envelope parsed.

Pure DataFrame functions (no Dagster, no I/O) shared by the Dagster assets, the streaming
job and the Glue scripts. Every record is kept; one that cannot be parsed is flagged with
`is_malformed` and a `malformed_reason` instead of being dropped.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crypto_assets.contracts.names import (
    EXPECTED_CHANNEL,
    KINDS,
    TICKER,
    TRADES,
)
from crypto_assets.contracts.partitioning import day_bounds

# Values stay strings exactly as Coinbase sent them; Silver does the typing.
TRADE_STRUCT = T.StructType(
    [T.StructField(n, T.StringType()) for n in ("trade_id", "product_id", "price", "size", "side", "time")]
)
TICKER_FIELDS = (
    "type", "product_id", "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
    "price_percent_chg_24_h", "best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity",
)
TICKER_STRUCT = T.StructType([T.StructField(n, T.StringType()) for n in TICKER_FIELDS])

_CORRUPT = "_corrupt_record"
ENVELOPE_SCHEMA = T.StructType(
    [
        T.StructField("channel", T.StringType()),
        T.StructField("client_id", T.StringType()),
        T.StructField("timestamp", T.StringType()),
        # Parsed as string so a quoted or malformed number cannot void the whole record.
        T.StructField("sequence_num", T.StringType()),
        T.StructField(
            "events",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("type", T.StringType()),
                        T.StructField("trades", T.ArrayType(TRADE_STRUCT)),
                        T.StructField("tickers", T.ArrayType(TICKER_STRUCT)),
                    ]
                )
            ),
        ),
        T.StructField(_CORRUPT, T.StringType()),
    ]
)

# Column order of the Bronze tables (ingest_date is the partition column, last).
COMMON_COLUMNS = [
    "topic", "partition", "offset", "kafka_timestamp", "key", "value", "source", "connection_id", "headers",
    "channel", "envelope_timestamp", "sequence_num", "event_type", "product_id",
]
TAIL_COLUMNS = ["is_malformed", "malformed_reason", "ingest_date"]
BRONZE_COLUMNS = {
    TRADES: COMMON_COLUMNS + ["trades"] + TAIL_COLUMNS,
    TICKER: COMMON_COLUMNS + ["tickers"] + TAIL_COLUMNS,
}


def filter_ingest_day(kafka_df: DataFrame, day: date) -> DataFrame:
    """Keeps the Kafka records whose timestamp (ingest time) falls in the UTC day."""
    start, end = day_bounds(day)
    return kafka_df.where((F.col("timestamp") >= F.lit(start)) & (F.col("timestamp") < F.lit(end)))


def _header(name: str) -> Column:
    """Value of the first Kafka header called `name`, as a string (null if absent)."""
    matches = F.filter(F.col("headers"), lambda h: h["key"] == F.lit(name))
    return _first(matches)["value"].cast("string")


def _first(array: Column) -> Column:
    """First element or null; unlike element_at it never raises under ANSI mode."""
    return F.try_element_at(array, F.lit(1))


def kafka_to_bronze(kafka_df: DataFrame, kind: str) -> DataFrame:
    """Maps Spark's Kafka source rows (with headers) to Bronze rows of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown Bronze kind {kind!r}; expected one of {KINDS}")
    items = "trades" if kind == TRADES else "tickers"
    item_type = T.ArrayType(TRADE_STRUCT if kind == TRADES else TICKER_STRUCT)

    text = F.col("value").cast("string")
    env = F.from_json(text, ENVELOPE_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT, "mode": "PERMISSIVE"})
    header_type = "array<struct<key:string,value:string>>"
    if "headers" in kafka_df.columns:
        meta = (
            _header("source").alias("source"),
            _header("connection_id").alias("connection_id"),
            F.transform(
                F.col("headers"), lambda h: F.struct(h["key"].alias("key"), h["value"].cast("string").alias("value"))
            ).cast(header_type).alias("headers"),
        )
    else:
        meta = (
            F.lit(None).cast("string").alias("source"),
            F.lit(None).cast("string").alias("connection_id"),
            F.lit(None).cast(header_type).alias("headers"),
        )

    df = kafka_df.select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("key"),
        F.col("value"),
        *meta,
        env.alias("_env"),
    )

    events = F.col("_env.events")
    # Every event's items, flattened: one Kafka record carries one product's data.
    all_items = F.flatten(F.transform(events, lambda e: F.coalesce(e[items], F.array().cast(item_type))))
    df = df.select(
        *[c for c in df.columns if c != "_env"],
        F.col("_env.channel").alias("channel"),
        F.col("_env.timestamp").alias("envelope_timestamp"),
        F.expr("try_cast(_env.sequence_num AS BIGINT)").alias("sequence_num"),
        _first(events)["type"].alias("event_type"),
        F.coalesce(_first(all_items)["product_id"], F.col("key")).alias("product_id"),
        all_items.alias(items),
        F.col(f"_env.{_CORRUPT}").alias("_corrupt"),
        F.coalesce(F.size(events), F.lit(0)).alias("_n_events"),
    )

    reason = (
        F.when(F.col("value").isNull() | (F.length(F.col("value")) == 0), F.lit("empty_value"))
        .when(F.col("_corrupt").isNotNull(), F.lit("not_json"))
        .when(F.col("channel").isNull(), F.lit("missing_channel"))
        .when(F.col("channel") != F.lit(EXPECTED_CHANNEL[kind]), F.lit("unexpected_channel"))
        .when(F.col("envelope_timestamp").isNull(), F.lit("missing_timestamp"))
        .when(F.col("_n_events") <= 0, F.lit("missing_events"))
        .when(F.coalesce(F.size(F.col(items)), F.lit(0)) <= 0, F.lit(f"no_{items}"))
        .when(_first(F.col(items))["product_id"].isNull(), F.lit("missing_product_id"))
        .when(
            F.exists(F.col(items), lambda t: t["product_id"] != _first(F.col(items))["product_id"]),
            F.lit("mixed_products"),
        )
    )
    df = df.withColumn("malformed_reason", reason).withColumn("is_malformed", F.col("malformed_reason").isNotNull())
    df = df.withColumn("ingest_date", F.to_date(F.col("kafka_timestamp")))
    return df.select(*BRONZE_COLUMNS[kind])
