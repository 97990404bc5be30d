"""What a Bronze write adds, for its commit's provenance: the contracts' owner rule (`contracts.ownership.owner_table`,
the rule Silver reads by) run in Spark's Python workers over the rows written, then counted per owning
Silver partition, recorded in the snapshot summary (`summary_properties`) and read back by the Bronze
sensor (`added_partitions`). Batch (`bronze.build`) and stream (`bronze.stream`) both call it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pyarrow as pa

from crypto_assets.contracts.names import ITEMS
from crypto_assets.contracts.ownership import OWNER_INPUT, owner_table
from crypto_assets.contracts.partitioning import SilverRules

log = logging.getLogger(__name__)

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


def summary_properties(summary_rows) -> dict[str, str]:
    """What a Bronze commit's provenance records of the rows it adds (from `write_summary`'s rows):
    `partitions` [[event_date, product_id, items]], `offsets` {kafka partition: [first, last]},
    `ingest-dates` [day, ...] and `records` (the Kafka records added), each as JSON."""
    import json

    owners: dict[tuple[str, str], int] = {}
    offsets: dict[str, list[int]] = {}
    days, records = set(), 0
    for r in summary_rows:
        days.add(r["ingest_date"].isoformat())
        records += int(r["records"])
        slot = (r["event_date"].isoformat(), r["product_id"])
        owners[slot] = owners.get(slot, 0) + int(r["items"])
        lo, hi = offsets.get(str(r["kafka_partition"]), [r["lo"], r["hi"]])
        offsets[str(r["kafka_partition"])] = [int(min(lo, r["lo"])), int(max(hi, r["hi"]))]
    return {
        "partitions": json.dumps([[d, p, n] for (d, p), n in sorted(owners.items())]),
        "offsets": json.dumps(dict(sorted(offsets.items(), key=lambda kv: int(kv[0])))),
        "ingest-dates": json.dumps(sorted(days)),
        "records": str(records),
    }


def spark_write_options(properties: dict[str, str]) -> dict[str, str]:
    """Iceberg write options of a Spark write: snapshot properties, and no shuffle before writing
    (the rows keep their order; fanout writers take rows of several days in any order)."""
    return {**{f"snapshot-property.{k}": v for k, v in properties.items()},
            "distribution-mode": "none", "fanout-enabled": "true"}


def added_partitions(provenance) -> list[list]:
    """The Silver partitions a Bronze snapshot feeds, from its provenance: [[event_date, product_id,
    items], ...] (what `summary_properties` recorded; [] for a snapshot that records none)."""
    return json.loads(provenance.extra.get("partitions", "[]"))


def arrow_summary_rows(bronze: pa.Table, kind: str, rules: SilverRules) -> list[dict]:
    """`write_summary`'s rows computed from Arrow Bronze rows in this process (the Arrow Bronze path):
    the same owner rule, the same grouping, for `summary_properties`."""
    import pyarrow.compute as pc

    if bronze.num_rows == 0:
        return []
    owners = owner_table(bronze.select([*OWNER_INPUT, ITEMS[kind]]), kind, rules).cast(_OWNERS)
    owners = owners.append_column("first", pc.cast(pc.equal(owners["item_index"], 0), pa.int64()))
    agg = owners.group_by(["ingest_date", "kafka_partition", "event_date", "product_id"], use_threads=False).aggregate(
        [("kafka_offset", "count"), ("first", "sum"), ("kafka_offset", "min"), ("kafka_offset", "max")])
    agg = agg.rename_columns({"kafka_offset_count": "items", "first_sum": "records", "kafka_offset_min": "lo",
                              "kafka_offset_max": "hi"})
    return agg.to_pylist()
