"""Writes Bronze rows made by the real Bronze transform (Spark) into the Bronze Iceberg table, one append
commit, for tests of Silver that need a Bronze window without Kafka."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.parquet as pq

from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance


def append_bronze(lake, bronze_df, kind: str, scratch: Path) -> int | None:
    """Appends a Bronze DataFrame to `bronze.kafka_<kind>`; returns the new snapshot id."""
    path = scratch / f"bronze-{uuid.uuid4().hex}"
    bronze_df.coalesce(1).write.parquet(str(path))
    t = bronze_table(kind)
    rows = pq.read_table(path).select(t.schema.names).cast(t.schema)
    return snapshots.append(lake.catalog_config, t, rows, Provenance(asset=f"bronze_{kind}", run_id="test"))
