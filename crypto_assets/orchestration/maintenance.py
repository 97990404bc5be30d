"""The lake maintenance job and its schedule: every table compacted, its old snapshots expired and
its orphan files removed (`crypto_assets.lake.maintenance`), one op per table so the UI shows each.
The `compute` resource runs each table's maintenance where the steps run: Spark in this process
(local), or one run of the `lake_maintenance` Glue job per table (glue).

Maintenance commits are Iceberg `replace` snapshots: the sensors do not take them for new data. Each
op reports what it changed as an observation of the table's asset (when the table is an asset).
"""

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultScheduleStatus,
    GraphDefinition,
    JobDefinition,
    OpDefinition,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    in_process_executor,
    op,
    schedule,
)

from crypto_assets.contracts.names import (
    BRONZE_TABLE,
    CANDLE_INTERVALS,
    GOLD_ASSET,
    SILVER_TABLE,
    bronze_asset,
    candles_asset,
    candles_table,
    silver_asset,
)
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import TABLES, TableDef
from crypto_assets.orchestration.bronze_schedule import UNFINISHED
from crypto_assets.orchestration.resources.compute import ComputeResource

JOB_NAME = "lake_maintenance"


def table_asset(t: TableDef) -> AssetKey | None:
    """The asset a table materializes (quarantine tables belong to their Silver asset)."""
    for kind, name in BRONZE_TABLE.items():
        if t.identifier == f"bronze.{name}":
            return AssetKey(bronze_asset(kind))
    for kind, name in SILVER_TABLE.items():
        if t.identifier in (f"silver.{name}", f"quarantine.{name}"):
            return AssetKey(silver_asset(kind))
    for interval in CANDLE_INTERVALS:
        if t.identifier == f"gold.{candles_table(interval)}":
            return AssetKey(candles_asset(interval))
    return AssetKey(GOLD_ASSET) if t.layer == "gold" else None


def _maintain_op(t: TableDef, retention_hours: int, max_snapshots: int) -> OpDefinition:
    @op(name=f"maintain_{t.layer}_{t.name}", description=f"Compacts, expires snapshots older than {retention_hours} h and removes orphan files of "
                    f"{t.identifier}.")
    def _maintain(context: OpExecutionContext, compute: ComputeResource):
        stats = compute.maintain_table(context, t, retention_hours, max_snapshots)
        context.log.info(f"{t.identifier}: {stats.rewritten_files} files rewritten into {stats.added_files}, "
                         f"{stats.expired_snapshots} snapshots expired, {stats.orphan_files} orphan files removed "
                         f"({stats.seconds} s)")
        key = table_asset(t)
        if key is not None:
            context.log_event(AssetObservation(asset_key=key, metadata={
                "table": t.identifier, "maintenance_rewritten_files": stats.rewritten_files,
                "maintenance_added_files": stats.added_files, "maintenance_expired_snapshots": stats.expired_snapshots,
                "maintenance_orphan_files": stats.orphan_files, "snapshots": stats.snapshots_after,
                "data_files": stats.data_files_after}))

    return _maintain


def build_maintenance_job(settings: Settings) -> JobDefinition:
    """One op per table, run one after another (they share the one Spark session)."""
    ops = [_maintain_op(t, settings.snapshot_retention_hours, settings.snapshot_retention_count)
           for t in TABLES.values()]
    graph = GraphDefinition(name=JOB_NAME, node_defs=ops, description=(
        "Lake maintenance: compact small files (Bronze sorted by product), expire snapshots older than "
        f"{settings.snapshot_retention_hours} h (CRYPTO_SNAPSHOT_RETENTION_HOURS) or beyond the newest "
        f"{settings.snapshot_retention_count} (CRYPTO_SNAPSHOT_RETENTION_COUNT), remove orphan files."))
    return graph.to_job(executor_def=in_process_executor, tags={"crypto/trigger": "maintenance"})


def build_maintenance_schedule(settings: Settings, job: JobDefinition) -> ScheduleDefinition:
    running = settings.automation == "on"

    @schedule(
        name="lake_maintenance_schedule", job=job, cron_schedule=settings.maintenance_cron, execution_timezone="UTC",
        description=f"Runs {JOB_NAME} on CRYPTO_MAINTENANCE_CRON ({settings.maintenance_cron}, UTC), unless the "
                    f"previous one is still running.",
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
    )
    def lake_maintenance_schedule(context: ScheduleEvaluationContext):
        busy = context.instance.get_runs(filters=RunsFilter(job_name=JOB_NAME, statuses=UNFINISHED), limit=1)
        if busy:
            return SkipReason(f"{JOB_NAME} run {busy[0].run_id} is still in progress")
        return RunRequest(run_key=f"maintenance:{context.scheduled_execution_time.isoformat()}")

    return lake_maintenance_schedule
