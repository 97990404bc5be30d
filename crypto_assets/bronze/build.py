"""One Bronze day: read its Kafka records, map them with `bronze.transforms`, replace the Iceberg partition.

The day's rows replace `ingest_date=<day>` of `bronze.kafka_<kind>` in one commit, whose provenance names the Silver partitions the
rows past the previously held offsets feed. No Dagster here: the Bronze assets and the Glue batch
script both call `build_bronze_day`, and get back the statistics they report (`bronze.report`).

Two paths give the same rows and the same provenance: a window of at most `arrow_max_records` records
is read with kafka-python and mapped in Python (`bronze.arrow_source`), then committed with pyiceberg,
without starting Spark (the session is asked for only on the Spark path); a bigger window (or one
holding a record the Arrow path cannot read exactly as Spark does) goes through Spark's Kafka source,
`bronze.transforms` and Spark's dynamic partition overwrite through the lake's catalog.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crypto_assets.bronze.arrow_source import read_bronze_window
from crypto_assets.bronze.kafka_source import KafkaAccess, OffsetWindow
from crypto_assets.bronze.summary import arrow_summary_rows, spark_write_options, summary_properties, write_summary
from crypto_assets.bronze.transforms import filter_ingest_day, kafka_to_bronze
from crypto_assets.contracts.names import bronze_asset
from crypto_assets.contracts.ownership import owner_products
from crypto_assets.contracts.partitioning import SilverRules, day_bounds
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.spark import lake_session, spark_commit, spark_table
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)

TOKEN = "write-token"  # a provenance entry naming one write, so it finds its own snapshot afterwards


class BronzeIntegrityError(RuntimeError):
    """Rewriting the partition would lose rows Kafka no longer holds."""


@dataclass
class BronzeDayStats:
    kind: str
    day: str
    table: str  # bronze.kafka_trades
    path: str = ""  # where the partition's data files are (inside the table's location)
    rows: int = 0
    malformed: int = 0
    malformed_by_reason: dict[str, int] = field(default_factory=dict)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # kafka partition -> (min, max)
    products: list[str] = field(default_factory=list)
    files: int = 0
    bytes_written: int = 0
    kafka_window_records: int = 0
    new_rows: int = 0  # Kafka records this run added to the partition (offsets beyond what it held)
    snapshot_id: int | None = None  # the snapshot the run produced (None: nothing committed)


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


def _existing_offsets(table, day: date) -> dict[int, tuple[int, int]]:
    held = snapshots.read(table, {"ingest_date": day}, columns=["partition", "offset"])
    if held.num_rows == 0:
        return {}
    agg = held.group_by("partition").aggregate([("offset", "min"), ("offset", "max")])
    return {int(p): (int(lo), int(hi)) for p, lo, hi in zip(agg["partition"].to_pylist(),
                                                            agg["offset_min"].to_pylist(), agg["offset_max"].to_pylist())}


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
    spark: SparkSession | Callable[[], SparkSession], kafka: KafkaAccess, lake: LakeStore, kind: str, day: date,
    rules: SilverRules, run_id: str = "", arrow_max_records: int = 0,
) -> BronzeDayStats:
    """Replaces `ingest_date=<day>` of Bronze `kind` with the Kafka records of that UTC day in one commit,
    whose provenance names the Silver partitions (by `rules`) of the rows it added.

    `spark` is a session or what gives one (called only when Spark reads the window); a window of at
    most `arrow_max_records` records is read without Spark (0: always Spark)."""
    t = bronze_table(kind)
    config = lake.catalog_config
    table = lake.table(t)
    start, end = day_bounds(day)
    window = kafka.offset_window(kafka.topic_for(kind), start, end)
    stats = BronzeDayStats(kind=kind, day=day.isoformat(), table=t.identifier, kafka_window_records=window.record_count,
                          path=f"{snapshots.local_path(config.location(t))}/data/ingest_date={day.isoformat()}")

    existing = _existing_offsets(table, day)
    _guard_against_loss(existing, window, kind, stats.day)
    provenance = Provenance(asset=bronze_asset(kind), partition=stats.day, run_id=run_id,
                            extra={"writer": "batch", "partitions": "[]", "offsets": "{}", TOKEN: uuid.uuid4().hex})

    if window.record_count and window.record_count <= arrow_max_records:
        rows = read_bronze_window(kafka, window, kind, day)
        if rows is not None:
            if rows.num_rows:
                _replace_arrow(config, t, day, rows, kind, provenance, existing, rules)
                _collect_stats(lake.table(t), stats, provenance)
                return stats
            window = None  # read: nothing of this day
    if window is not None and window.record_count:
        session = lake_session(spark() if callable(spark) else spark, config)
        bronze = kafka_to_bronze(filter_ingest_day(read_kafka_window(session, kafka, window), day), kind)
        bronze = bronze.select(*t.schema.names).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if bronze.take(1):
                _overwrite(session, bronze, config, t, kind, provenance, existing, rules)
                _collect_stats(lake.table(t), stats, provenance)
                return stats
        finally:
            bronze.unpersist()
    # Nothing of this day in Kafka: the partition must end empty (one delete commit if it held rows).
    snapshots.replace(config, t, t.schema.empty_table(), {"ingest_date": day}, provenance)
    log.info("bronze %s %s: no Kafka records in the window; partition is empty", kind, day)
    return stats


def _new_rows_mask(rows: pa.Table, existing: dict[int, tuple[int, int]]) -> pa.Array:
    """The rows past the offsets the partition held (every row of a Kafka partition it did not hold)."""
    new = pa.array([True] * rows.num_rows)
    for partition, (_, hi) in existing.items():
        mine = pc.equal(rows["partition"], partition)
        new = pc.if_else(mine, pc.greater(rows["offset"], hi), new)
    return new


def _replace_arrow(config, t, day: date, rows: pa.Table, kind: str, provenance: Provenance,
                   existing: dict[int, tuple[int, int]], rules: SilverRules) -> None:
    """The Arrow path's commit: what `_overwrite` commits, through pyiceberg (rows sorted by partition, offset)."""
    added = summary_properties(arrow_summary_rows(rows.filter(_new_rows_mask(rows, existing)), kind, rules))
    provenance.extra.update(partitions=added["partitions"], offsets=added["offsets"], records=added["records"])
    snapshots.replace(config, t, rows, {"ingest_date": day}, provenance)


