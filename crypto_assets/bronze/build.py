"""One Bronze day: read its Kafka records, map them with `bronze.transforms`, rewrite the partition.

No Dagster here: the Bronze assets and the Glue batch script both call `build_bronze_day`,
and get back the statistics they report (`crypto_assets.bronze.report.bronze_report`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crypto_assets.bronze.kafka_source import KafkaAccess, OffsetWindow
from crypto_assets.bronze.summary import write_summary
from crypto_assets.bronze.transforms import filter_ingest_day, kafka_to_bronze
from crypto_assets.contracts.names import BRONZE_TABLE
from crypto_assets.contracts.partitioning import SilverRules, day_bounds, owner_product
from crypto_assets.lake.commits import commit_from_summary, write_commit
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)


class BronzeIntegrityError(RuntimeError):
    """Rewriting the partition would lose rows Kafka no longer holds."""


@dataclass
class BronzeDayStats:
    kind: str
    day: str
    path: str
    rows: int = 0
    malformed: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # kafka partition -> (min, max)
    products: list[str] = field(default_factory=list)
    files: int = 0
    bytes_written: int = 0
    kafka_window_records: int = 0
    new_rows: int = 0  # rows this run added to the partition (offsets beyond what it held)
    commit: str | None = None  # name of the Bronze commit written for them


def read_kafka_window(spark: SparkSession, kafka: KafkaAccess, window: OffsetWindow) -> DataFrame:
    # Keys are products, so a few busy products can fill one Kafka partition and leave others
    # empty; splitting offset ranges over twice the cores keeps every core parsing.
    splits = 2 * (os.cpu_count() or 2)
    reader = (
        spark.read.format("kafka")
        .option("minPartitions", str(splits))
    )
    for k, v in {**kafka.spark_options(), **window.spark_options()}.items():
        reader = reader.option(k, v)
    return reader.load()


def _existing_offsets(spark: SparkSession, lake: LakeStore, path: str) -> dict[int, tuple[int, int]]:
    if not lake.data_files(path):
        return {}
    rows = (
        spark.read.parquet(path)
        .groupBy("partition")
        .agg(F.min("offset").alias("lo"), F.max("offset").alias("hi"))
        .collect()
    )
    return {r["partition"]: (r["lo"], r["hi"]) for r in rows}


def _guard_against_loss(existing: dict[int, tuple[int, int]], window: OffsetWindow, kind: str, day: str) -> None:
    """Refuses to rewrite a day whose records Kafka has already deleted (retention) or lost."""
    for partition, (lo, hi) in existing.items():
        earliest = window.earliest.get(partition)
        latest = window.latest.get(partition)
        if earliest is None or lo < earliest or hi >= (latest or 0):
            raise BronzeIntegrityError(
                f"Bronze {kind} {day} holds offsets {lo}..{hi} of Kafka partition {partition}, but the topic "
                f"{window.topic!r} now holds offsets {earliest}..{(latest or 0) - 1} (retention or a re-created topic): "
                f"keeping the existing partition; delete it by hand to rebuild it from what Kafka still has"
            )


def build_bronze_day(
    spark: SparkSession, kafka: KafkaAccess, lake: LakeStore, kind: str, day: date, rules: SilverRules,
) -> BronzeDayStats:
    """Rewrites `bronze/<table>/ingest_date=<day>/` whole from the Kafka records of that UTC day, then
    commits what it added (see `crypto_assets.lake.commits`) with the Silver partitions `rules` assign it to."""
    table = BRONZE_TABLE[kind]
    table_path = lake.table_path("bronze", table)
    part_path = lake.partition_path("bronze", table, ingest_date=day.isoformat())
    start, end = day_bounds(day)
    window = kafka.offset_window(kafka.topic_for(kind), start, end)
    stats = BronzeDayStats(kind=kind, day=day.isoformat(), path=part_path, kafka_window_records=window.record_count)

    existing = _existing_offsets(spark, lake, part_path)
    _guard_against_loss(existing, window, kind, stats.day)

    if window.record_count == 0:
        lake.delete(part_path)
        log.info("bronze %s %s: no Kafka records in the window; partition is empty", kind, day)
        return stats

    bronze = kafka_to_bronze(filter_ingest_day(read_kafka_window(spark, kafka, window), day), kind)
    # Offset ranges are split deterministically, so the same input gives the same files, rows
    # in offset order within each.
    (
        bronze.sortWithinPartitions("partition", "offset")
        .write.mode("overwrite")
        .partitionBy("ingest_date")
        .parquet(table_path)
    )
    if not lake.data_files(part_path):
        # Nothing of this day fell inside the widened window: make sure no stale partition stays.
        lake.delete(part_path)
        return stats
    _collect_stats(spark, lake, stats)
    _commit_new_rows(spark, lake, stats, existing, rules)
    return stats


def _commit_new_rows(
    spark: SparkSession, lake: LakeStore, stats: BronzeDayStats, existing: dict[int, tuple[int, int]],
    rules: SilverRules,
) -> None:
    """Commits the rows past the offsets the partition held before, so the sensor only wakes the
    Silver partitions that actually gained data (a re-run that adds nothing commits nothing)."""
    df = spark.read.parquet(stats.path)
    is_new = F.lit(True)
    for partition, (_, hi) in existing.items():
        is_new = F.when(F.col("partition") == F.lit(partition), F.col("offset") > F.lit(hi)).otherwise(is_new)
    new = df.where(is_new).withColumn("ingest_date", F.lit(stats.day).cast("date"))
    summary = write_summary(new, stats.kind, rules).collect()
    if not summary:
        return
    commit = write_commit(lake, commit_from_summary(stats.kind, "batch", summary))
    stats.new_rows = commit.rows
    stats.commit = commit.name


def _collect_stats(spark: SparkSession, lake: LakeStore, stats: BronzeDayStats) -> None:
    """Figures from what was written, so metadata describes the partition, not the plan."""
    df = spark.read.parquet(stats.path)
    per_partition = df.groupBy("partition").agg(
        F.count(F.lit(1)).alias("n"), F.min("offset").alias("lo"), F.max("offset").alias("hi"),
        F.sum(F.col("is_malformed").cast("int")).alias("bad"),
    ).collect()
    stats.rows = sum(r["n"] for r in per_partition)
    stats.malformed = sum(r["bad"] or 0 for r in per_partition)
    stats.offsets = {r["partition"]: (r["lo"], r["hi"]) for r in sorted(per_partition, key=lambda r: r["partition"])}
    if stats.malformed:
        stats.malformed_by_reason = {
            r["malformed_reason"]: r["count"]
            for r in df.where("is_malformed").groupBy("malformed_reason").count().collect()
        }
    stats.products = sorted(r["p"] for r in df.select(owner_product().alias("p")).distinct().collect())
    files = lake.data_files(stats.path)
    stats.files = len(files)
    stats.bytes_written = sum(size for _, size in files)
