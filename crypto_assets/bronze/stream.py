"""Streaming Bronze: Spark Structured Streaming from Kafka into the Bronze Iceberg tables, exactly once.

The rows are those of the batch mode (`bronze.transforms.kafka_to_bronze`, same function); each
micro-batch is appended in one Iceberg commit whose provenance names the stream (`stream-id`: the
query id, stable across restarts of one checkpoint), the `batch-id`, and what it adds (Silver
`partitions`, Kafka `offsets`). Exactly once: the checkpoint fixes each batch's offsets before it
runs, and a batch the checkpoint replays after a crash (its commit landed, the checkpoint's did not)
finds its batch id already in the table's history and is skipped. Compaction is the maintenance
job's: the stream only appends.

No Dagster here: `crypto-pipeline stream` and the Glue streaming scripts call it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from crypto_assets.bronze.kafka_source import KafkaAccess
from crypto_assets.bronze.summary import spark_write_options, summary_properties, write_summary
from crypto_assets.bronze.transforms import kafka_to_bronze
from crypto_assets.contracts.names import bronze_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance, lineage
from crypto_assets.lake.spark import lake_session, spark_commit, spark_table
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)


def last_committed_batch(table, stream_id: str) -> int | None:
    """The highest batch id this stream committed: from the newest snapshot it wrote (walking back
    from the current one, stopping at the first of this stream)."""
    for snap in lineage(table):
        p = Provenance.of(snap)
        if p is not None and p.extra.get("stream-id") == stream_id and "batch-id" in p.extra:
            return int(p.extra["batch-id"])
    return None


def stream_id_of(lake: LakeStore, checkpoint: str) -> str:
    """The streaming query's id as its checkpoint records it (`<checkpoint>/metadata`, JSON key `id`)."""
    return json.loads(lake.read_text(f"{checkpoint.rstrip('/')}/metadata").splitlines()[0])["id"]


@dataclass
class BronzeBatchWriter:
    """The foreachBatch function of one Bronze stream."""

    lake: LakeStore
    kind: str
    rules: SilverRules
    checkpoint: str = ""
    stream_id: str = ""  # read from the checkpoint when the first batch runs, unless given

    def _done(self, config, t, batch_id: int) -> bool:
        done = last_committed_batch(load_table(config, t), self.stream_id)
        return done is not None and done >= batch_id

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if not self.stream_id:
            self.stream_id = stream_id_of(self.lake, self.checkpoint)
        t = bronze_table(self.kind)
        config = self.lake.catalog_config
        if self._done(config, t, batch_id):
            log.info("bronze %s stream batch %d: already committed (replayed after a restart); skipped",
                     self.kind, batch_id)
            return
        batch = batch.select(*t.schema.names).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            summary = write_summary(batch, self.kind, self.rules).collect()
            if not summary:
                return
            added = summary_properties(summary)
            provenance = Provenance(asset=bronze_asset(self.kind), partition=",".join(json.loads(added["ingest-dates"])),
                                    extra={"writer": "stream", "stream-id": self.stream_id, "batch-id": str(batch_id),
                                           **added})
            writer = batch.sortWithinPartitions("partition", "offset").writeTo(spark_table(config, t))
            for k, v in spark_write_options(provenance.properties()).items():
                writer = writer.option(k, v)
            spark_commit(writer.append, lambda: self._done(config, t, batch_id))
        finally:
            batch.unpersist()
        log.info("bronze %s stream batch %d: %s records into %s", self.kind, batch_id, added["records"],
                 provenance.partition)


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
) -> StreamingQuery:
    """Starts the Bronze stream of one kind; `available_now` processes what Kafka holds, then stops."""
    lake.table(bronze_table(kind))  # created before the first batch, not by two writers at once
    session = lake_session(spark, lake.catalog_config)
    reader = (
        session.readStream.format("kafka")
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
        .foreachBatch(BronzeBatchWriter(lake, kind, rules, checkpoint))
        .option("checkpointLocation", checkpoint)
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_seconds} seconds"
    )
    return writer.start()