def _overwrite(session, bronze: DataFrame, config, t, kind: str, provenance: Provenance,
               existing: dict[int, tuple[int, int]], rules: SilverRules) -> None:
    """One commit: the day's rows replace its partition; the provenance says what rows past the offsets
    the partition held before add, so the sensor wakes only the Silver partitions that gained data."""
    is_new = F.lit(True)
    for partition, (_, hi) in existing.items():
        is_new = F.when(F.col("partition") == F.lit(partition), F.col("offset") > F.lit(hi)).otherwise(is_new)
    summary = write_summary(bronze.where(is_new), kind, rules).collect()
    added = summary_properties(summary)
    provenance.extra.update(partitions=added["partitions"], offsets=added["offsets"], records=added["records"])
    writer = bronze.sortWithinPartitions("partition", "offset").writeTo(spark_table(config, t))
    for k, v in spark_write_options(provenance.properties()).items():
        writer = writer.option(k, v)
    spark_commit(writer.overwritePartitions, lambda: _find_snapshot(load_table(config, t), provenance.extra[TOKEN]))


def _find_snapshot(table, token: str):
    """The snapshot our write produced: the newest carrying its token (other writers may have committed since)."""
    for snap in snapshots.lineage(table):
        p = Provenance.of(snap)
        if p is not None and p.extra.get(TOKEN) == token:
            return snap
    return None


def _collect_stats(table, stats: BronzeDayStats, provenance: Provenance) -> None:
    """Figures from the committed snapshot, so metadata describes the partition, not the plan."""
    snap = _find_snapshot(table, provenance.extra[TOKEN])
    if snap is None:
        raise snapshots.CatalogError(f"the Bronze commit of {stats.table} {stats.day} is not in the table's history "
                                     f"(expired at once?): run again")
    stats.snapshot_id = snap.snapshot_id
    stats.new_rows = int(provenance.extra.get("records", "0"))
    where = {"ingest_date": stats.day}
    _, files = snapshots.snapshot_files(table, where, snap.snapshot_id)
    stats.files = len(files)
    props = snap.summary.additional_properties if snap.summary is not None else {}
    # A dynamic overwrite of one day: what it added is the whole partition.
    stats.bytes_written = int(props.get("added-files-size", 0))
    rows = snapshots.read(table, where, ["partition", "offset", "is_malformed", "malformed_reason", "product_id",
                                         "key"], snapshot=snap.snapshot_id)
    stats.rows = rows.num_rows
    if not rows.num_rows:
        return
    per = rows.group_by("partition").aggregate([("offset", "min"), ("offset", "max")]).sort_by("partition")
    stats.offsets = {int(p): (int(lo), int(hi)) for p, lo, hi in zip(
        per["partition"].to_pylist(), per["offset_min"].to_pylist(), per["offset_max"].to_pylist())}
    bad = rows.filter(pc.equal(rows["is_malformed"], True))
    stats.malformed = bad.num_rows
    if bad.num_rows:
        counts = bad.group_by("malformed_reason").aggregate([("malformed_reason", "count")])
        stats.malformed_by_reason = dict(zip(counts["malformed_reason"].to_pylist(),
                                             counts["malformed_reason_count"].to_pylist()))
    products = owner_products(rows["product_id"], rows["key"])
    stats.products = sorted(pc.unique(pa.chunked_array([products]) if isinstance(products, pa.Array)
                                      else products).to_pylist())

