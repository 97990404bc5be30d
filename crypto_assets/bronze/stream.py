"""Streaming Bronze: Spark Structured Streaming from Kafka into the Bronze layout, exactly once.

The rows are those of the batch mode (`bronze.transforms.kafka_to_bronze`, same function),
appended per micro-batch into `bronze/<table>/ingest_date=D/` as files named after the batch
(`stream-b<batch id>-<n>.parquet`). Exactly once: the checkpoint fixes each batch's offsets
before it runs, and a batch that runs again after a crash first removes the files its earlier
attempt left, then writes the same rows under the same names. After its files are in place a
batch appends a Bronze commit (`crypto_assets.lake.commits`) for the sensors, then merges the small
files of earlier batches where enough have gathered (`crypto_assets.lake.compaction`).

No Dagster here: `crypto-pipeline stream` and the Glue streaming scripts call it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from crypto_assets.bronze.kafka_source import KafkaAccess
from crypto_assets.bronze.summary import write_summary
from crypto_assets.bronze.transforms import kafka_to_bronze
from crypto_assets.contracts.names import BRONZE_TABLE
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.lake.commits import commit_from_summary, write_commit
from crypto_assets.lake.compaction import DEFAULT_FAN_IN, compact_folder
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)

STAGING_DIR = "_staging"


def stream_file_prefix(batch_id: int) -> str:
    return f"stream-b{batch_id:012d}-"


@dataclass
class BronzeBatchWriter:
    """The foreachBatch function of one Bronze stream."""

    lake: LakeStore
    kind: str
    rules: SilverRules
    compact_fan_in: int = DEFAULT_FAN_IN  # 0: never merge

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        table = BRONZE_TABLE[self.kind]
        staging = f"{self.lake.table_path('bronze', table)}/{STAGING_DIR}/batch={batch_id}"
        self.lake.delete(staging)
        batch = batch.persist()
        try:
            summary = write_summary(batch, self.kind, self.rules).collect()
            if not summary:
                return
            batch.sortWithinPartitions("partition", "offset").write.partitionBy("ingest_date").parquet(staging)
        finally:
            batch.unpersist()

        commit = commit_from_summary(self.kind, "stream", summary, batch_id=batch_id)
        prefix = stream_file_prefix(batch_id)
        for day in commit.ingest_dates:
            target_dir = self.lake.partition_path("bronze", table, ingest_date=day)
            # An earlier attempt of this batch (crash before the checkpoint committed it) left
            # these: the same offsets are about to be written again under the same names.
            for name in self.lake.list_names(target_dir):
                if name.startswith(prefix):
                    self.lake.delete_file(f"{target_dir}/{name}")
            staged = [f for f, _ in self.lake.data_files(f"{staging}/ingest_date={day}")]
            for i, src in enumerate(staged):
                dst = f"{target_dir}/{prefix}{i:04d}.snappy.parquet"
                self.lake.move(src, dst)
                commit.files.append(dst)
        self.lake.delete(staging)
        write_commit(self.lake, commit)
        log.info("bronze %s stream batch %d: %d rows into %s (commit %s)", self.kind, batch_id, commit.rows,
                 ", ".join(commit.ingest_dates), commit.name)
        if self.compact_fan_in:
            for day in commit.ingest_dates:
                folder = self.lake.partition_path("bronze", table, ingest_date=day)
                try:
                    compact_folder(self.lake, folder, before_batch=batch_id, fan_in=self.compact_fan_in)
                except Exception as exc:  # noqa: BLE001 - merging is an optimization: it must never stop ingestion
                    # The files stay readable as they are; the next batch tries again.
                    first = (str(exc).splitlines() or [type(exc).__name__])[0]
                    log.warning("bronze %s: merging the small files of %s failed (%s); they stay as they are",
                                self.kind, folder, first)


def start_bronze_stream(
    spark: SparkSession,
    kafka: KafkaAccess,
    lake: LakeStore,
    kind: str,
    checkpoint: str,
    rules: SilverRules,
    trigger_seconds: float = 5.0,
    available_now: bool = False,
    max_offsets_per_trigger: int | None = None,
    starting_offsets: str = "earliest",
    compact_fan_in: int = DEFAULT_FAN_IN,
) -> StreamingQuery:
    """Starts the Bronze stream of one kind; `available_now` processes what Kafka holds, then stops."""
    reader = (
        spark.readStream.format("kafka")
        .option("subscribe", kafka.topic_for(kind))
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    for k, v in kafka.spark_options().items():
        reader = reader.option(k, v)
    bronze = kafka_to_bronze(reader.load(), kind)
    writer = (
        bronze.writeStream.queryName(f"bronze_{kind}")
        .foreachBatch(BronzeBatchWriter(lake, kind, rules, compact_fan_in))
        .option("checkpointLocation", checkpoint)
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_seconds} seconds"
    )
    return writer.start()
