"""Bronze -> Silver: typed, validated, deduplicated trades and ticker, with quarantine reasons.

Pure DataFrame functions, the same with Spark's ANSI mode on or off: every conversion is a
`try_` function, so a bad value becomes a quarantine reason instead of an error.

Every Bronze item (one trade of a market_trades record, one ticker of a ticker record, or the
whole record when it could not be parsed) gets exactly one owner partition (event date x
product) and one disposition there: `silver`, `duplicate` or `quarantined`. Valid items
belong to their event date; items without a usable event time, or later than the allowed
lateness, belong to their ingest date, whose Silver run quarantines them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crypto_assets.transforms.bronze import TICKER, TRADES, UNKNOWN_PRODUCT, owner_product

# First day each product traded on Coinbase (UTC); earlier event times are absurd.
LISTING_DATES = {
    "BTC-USD": date(2015, 1, 26),
    "ETH-USD": date(2016, 5, 18),
    "SOL-USD": date(2021, 6, 17),
}
DEFAULT_LISTING_DATE = date(2015, 1, 26)  # Coinbase Exchange opened

SILVER_TABLE = {TRADES: "trades", TICKER: "ticker"}

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
QUARANTINE_COLUMNS = [
    "product_id", "reason", "detail", "item_json", "value", "event_time_raw", *LINEAGE, "event_date",
]


@dataclass(frozen=True)
class SilverRules:
    allowed_lateness_days: int = 1
    max_future_skew_seconds: int = 300
    listing_dates: dict = field(default_factory=lambda: dict(LISTING_DATES))


def _explode(bronze: DataFrame, items: str) -> DataFrame:
    """One row per item; a record without items (malformed) stays as one row with a null item."""
    df = bronze.withColumn("owner_product", owner_product())
    return df.select(
        "*", F.posexplode_outer(F.col(items)).alias("item_index", "item")
    ).select(
        F.col("owner_product"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.coalesce(F.col("item_index"), F.lit(0)).alias("item_index"),
        F.col("kafka_timestamp").alias("ingest_time"),
        F.col("ingest_date"),
        F.col("source"),
        F.col("connection_id"),
        F.col("sequence_num"),
        F.col("event_type"),
        (F.col("event_type") == F.lit("snapshot")).alias("is_snapshot"),
        F.col("envelope_timestamp"),
        F.col("is_malformed"),
        F.col("malformed_reason"),
        F.col("value"),
        F.col("item"),
    )


def try_double(name: str) -> Column:
    """String -> double, null when not a finite number (NaN and infinities included)."""
    raw = F.expr(f"try_cast(trim({name}) AS DOUBLE)")
    return F.when(~F.isnan(raw) & (F.abs(raw) < F.lit(float("inf"))), raw)


def _listing_date(rules: SilverRules) -> Column:
    expr = F.lit(DEFAULT_LISTING_DATE)
    for product, day in sorted(rules.listing_dates.items()):
        expr = F.when(F.col("owner_product") == F.lit(product), F.lit(day)).otherwise(expr)
    return expr


def _time_rules(rules: SilverRules) -> list[tuple[str, Column]]:
    et = F.col("event_time")
    return [
        ("missing_event_time", et.isNull()),
        ("event_time_before_listing", F.to_date(et) < _listing_date(rules)),
        (
            "event_time_in_future",
            et > F.col("ingest_time") + F.expr(f"INTERVAL {int(rules.max_future_skew_seconds)} SECONDS"),
        ),
    ]


def _first_reason(rules: list[tuple[str, Column]]) -> Column:
    expr = F.lit(None).cast("string")
    for reason, failed in reversed(rules):
        expr = F.when(F.coalesce(failed, F.lit(False)), F.lit(reason)).otherwise(expr)
    return expr


def _assign_owner(df: DataFrame, rules: SilverRules, validity: list[tuple[str, Column]]) -> DataFrame:
    """Adds `reason` (first failing rule, null = valid) and the owner partition (`event_date`, `product_id`).

    An item belongs to its event date when its record is sound and its event time is usable
    and inside the lateness window, else to its ingest date. Either way the owner's Silver
    run reads it (see `bronze_window_days`), so no item is left without an owner.
    """
    event_date = F.to_date(F.col("event_time"))
    late = F.col("ingest_date") > F.date_add(event_date, rules.allowed_lateness_days)
    df = df.withColumn("reason", _first_reason(validity + [("too_late", late)]))
    record_sound = ~F.coalesce(F.col("is_malformed"), F.lit(False)) & F.col("item").isNotNull() & (
        F.col("owner_product") != F.lit(UNKNOWN_PRODUCT)
    )
    time_rules = dict(_time_rules(rules))
    time_usable = (
        record_sound
        & F.col("event_time").isNotNull()
        & ~F.coalesce(time_rules["event_time_before_listing"], F.lit(False))
        & ~F.coalesce(time_rules["event_time_in_future"], F.lit(False))
        & ~F.coalesce(late, F.lit(False))
    )
    return df.withColumn("event_date", F.when(time_usable, event_date).otherwise(F.col("ingest_date"))).withColumn(
        "product_id", F.col("owner_product")
    )


def type_trades(bronze_trades: DataFrame, rules: SilverRules) -> DataFrame:
    """Bronze trade records -> one typed row per trade item with `reason` (null = valid) and owner partition."""
    df = _explode(bronze_trades, "trades")
    df = df.select(
        "*",
        F.expr("try_cast(trim(item.trade_id) AS BIGINT)").alias("trade_id"),
        F.col("item.time").alias("event_time_raw"),
        F.expr("try_to_timestamp(item.time)").alias("event_time"),
        try_double("item.price").alias("price"),
        try_double("item.size").alias("size"),
        F.upper(F.trim(F.col("item.side"))).alias("side"),
    )
    validity = [
        ("malformed_record", F.col("is_malformed") | F.col("item").isNull()),
        ("bad_product_id", F.col("owner_product") == F.lit(UNKNOWN_PRODUCT)),
        ("bad_trade_id", F.col("trade_id").isNull() | (F.col("trade_id") < 0)),
        *_time_rules(rules),
        ("bad_price", F.col("price").isNull()),
        ("non_positive_price", F.col("price") <= 0),
        ("bad_size", F.col("size").isNull()),
        ("non_positive_size", F.col("size") <= 0),
        ("unknown_side", ~F.coalesce(F.col("side"), F.lit("")).isin("BUY", "SELL")),
    ]
    df = _assign_owner(df, rules, validity)
    return df.withColumn("trade_time", F.col("event_time")).withColumn("notional", F.col("price") * F.col("size"))


def type_ticker(bronze_ticker: DataFrame, rules: SilverRules) -> DataFrame:
    """Bronze ticker records -> one typed row per ticker item; event time from the envelope."""
    df = _explode(bronze_ticker, "tickers")
    df = df.select(
        "*",
        F.col("envelope_timestamp").alias("event_time_raw"),
        F.expr("try_to_timestamp(envelope_timestamp)").alias("event_time"),
        *[try_double(f"item.{c}").alias(c) for c in TICKER_NUMERIC],
    )
    quote_bad = (
        (F.col("best_bid").isNotNull() & (F.col("best_bid") <= 0))
        | (F.col("best_ask").isNotNull() & (F.col("best_ask") <= 0))
    )
    validity = [
        ("malformed_record", F.col("is_malformed") | F.col("item").isNull()),
        ("bad_product_id", F.col("owner_product") == F.lit(UNKNOWN_PRODUCT)),
        *_time_rules(rules),
        ("bad_price", F.col("price").isNull()),
        ("non_positive_price", F.col("price") <= 0),
        ("bad_quote", quote_bad),
    ]
    df = _assign_owner(df, rules, validity)
    return df.withColumn("content_hash", content_hash(df))


def content_hash(df: DataFrame) -> Column:
    """SHA-256 of what the exchange said: the envelope time, the event type and every ticker field
    as sent (not lineage). Fields are joined by \\x01 with \\x00 standing for null, so a missing
    field never shifts the others (half the cost of hashing the item as JSON)."""
    fields = [F.col("envelope_timestamp"), F.col("event_type")] + [
        F.col(f"item.{name}") for name in df.schema["item"].dataType.names
    ]
    return F.sha2(F.concat_ws("\x01", *[F.coalesce(c.cast("string"), F.lit("\x00")) for c in fields]), 256)


def dedup(typed: DataFrame, key: list[str]) -> DataFrame:
    """Marks `is_duplicate` among valid rows: the earliest ingested copy of each key wins.

    (One window over every row measured faster than shuffling only the keys and joining the few
    losing copies back, because that needs the typed rows cached first.)"""
    # Partitioning by reason too keeps quarantined copies from out-ranking a valid one.
    order = Window.partitionBy(*key, "reason").orderBy("ingest_time", "kafka_partition", "kafka_offset", "item_index")
    return typed.withColumn(
        "is_duplicate", F.col("reason").isNull() & (F.row_number().over(order) > 1)
    )


def disposition() -> Column:
    return (
        F.when(F.col("reason").isNotNull(), F.lit("quarantined"))
        .when(F.col("is_duplicate"), F.lit("duplicate"))
        .otherwise(F.lit("silver"))
    )


def silver_rows(marked: DataFrame, kind: str) -> DataFrame:
    columns = SILVER_TRADE_COLUMNS if kind == TRADES else SILVER_TICKER_COLUMNS
    return marked.where(F.col("disposition") == "silver").select(*columns)


def quarantine_rows(marked: DataFrame) -> DataFrame:
    detail = F.when(F.col("reason") == "malformed_record", F.col("malformed_reason"))
    return marked.where(F.col("disposition") == "quarantined").select(
        "product_id", "reason", detail.alias("detail"), "item_json", "value", "event_time_raw", *LINEAGE, "event_date",
    )


def _slim(typed: DataFrame, kind: str) -> DataFrame:
    """Only what Silver, quarantine and the counts need; raw payloads kept for rejected items only
    (they are what the dedup shuffle would otherwise move for every row)."""
    rejected = F.col("reason").isNotNull()
    keep = SILVER_TRADE_COLUMNS if kind == TRADES else SILVER_TICKER_COLUMNS
    return typed.select(
        *keep, "reason", "malformed_reason", "event_time_raw",
        F.when(rejected, F.col("value")).alias("value"),
        F.when(rejected, F.to_json("item")).alias("item_json"),
    )


def mark(bronze: DataFrame, kind: str, rules: SilverRules) -> DataFrame:
    """Types, validates and deduplicates; adds `disposition` (silver | duplicate | quarantined)."""
    if kind == TRADES:
        typed = type_trades(bronze, rules)
        key = ["product_id", "trade_id"]
    else:
        typed = type_ticker(bronze, rules)
        key = ["product_id", "content_hash"]
    return dedup(_slim(typed, kind), key).withColumn("disposition", disposition())


def write_summary(bronze: DataFrame, kind: str, rules: SilverRules) -> DataFrame:
    """What some Bronze rows add, in one pass: per (ingest_date, Kafka partition, owning Silver
    partition) the items, the records (each counted once, with its first item) and the offset range.
    Owners are assigned by the same rules Silver uses."""
    typed = type_trades(bronze, rules) if kind == TRADES else type_ticker(bronze, rules)
    return typed.groupBy("ingest_date", "kafka_partition", "event_date", "product_id").agg(
        F.count(F.lit(1)).alias("items"),
        F.sum((F.col("item_index") == 0).cast("long")).alias("records"),
        F.min("kafka_offset").alias("lo"),
        F.max("kafka_offset").alias("hi"),
    )
