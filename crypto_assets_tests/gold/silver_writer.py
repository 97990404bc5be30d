"""Writes hand-made trades and tickers as Silver partitions, in Silver's schema (for Gold tests)."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F

from crypto_assets.silver.transforms import SILVER_TICKER_COLUMNS, SILVER_TRADE_COLUMNS


def write_silver(spark, lake_root: str, trades: pd.DataFrame, tickers: pd.DataFrame | None = None) -> None:
    t = trades.copy()
    t["notional"] = t["price"] * t["size"]
    _lineage(t, "trade_time")
    sdf = spark.createDataFrame(t).withColumn("event_date", F.to_date("trade_time"))
    sdf.select(*SILVER_TRADE_COLUMNS).write.mode("overwrite").partitionBy("product_id", "event_date").parquet(
        f"{lake_root}/silver/trades")
    if tickers is not None and len(tickers):
        k = tickers.copy()
        for c in ("price", "low_24_h", "high_24_h", "low_52_w", "high_52_w", "price_percent_chg_24_h", "volume_24_h"):
            if c not in k:
                k[c] = 1.0
        k["content_hash"] = [f"h{i}" for i in range(len(k))]
        _lineage(k, "event_time", order=k["ticker_seq"].to_numpy() if "ticker_seq" in k else None)
        kdf = spark.createDataFrame(k.drop(columns=[c for c in ("ticker_seq",) if c in k])).withColumn(
            "event_date", F.to_date("event_time"))
        kdf.select(*SILVER_TICKER_COLUMNS).write.mode("overwrite").partitionBy("product_id", "event_date").parquet(
            f"{lake_root}/silver/ticker")


def _lineage(df: pd.DataFrame, time_col: str, order=None) -> None:
    n = len(df)
    df["kafka_topic"] = "t"
    df["kafka_partition"] = 0
    # Ingestion order = the given tie-break order (ticker_seq) or the row order.
    df["kafka_offset"] = order if order is not None else range(n)
    df["item_index"] = 0
    df["ingest_time"] = df[time_col]
    df["ingest_date"] = df[time_col].dt.date
    df["source"] = "test"
    df["connection_id"] = "c"
    df["sequence_num"] = range(n)
    df["event_type"] = "update"
    df["is_snapshot"] = False
