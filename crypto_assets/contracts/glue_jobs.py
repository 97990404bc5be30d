"""The Glue jobs of the project: which entry script in `glue/` each runs, their names, and their arguments.

Every argument a job takes is declared here once (`*_ARGS`, all required by the entry scripts) and
built here once: `job_arguments` gives the ones that carry settings (what `crypto-pipeline aws
deploy` sets as the job's default arguments), and the `*_run_arguments` functions the ones Dagster
adds per run. Deploy and Dagster's Glue compute both build theirs with `lake_arguments` and
`kafka_arguments`, from the settings or from the resources bound to them. No Dagster here.
"""

from __future__ import annotations

from datetime import date

# Dagster asset (or streaming job) -> Glue entry script in `glue/`.
BATCH_JOBS = {
    "bronze_trades_batch": "bronze_trades_batch.py", "bronze_ticker_batch": "bronze_ticker_batch.py",
    "silver_trades": "silver_trades.py", "silver_ticker": "silver_ticker.py", "gold_features": "gold_features.py",
    "gold_candles_1m": "gold_candles_1m.py", "gold_candles_1h": "gold_candles_1h.py",
}
STREAM_JOBS = {"bronze_trades_stream": "bronze_trades_stream.py", "bronze_ticker_stream": "bronze_ticker_stream.py"}
# The lake maintenance job (compaction, snapshot expiry, orphan files of one table per run; Dagster's
# `lake_maintenance` job runs it once per table with CRYPTO_COMPUTE=glue).
MAINTENANCE_JOB = "lake_maintenance"
MAINTENANCE_JOBS = {MAINTENANCE_JOB: "lake_maintenance.py"}
# Every job deploy creates.
GLUE_JOBS = {**BATCH_JOBS, **MAINTENANCE_JOBS, **STREAM_JOBS}

# The arguments of each job (Glue passes them as `--name value`). None has a default in the entry scripts:
# a missing one stops the job with one line naming it. The lake's: where it is and its Iceberg catalog (the
# Glue Data Catalog database of the tables, and how often a commit that lost a race is retried).
LAKE_ARGS = ["lake_root", "aws_region", "glue_database", "commit_retries"]
KAFKA_ARGS = ["kafka_bootstrap", "topic", "kafka_timestamp_skew_minutes", "kafka_security_protocol",
              "kafka_sasl_mechanism"]
SILVER_ARGS = ["event_date", "product_id", *LAKE_ARGS, "allowed_lateness_days", "require_bronze_day", "full"]
GOLD_ARGS = ["event_date", "product_id", *LAKE_ARGS, "full"]
BRONZE_BATCH_ARGS = ["ingest_date", *LAKE_ARGS, "allowed_lateness_days", *KAFKA_ARGS]
STREAM_ARGS = [*LAKE_ARGS, "allowed_lateness_days", *KAFKA_ARGS, "checkpoint_root", "trigger_seconds"]
# The table (`silver.trades`), and how many hours and snapshots of history it keeps.
MAINTENANCE_ARGS = ["table", *LAKE_ARGS, "retention_hours", "max_snapshots"]
# Present only when the setting they carry is set (Glue cannot pass an empty value): no S3 endpoint
# override = AWS's, no secret = no SASL credentials from Secrets Manager.
IF_SET_ARGS = ["s3_endpoint_url", "kafka_sasl_secret_id"]
# The streaming jobs run until stopped, or for `--run_seconds` (tests).
STREAM_ONLY_IF_SET = ["run_seconds"]


def job_name(prefix: str, job: str) -> str:
    """`<prefix>-<job with dashes>`, e.g. crypto-lakehouse-silver-trades."""
    return f"{prefix}-{job.replace('_', '-')}"


def bronze_batch_job(kind: str) -> str:
    """The batch job that writes one Bronze ingest day of `kind` (trades | ticker)."""
    return f"bronze_{kind}_batch"


def kafka_kind(job: str) -> str | None:
    """trades | ticker for a job that reads Kafka (the Bronze jobs), else None."""
    if not job.startswith("bronze_"):
        return None
    return "trades" if job.startswith("bronze_trades") else "ticker"


def runs_spark_work(job: str) -> bool:
    """The jobs whose work runs on Spark executors (Bronze reads Kafka, maintenance rewrites files) and
    that open the lake's Iceberg catalog in Spark; Silver and Gold compute with Arrow on the driver."""
    return kafka_kind(job) is not None or job == MAINTENANCE_JOB


