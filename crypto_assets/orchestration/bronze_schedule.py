"""Batch-mode Bronze cadence: re-materialize today's Bronze partitions on a short cron.

Each run replaces the day's partition in one commit whose provenance names only what the rows it
added feed, so the Bronze sensor wakes only the Silver partitions that gained data. Shortly after midnight the previous day
gets a last run too (records ingested just before midnight may not have been landed yet).
A Bronze run still waiting or running for a day is not doubled by the next tick.
"""

from datetime import timedelta

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from crypto_assets.contracts.settings import Settings

CLOSE_PREVIOUS_DAY_MINUTES = 15
UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def bronze_days_due(tick_time) -> list[str]:
    """Today's UTC day, and yesterday's during the first minutes after midnight."""
    today = tick_time.date()
    midnight = tick_time.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=1)] if tick_time - timedelta(minutes=CLOSE_PREVIOUS_DAY_MINUTES) < midnight else []
    return [d.isoformat() for d in [*days, today]]


def build_bronze_schedule(settings: Settings, bronze_assets) -> ScheduleDefinition:
    running = settings.automation == "on" and settings.bronze_mode == "batch"

    @schedule(
        name="bronze_batch_cadence",
        cron_schedule=settings.bronze_batch_cron,
        execution_timezone="UTC",
        target=bronze_assets,
        description=(
            "Batch mode: re-materializes today's Bronze partitions (and yesterday's, just after midnight) "
            "from Kafka. Leave it stopped when `crypto-pipeline stream` lands Bronze."
        ),
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
    )
    def bronze_batch_cadence(context: ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        requests = []
        for day in bronze_days_due(tick):
            busy = context.instance.get_runs(
                filters=RunsFilter(statuses=UNFINISHED, tags={"dagster/partition": day, "crypto/trigger": "bronze_schedule"}),
                limit=1,
            )
            if busy:
                continue
            requests.append(RunRequest(
                run_key=f"bronze:{day}:{tick.isoformat()}", partition_key=day,
                tags={"crypto/trigger": "bronze_schedule"},
            ))
        return requests or SkipReason("a Bronze run for today is still in progress")

    return bronze_batch_cadence
