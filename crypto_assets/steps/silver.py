"""One Silver date for one or more products: read the Bronze window, mark, write, measure.

No Dagster here: the Silver assets (one product per run) and the Glue/benchmark scripts
(several products in one pass) call `build_silver`. Everything reported is measured on what
was written, so the reconciliation check is a real check of the files.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crypto_assets.storage import LakeStore as LakeResource  # the Dagster resource and Glue share it
from crypto_assets.transforms.bronze import BRONZE_TABLE, TRADES, day_bounds, owner_product
from crypto_assets.transforms.silver import SILVER_TABLE, SilverRules, mark, quarantine_rows, silver_rows

log = logging.getLogger(__name__)


class BronzeMissingError(RuntimeError):
    """The Bronze partition Silver needs has not been written; the message says which and what to do."""


@dataclass
class SilverStats:
    kind: str
    product_id: str
    day: str
    path: str
    quarantine_path: str
    bronze_days: list[str] = field(default_factory=list)
    window_items: int = 0  # Bronze items of this product in the window (independent count)
    rows: int = 0  # written to Silver (read back)
    duplicates: int = 0
    conflicting_duplicates: int = 0
    quarantined: int = 0  # written to quarantine (read back)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    other_partitions: int = 0  # items of the window owned by other event dates
    min_event_time: str | None = None
    max_event_time: str | None = None
    # Written-data checks
    duplicate_keys: int = 0
    null_keys: dict[str, int] = field(default_factory=dict)
    non_positive: dict[str, int] = field(default_factory=dict)
    crossed_quotes: int = 0
    trade_id_gaps: dict = field(default_factory=dict)
    preview: list[dict] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.window_items == self.rows + self.duplicates + self.quarantined + self.other_partitions


def bronze_window_days(day: date, rules: SilverRules) -> list[date]:
    """Ingest days read for event day D: D-1 (its last minutes only), D .. D+lateness."""
    return [day + timedelta(days=i) for i in range(-1, rules.allowed_lateness_days + 1)]


def read_bronze_window(
    spark: SparkSession, lake: LakeResource, kind: str, day: date, rules: SilverRules
) -> tuple[DataFrame | None, list[str]]:
    table = BRONZE_TABLE[kind]
    table_path = lake.table_path("bronze", table)
    present, files = [], []
    for d in bronze_window_days(day, rules):
        path = lake.partition_path("bronze", table, ingest_date=d.isoformat())
        found = lake.data_files(path)
        if found:
            present.append(d)
            files += [f for f, _ in found]
    if not present:
        return None, []
    # The files as listed now, not the folders: the streaming job keeps appending to today's folder,
    # and every Spark action (each one re-plans under Spark Connect) must see the same snapshot, or
    # the window count and the rows written would not reconcile.
    df = spark.read.option("basePath", table_path).parquet(*files)
    start, _ = day_bounds(day)
    # From D-1 only records ingested within the clock-skew allowance before midnight can belong to D.
    earliest = start - timedelta(seconds=rules.max_future_skew_seconds)
    df = df.where((F.col("ingest_date") >= F.lit(day)) | (F.col("kafka_timestamp") >= F.lit(earliest)))
    return df, [d.isoformat() for d in present]


def _write_partitions(df: DataFrame, table_path: str, sort_cols: list[str]) -> None:
    # No repartition: each task writes its share of a partition, in a deterministic order, so the
    # write needs no second shuffle and keeps both cores busy even for a single product.
    (
        df.sortWithinPartitions("product_id", "event_date", *sort_cols)
        .write.mode("overwrite")
        .partitionBy("product_id", "event_date")
        .parquet(table_path)
    )


def build_silver(
    spark: SparkSession,
    lake: LakeResource,
    kind: str,
    day: date,
    products: list[str],
    rules: SilverRules,
    require_bronze_day: bool = True,
) -> dict[str, SilverStats]:
    """Rewrites Silver and quarantine partitions (day, p) for each product p, whole."""
    table = SILVER_TABLE[kind]
    silver_table = lake.table_path("silver", table)
    quarantine_table = lake.table_path("quarantine", table)
    stats = {
        p: SilverStats(
            kind=kind, product_id=p, day=day.isoformat(),
            path=lake.partition_path("silver", table, product_id=p, event_date=day.isoformat()),
            quarantine_path=lake.partition_path("quarantine", table, product_id=p, event_date=day.isoformat()),
        )
        for p in products
    }
    bronze, days = read_bronze_window(spark, lake, kind, day, rules)
    if require_bronze_day and day.isoformat() not in days:
        raise BronzeMissingError(
            f"Bronze {BRONZE_TABLE[kind]} ingest_date={day} has not been written yet: materialize "
            f"bronze_{kind} for {day} first (Silver {day} reads Bronze {day} .. "
            f"{day + timedelta(days=rules.allowed_lateness_days)})"
        )
    for s in stats.values():
        s.bronze_days = days
    if bronze is None:
        for s in stats.values():
            lake.delete(s.path)
            lake.delete(s.quarantine_path)
        return stats

    timings, clock = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name], clock = round(time.perf_counter() - clock, 2), time.perf_counter()

    bronze = bronze.where(owner_product().isin(products))
    items = "trades" if kind == TRADES else "tickers"
    window_counts = (
        bronze.groupBy(owner_product().alias("p"))
        .agg(F.sum(F.greatest(F.coalesce(F.size(items), F.lit(0)), F.lit(1))).alias("n"))
        .collect()
    )
    for r in window_counts:
        stats[r["p"]].window_items = int(r["n"])
    lap("window_count")

    marked = mark(bronze, kind, rules).persist()
    try:
        mine = marked.where(F.col("event_date") == F.lit(day))
        _write_partitions(
            silver_rows(mine, kind), silver_table,
            ["trade_time", "trade_id"] if kind == TRADES else ["event_time", "kafka_partition", "kafka_offset", "item_index"],
        )
        lap("silver_write")
        _write_partitions(quarantine_rows(mine), quarantine_table, ["kafka_partition", "kafka_offset", "item_index"])
        lap("quarantine_write")
        for r in (
            marked.groupBy("product_id", (F.col("event_date") == F.lit(day)).alias("mine"), "disposition")
            .count()
            .collect()
        ):
            s = stats[r["product_id"]]
            if not r["mine"]:
                s.other_partitions += r["count"]
            elif r["disposition"] == "duplicate":
                s.duplicates = r["count"]
        lap("counts")
        if kind == TRADES:
            # Duplicates are few (a whole day re-sent would be ~100 MB): broadcast them to the kept copies.
            content = ["price", "size", "side", "trade_time"]
            dups = mine.where(F.col("disposition") == "duplicate").select(
                "product_id", "trade_id", *[F.col(c).alias(f"dup_{c}") for c in content]
            )
            kept = mine.where(F.col("disposition") == "silver").select("product_id", "trade_id", *content)
            differs = F.lit(False)
            for c in content:
                differs = differs | ~F.col(c).eqNullSafe(F.col(f"dup_{c}"))
            conflicts = (
                kept.join(F.broadcast(dups), ["product_id", "trade_id"]).where(differs)
                .select("product_id", "trade_id").distinct().groupBy("product_id").count().collect()
            )
            for r in conflicts:
                stats[r["product_id"]].conflicting_duplicates = r["count"]
            lap("conflicts")
    finally:
        marked.unpersist()

    for s in stats.values():
        for path in (s.path, s.quarantine_path):
            if not lake.data_files(path):
                lake.delete(path)  # a partition that became empty must not keep old files
        _measure(lake, kind, s)
    lap("measure")
    log.info("silver %s %s %s timings (s): %s", kind, day, ",".join(products), timings)
    return stats


def _measure(lake: LakeResource, kind: str, s: SilverStats) -> None:
    """Counts and checks read back from the written files (Arrow: no Spark job for a few columns)."""
    quarantine = lake.read_table(s.quarantine_path, columns=["reason"])
    if quarantine is not None:
        reasons = quarantine.column("reason").to_pandas().value_counts()
        s.quarantined_by_reason = {str(k): int(v) for k, v in reasons.items()}
        s.quarantined = int(reasons.sum())
    time_col = "trade_time" if kind == TRADES else "event_time"
    key = "trade_id" if kind == TRADES else "content_hash"
    key_cols = [key, time_col, "price"] + (["size", "side"] if kind == TRADES else [])
    preview_cols = (
        ["trade_time", "trade_id", "price", "size", "side", "notional", "is_snapshot"]
        if kind == TRADES
        else ["event_time", "price", "best_bid", "best_ask", "best_bid_quantity", "best_ask_quantity", "volume_24_h"]
    )
    table = lake.read_table(s.path, columns=list(dict.fromkeys(key_cols + preview_cols)))  # not the lineage strings
    if table is None:
        return
    df = table.to_pandas()
    s.rows = len(df)
    keys = table.column(key)  # Arrow's hash table: several times faster than pandas on 64-character hashes
    s.duplicate_keys = len(keys) - keys.null_count - pc.count_distinct(keys, mode="only_valid").as_py()
    if s.rows:
        s.min_event_time = df[time_col].min().isoformat()
        s.max_event_time = df[time_col].max().isoformat()
    s.null_keys = {c: int(df[c].isna().sum()) for c in key_cols}
    s.non_positive = {"price": int((df["price"] <= 0).sum())}
    if kind == TRADES:
        s.non_positive["size"] = int((df["size"] <= 0).sum())
        ids = np.unique(df["trade_id"].dropna().to_numpy(dtype=np.int64))
        if len(ids):
            steps = np.diff(ids)
            missing = int((steps - 1).sum())
            s.trade_id_gaps = {"first_trade_id": int(ids[0]), "last_trade_id": int(ids[-1]), "missing_trade_ids": missing}
            if missing:
                top = np.argsort(-(steps - 1), kind="stable")[:5]
                s.trade_id_gaps["largest_gaps"] = [
                    {"after_trade_id": int(ids[i]), "missing": int(steps[i] - 1)} for i in top if steps[i] > 1
                ]
    else:
        s.crossed_quotes = int((df["best_bid"] > df["best_ask"]).sum())
    s.preview = df.sort_values([time_col]).head(5)[preview_cols].to_dict("records")