def required_arguments(job: str) -> list[str]:
    """The argument names the entry script of `job` requires."""
    if job == MAINTENANCE_JOB:
        return MAINTENANCE_ARGS
    if job in STREAM_JOBS:
        return STREAM_ARGS
    if kafka_kind(job):
        return BRONZE_BATCH_ARGS
    return GOLD_ARGS if job.startswith("gold_") else SILVER_ARGS


# ---- the one builder of the arguments ------------------------------------------------------------


def _s3(uri: str) -> str:
    """`s3a://b/k` -> `s3://b/k` (the form Glue, Athena and the catalog use)."""
    return "s3://" + uri.split("://", 1)[1].rstrip("/") if "://" in uri else uri


def lake_arguments(lake_root: str, aws_region: str, s3_endpoint_url: str, glue_database: str,
                   commit_retries: int) -> dict[str, str]:
    """The lake and its catalog (`LAKE_ARGS`, plus the endpoint override when there is one)."""
    args = {"--lake_root": _s3(lake_root), "--aws_region": aws_region, "--glue_database": glue_database,
            "--commit_retries": str(commit_retries)}
    if s3_endpoint_url:  # empty = AWS (Glue cannot carry an empty value)
        args["--s3_endpoint_url"] = s3_endpoint_url
    return args


def kafka_arguments(bootstrap: str, topic: str, timestamp_skew_minutes: int, security_protocol: str,
                    sasl_mechanism: str, sasl_secret_id: str) -> dict[str, str]:
    """The cluster, topic and security of a Bronze job; the SASL password is never an argument: the jobs
    read it from the Secrets Manager secret."""
    args = {"--kafka_bootstrap": bootstrap, "--topic": topic,
            "--kafka_timestamp_skew_minutes": str(timestamp_skew_minutes),
            "--kafka_security_protocol": security_protocol, "--kafka_sasl_mechanism": sasl_mechanism}
    if sasl_secret_id:
        args["--kafka_sasl_secret_id"] = sasl_secret_id
    return args


def job_arguments(settings, job: str) -> dict[str, str]:
    """The arguments of `job` (a key of BATCH_JOBS / STREAM_JOBS) that carry settings; with the partition's,
    which Dagster adds per run (`*_run_arguments`), they are every argument the entry script requires."""
    kind = kafka_kind(job)
    args = lake_arguments(settings.lake_root, settings.aws_region, settings.s3_endpoint_url, settings.glue_database,
                          settings.commit_retries)
    if job.startswith("silver_") or kind:  # Bronze commits name the Silver partitions, by the same rule
        args["--allowed_lateness_days"] = str(settings.allowed_lateness_days)
    if kind:
        args.update(kafka_arguments(
            settings.kafka_bootstrap, settings.trades_topic if kind == "trades" else settings.ticker_topic,
            settings.kafka_timestamp_skew_minutes, settings.kafka_security_protocol, settings.kafka_sasl_mechanism,
            settings.kafka_sasl_secret_id))
    if job == MAINTENANCE_JOB:
        args.update(maintenance_arguments(settings.snapshot_retention_hours, settings.snapshot_retention_count))
    if job in STREAM_JOBS:
        args["--checkpoint_root"] = f"{settings.glue_artifacts_root.rstrip('/')}/checkpoints/"
        args["--trigger_seconds"] = str(settings.stream_trigger_seconds)
    return args


def bronze_run_arguments(day: date, allowed_lateness_days: int) -> dict[str, str]:
    return {"--ingest_date": day.isoformat(), "--allowed_lateness_days": str(allowed_lateness_days)}


def silver_run_arguments(day: date, product: str, allowed_lateness_days: int, require_bronze_day: bool,
                         full: bool = False) -> dict[str, str]:
    """One Silver partition; `full`: rebuilt whole rather than brought up to date from its state."""
    return {"--event_date": day.isoformat(), "--product_id": product,
            "--allowed_lateness_days": str(allowed_lateness_days),
            "--require_bronze_day": "true" if require_bronze_day else "false", "--full": "true" if full else "false"}


def gold_run_arguments(day: date, product: str, full: bool = False) -> dict[str, str]:
    """One Gold partition; `full`: rebuilt whole rather than brought up to date from its state."""
    return {"--event_date": day.isoformat(), "--product_id": product, "--full": "true" if full else "false"}


def maintenance_arguments(retention_hours: int, max_snapshots: int) -> dict[str, str]:
    """How much history maintenance keeps (CRYPTO_SNAPSHOT_RETENTION_HOURS / _COUNT)."""
    return {"--retention_hours": str(retention_hours), "--max_snapshots": str(max_snapshots)}


def maintenance_run_arguments(table: str) -> dict[str, str]:
    """The one table a maintenance run works on (`silver.trades`)."""
    return {"--table": table}
