"""Writes Bronze rows made by the real Bronze transform (Spark) into the Bronze Iceberg table, one append
commit, for tests of Silver that need a Bronze window without Kafka."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance


def append_bronze(lake, bronze_df, kind: str, scratch: Path) -> int | None:
    """Appends a Bronze DataFrame to `bronze.kafka_<kind>`; returns the new snapshot id. As Kafka would, the
    records get offsets after those the table holds for their topic and partition (the DataFrame's offsets,
    counted from 0, keep their order)."""
    path = scratch / f"bronze-{uuid.uuid4().hex}"
    bronze_df.coalesce(1).write.parquet(str(path))
    t = bronze_table(kind)
    rows = pq.read_table(path).select(t.schema.names).cast(t.schema)
    return snapshots.append(lake.catalog_config, t, after_held_offsets(lake, t, rows),
                            Provenance(asset=f"bronze_{kind}", run_id="test"))


def after_held_offsets(lake, t, rows: pa.Table) -> pa.Table:
    """`rows` with each (topic, partition)'s offsets moved past the highest the table holds for it."""
    held = snapshots.read(lake.table(t), columns=["topic", "partition", "offset"])
    if not held.num_rows:
        return rows
    top = {(r["topic"], r["partition"]): r["offset_max"]
           for r in held.group_by(["topic", "partition"]).aggregate([("offset", "max")]).to_pylist()}
    shift = pa.array([top.get((tp, p), -1) + 1 for tp, p in zip(rows.column("topic").to_pylist(),
                                                               rows.column("partition").to_pylist())], pa.int64())
    return rows.set_column(rows.schema.get_field_index("offset"), "offset", pc.add(rows.column("offset"), shift))
