"""One Gold date for one or more products: read Silver D-1..D+1, compute, write, check.

No Dagster here; the Gold asset (one product per run) and the benchmark (several products in
one pass) call `build_gold`. Checks are measured on the written files.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from crypto_assets.checks.gold_checks import LeakageResult, prefix_invariance, sample_trade_ids
from crypto_assets.features.registry import FEATURES, gold_columns
from crypto_assets.resources.lake import LakeResource
from crypto_assets.transforms.gold import LOOKBACK_SECONDS, LOOKBACK_TRADES, TICKER_FIELDS, gold_features

log = logging.getLogger(__name__)


@dataclass
class GoldStats:
    product_id: str
    day: str
    path: str
    silver_days: list[str] = field(default_factory=list)
    ticker_days: list[str] = field(default_factory=list)
    empty_reason: str | None = None
    silver_rows: int = 0  # Silver trades of the day
    excluded_lookback: int = 0  # computed independently of the writer
    rows: int = 0  # written (read back)
    training_ready: int = 0
    tickers_in_input: int = 0
    rows_without_quote: int = 0
    min_trade_time: str | None = None
    max_trade_time: str | None = None
    schema_problems: list[str] = field(default_factory=list)
    duplicate_keys: int = 0
    nulls_when_full: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    infinities: dict[str, int] = field(default_factory=dict)
    leakage: LeakageResult | None = None
    preview: list[dict] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.silver_rows == self.rows + self.excluded_lookback


def _existing(lake: LakeResource, table: str, product: str, days: list[date]) -> list[tuple[date, str]]:
    out = []
    for d in days:
        path = lake.partition_path("silver", table, product_id=product, event_date=d.isoformat())
        if lake.data_files(path):
            out.append((d, path))
    return out


def _read(spark: SparkSession, lake: LakeResource, table: str, parts: list[tuple[date, str]]) -> DataFrame:
    return spark.read.option("basePath", lake.table_path("silver", table)).parquet(*[p for _, p in parts])


def _with_ticker_seq(tickers: DataFrame) -> DataFrame:
    """A total order among tickers with equal event time: ingestion order."""
    order = ["event_time", "ingest_time", "kafka_partition", "kafka_offset", "item_index"]
    return tickers.withColumn(
        "ticker_seq", F.row_number().over(Window.partitionBy("product_id").orderBy(*order)).cast("long")
    )


def build_gold(
    spark: SparkSession,
    lake: LakeResource,
    day: date,
    products: list[str],
    quote_join: str = "asof",
    leakage_samples: int = 16,
) -> dict[str, GoldStats]:
    gold_table = lake.table_path("gold", "features")
    stats = {
        p: GoldStats(p, day.isoformat(), lake.partition_path("gold", "features", product_id=p, event_date=day.isoformat()))
        for p in products
    }
    trade_inputs, ticker_inputs = {}, {}
    for p in products:
        s = stats[p]
        trade_parts = _existing(lake, "trades", p, [day - timedelta(days=1), day, day + timedelta(days=1)])
        ticker_parts = _existing(lake, "ticker", p, [day - timedelta(days=1), day])
        s.silver_days = [d.isoformat() for d, _ in trade_parts]
        s.ticker_days = [d.isoformat() for d, _ in ticker_parts]
        if day.isoformat() not in s.silver_days:
            s.empty_reason = f"Silver trades {p} {day} is missing or empty: nothing to compute"
            lake.delete(s.path)
            continue
        trade_inputs[p] = _read(spark, lake, "trades", trade_parts)
        if ticker_parts:
            ticker_inputs[p] = _read(spark, lake, "ticker", ticker_parts)
    todo = list(trade_inputs)
    if not todo:
        return stats

    trades = _union(trade_inputs[p] for p in todo).select(
        "product_id", "trade_id", "trade_time", "price", "size", "side", "event_date"
    )
    ticker_cols = ["product_id", "event_time", "ingest_time", "kafka_partition", "kafka_offset", "item_index", *TICKER_FIELDS]
    if ticker_inputs:
        tickers = _union(ticker_inputs.values()).select(*ticker_cols)
    else:
        tickers = spark.createDataFrame([], _ticker_schema())
    tickers = _with_ticker_seq(tickers)

    clock = time.perf_counter()
    gold = gold_features(trades, tickers, day, quote_join)
    (
        gold.sortWithinPartitions("product_id", "event_date", "trade_time", "trade_id")
        .write.mode("overwrite")
        .partitionBy("product_id", "event_date")
        .parquet(gold_table)
    )

    timings = {"compute_and_write": time.perf_counter() - clock}
    clock = time.perf_counter()
    _reconcile(trades, day, stats, todo)
    timings["reconcile"] = time.perf_counter() - clock
    for p in todo:
        s = stats[p]
        if not lake.data_files(s.path):
            lake.delete(s.path)
        clock = time.perf_counter()
        s.tickers_in_input = ticker_inputs[p].count() if p in ticker_inputs else 0
        _measure(lake, s)
        timings[f"measure_{p}"] = time.perf_counter() - clock
        clock = time.perf_counter()
        if s.rows and leakage_samples:
            s.leakage = _leakage(lake, s, trades, tickers, quote_join, leakage_samples)
        timings[f"leakage_{p}"] = time.perf_counter() - clock
    log.info("gold %s timings (s): %s", day, {k: round(v, 2) for k, v in timings.items()})
    return stats


def _union(frames):
    frames = list(frames)
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def _ticker_schema() -> str:
    return (
        "product_id string, event_time timestamp, ingest_time timestamp, kafka_partition int, kafka_offset bigint, "
        "item_index int, " + ", ".join(f"{c} double" for c in TICKER_FIELDS)
    )


def _reconcile(trades: DataFrame, day: date, stats: dict[str, GoldStats], products: list[str]) -> None:
    """Silver trades of D and how many of them lack the lookback, counted without the feature code.

    Rows lacking the lookback form a prefix of the product's trades: the first LOOKBACK_TRADES
    of the input and those within LOOKBACK_SECONDS of the first trade.
    """
    start = F.lit(day)
    agg = trades.groupBy("product_id").agg(
        F.sum((F.col("event_date") == start).cast("int")).alias("n_day"),
        F.sum((F.col("event_date") < start).cast("int")).alias("n_before"),
        F.min("trade_time").alias("t0"),
    ).collect()
    first = {r["product_id"]: r for r in agg}
    for p in products:
        r = first[p]
        s = stats[p]
        s.silver_rows = int(r["n_day"] or 0)
        by_rank = min(max(LOOKBACK_TRADES - int(r["n_before"] or 0), 0), s.silver_rows)
        horizon = r["t0"] + timedelta(seconds=LOOKBACK_SECONDS)
        by_time = trades.where(
            (F.col("product_id") == p) & (F.col("event_date") == start) & (F.col("trade_time") < F.lit(horizon))
        ).count()
        s.excluded_lookback = max(by_rank, by_time)


_ARROW_TYPES = {"double": "double", "int": "int32", "bigint": "int64", "string": "string", "boolean": "bool",
                "timestamp": "timestamp[us, tz=UTC]"}


def _measure(lake: LakeResource, s: GoldStats) -> None:
    """Schema, keys, nulls, ranges and a preview, read back from the written files (Arrow, no Spark job)."""
    if not lake.data_files(s.path):
        return
    table = lake.read_table(s.path)
    actual = {f.name: str(f.type) for f in table.schema}
    s.schema_problems = [
        f"{name}: expected {_ARROW_TYPES[typ]}, found {actual.get(name, 'missing')}"
        for name, typ in gold_columns()
        if name not in ("product_id", "event_date") and actual.get(name) != _ARROW_TYPES[typ]
    ]
    df = table.to_pandas()
    s.rows = len(df)
    s.duplicate_keys = int(df["trade_id"].duplicated().sum())
    s.training_ready = int(df["is_training_ready"].sum())
    s.rows_without_quote = int(df["best_bid"].isna().sum()) if "best_bid" in df else 0
    if s.rows:
        s.min_trade_time = df["trade_time"].min().isoformat()
        s.max_trade_time = df["trade_time"].max().isoformat()
    for f in FEATURES:
        if f.name not in df:
            continue
        col = df[f.name]
        if f.never_null_when_full and (nulls := int(col.isna().sum())):
            s.nulls_when_full[f.name] = nulls
        values = col.to_numpy(dtype=float, na_value=np.nan)
        if f.dtype == "double" and (bad := int(np.isinf(values).sum())):
            s.infinities[f.name] = bad
        if f.bounds:
            outside = int(((values < f.bounds[0]) | (values > f.bounds[1])).sum())
            if outside:
                s.out_of_range[f.name] = outside
    cols = ["trade_time", "trade_id", "price", "size", "side", "ma_10_trades", "rsi_14", "vwap_50", "best_bid", "best_ask",
            "future_price_10", "is_training_ready"]
    s.preview = df.sort_values(["trade_time", "trade_id"]).head(5)[cols].to_dict("records")


def _leakage(lake: LakeResource, s: GoldStats, trades: DataFrame, tickers: DataFrame, quote_join: str, k: int) -> LeakageResult:
    gold = lake.read_table(s.path).to_pandas().sort_values(["trade_time", "trade_id"], kind="mergesort")
    chosen = sample_trade_ids(gold["trade_id"].to_numpy(), k, seed=int(s.day.replace("-", "")))
    written = gold[gold["trade_id"].isin(chosen)]
    t = trades.where(F.col("product_id") == s.product_id).drop("event_date").toPandas()
    kp = tickers.where(F.col("product_id") == s.product_id).toPandas()
    return prefix_invariance(t, kp, written, quote_join)
