"""What a Bronze write adds, for its commit: the contracts' owner rule (`contracts.ownership.owner_table`,
the rule Silver reads by) run in Spark's Python workers over the rows written, then counted per owning
Silver partition. Batch (`bronze.build`) and stream (`bronze.stream`) both call it."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from crypto_assets.contracts.names import ITEMS
from crypto_assets.contracts.ownership import OWNER_INPUT, owner_table
from crypto_assets.contracts.partitioning import SilverRules

_OWNERS = pa.schema([("ingest_date", pa.date32()), ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()),
                     ("item_index", pa.int32()), ("event_date", pa.date32()), ("product_id", pa.string())])


def write_summary(bronze, kind: str, rules: SilverRules):
    """What some Bronze rows add, in one pass: per (ingest_date, Kafka partition, owning Silver
    partition) the items, the records (each counted once, with its first item) and the offset range."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from owner_table(pa.Table.from_batches([batch]), kind, rules).cast(_OWNERS).to_batches()

    owners = bronze.select(*OWNER_INPUT, ITEMS[kind]).mapInArrow(run, from_arrow_schema(_OWNERS))
    return owners.groupBy("ingest_date", "kafka_partition", "event_date", "product_id").agg(
        F.count(F.lit(1)).alias("items"),
        F.sum((F.col("item_index") == 0).cast("long")).alias("records"),
        F.min("kafka_offset").alias("lo"),
        F.max("kafka_offset").alias("hi"),
    )
