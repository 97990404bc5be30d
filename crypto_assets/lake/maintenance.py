"""Table maintenance with Iceberg's Spark procedures: compact small files, expire old snapshots,
remove orphan files. Reads give the same rows before and after; only the layout changes.

- compaction (`rewrite_data_files`): the stream commits a few small files per micro-batch; Bronze
  is rewritten sorted by product, Kafka partition and offset, so a Silver run of one product reads
  only the row groups that hold it; the other tables are bin-packed. A compaction commit is an
  Iceberg `replace` snapshot, which the sensors know is not new data.
- expiry (`expire_snapshots`): snapshots older than the retention window go (time travel reaches
  that far back), and beyond the newest `max_snapshots` whatever their age, with the files only they
  referenced; the last few snapshots always stay. Every commit rewrites the table's metadata, which
  lists every snapshot, and pyiceberg copies it several times per commit: the cost grows with the
  snapshots kept (see `benchmarks/bench_commits.py`), so the count is bounded too.
- orphans (`remove_orphan_files`): files no snapshot references, left by writers that died before
  their commit, older than the retention window and at least 24 hours old (Iceberg's own floor: a
  younger file may belong to a commit still under way).

No Dagster here: the maintenance job (`orchestration/maintenance.py`) and `crypto-pipeline lake
maintain` call `maintain_table`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from crypto_assets.contracts.tables import TableDef
from crypto_assets.lake.catalog import SPARK_CATALOG, CatalogConfig, load_table
from crypto_assets.lake.spark import lake_session

log = logging.getLogger(__name__)

RETAIN_LAST = 5  # snapshots every table keeps whatever their age
MIN_INPUT_FILES = 5  # a partition with fewer data files is not worth rewriting


@dataclass
class MaintenanceStats:
    table: str
    rewritten_files: int = 0
    added_files: int = 0
    expired_snapshots: int = 0
    deleted_files: int = 0
    orphan_files: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    data_files_after: int = 0
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)


def _sort_order(t: TableDef) -> str | None:
    return "product_id ASC NULLS LAST, partition ASC NULLS LAST, offset ASC NULLS LAST" if t.layer == "bronze" else None


def _call(spark, procedure: str, **args) -> list:
    rendered = ", ".join(f"{k} => {v}" for k, v in args.items())
    return spark.sql(f"CALL {SPARK_CATALOG}.system.{procedure}({rendered})").collect()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expiry_cutoff(table, now: datetime, retention_hours: int, max_snapshots: int | None) -> datetime:
    """Snapshots committed before this time expire: older than the retention window, or beyond the
    newest `max_snapshots` (whichever cuts more)."""
    cutoff = now - timedelta(hours=retention_hours)
    times = sorted((s.timestamp_ms for s in table.snapshots()), reverse=True)
    if max_snapshots and len(times) > max_snapshots:
        cutoff = max(cutoff, datetime.fromtimestamp(times[max_snapshots - 1] / 1000, timezone.utc))
    return cutoff


def maintain_table(spark, config: CatalogConfig, t: TableDef, retention_hours: int, compact: bool = True,
                   expire: bool = True, orphans: bool = True, now: datetime | None = None,
                   max_snapshots: int | None = None) -> MaintenanceStats:
    """Runs the chosen steps on one table, in that order; returns what each changed."""
    started = time.monotonic()
    now = now or datetime.now(timezone.utc)
    table = load_table(config, t)
    before = len(table.snapshots())
    stats = MaintenanceStats(t.identifier, snapshots_before=before)
    session = lake_session(spark, config)
    name = _quote(".".join(config.identifier(t)))
    if compact and table.current_snapshot() is not None:
        args = {"table": name, "options": f"map('min-input-files', '{MIN_INPUT_FILES}', 'partial-progress.enabled', "
                                          f"'true', 'rewrite-job-order', 'files-desc')"}
        if (order := _sort_order(t)) is not None:
            args.update(strategy="'sort'", sort_order=_quote(order))
        row = _call(session, "rewrite_data_files", **args)[0]
        stats.rewritten_files, stats.added_files = int(row["rewritten_data_files_count"]), int(row["added_data_files_count"])
        stats.steps.append("compact")
    if expire:
        keep_from = expiry_cutoff(load_table(config, t), now, retention_hours, max_snapshots)
        row = _call(session, "expire_snapshots", table=name,
                    older_than=f"TIMESTAMP '{keep_from.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}'",
                    retain_last=str(RETAIN_LAST))[0]
        # The compaction above added one snapshot: count against what the table held just before expiry.
        stats.expired_snapshots = before + (1 if stats.added_files else 0) - len(load_table(config, t).snapshots())
        stats.deleted_files = int(row["deleted_data_files_count"]) + int(row["deleted_manifest_files_count"]) + int(
            row["deleted_manifest_lists_count"])
        stats.steps.append("expire")
    if orphans:
        # Iceberg refuses a window under 24 h: a younger file may belong to a commit still under way.
        orphan_cutoff = (now - timedelta(hours=max(retention_hours, 24), minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
        # Listed with the table's own FileIO (S3FileIO in AWS, Hadoop's locally), not a Hadoop file system
        # for the location's scheme: an `s3://` lake needs none outside Glue's EMRFS.
        rows = _call(session, "remove_orphan_files", table=name, older_than=f"TIMESTAMP '{orphan_cutoff}'",
                     prefix_listing="true")
        stats.orphan_files = len(rows)
        stats.steps.append("orphans")
    after = load_table(config, t)
    stats.snapshots_after = len(after.snapshots())
    stats.data_files_after = sum(1 for _ in after.scan().plan_files()) if after.current_snapshot() else 0
    stats.seconds = round(time.monotonic() - started, 2)
    log.info("maintenance of %s: %s", t.identifier, stats)
    return stats
