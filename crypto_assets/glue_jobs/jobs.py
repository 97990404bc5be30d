"""The Glue side of a job run: arguments, session, the shared steps, and the report back through Pipes.

Imported by the entry scripts in `glue/` inside AWS Glue, where neither Dagster nor our
dependencies are installed: only `dagster-pipes`, pyiceberg, pydantic-settings, boto3, PySpark,
pandas and pyarrow may be imported here (and kafka-python, which deploy installs for the Bronze
batch jobs). The tables are Iceberg tables in the Glue Data Catalog (`--glue_database`): Silver and
Gold commit with pyiceberg from the driver, Bronze through Spark's Iceberg catalog (`lake`), which
Glue opens from the job's `--conf` (`--datalake-formats iceberg`). Metadata and check
results come from each layer's `report.py`, as the local compute's do; tests compare both computes.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date

from crypto_assets.bronze.report import bronze_report
from crypto_assets.contracts.glue_jobs import (
    BRONZE_BATCH_ARGS,
    GOLD_ARGS,
    IF_SET_ARGS,
    MAINTENANCE_ARGS,
    SILVER_ARGS,
    STREAM_ARGS,
    STREAM_ONLY_IF_SET,
)
from crypto_assets.contracts.names import GOLD_ASSET, bronze_asset, candles_asset, silver_asset
from crypto_assets.contracts.reporting import CheckReport, Metadata
from crypto_assets.gold.report import gold_report
from crypto_assets.lake.spark_conf import RUNTIME_CONF, apply_s3a_conf
from crypto_assets.lake.store import Lake
from crypto_assets.silver.report import silver_report

log = logging.getLogger("crypto_assets.glue")


class JobArgumentError(ValueError):
    """A Glue job was started without an argument it needs; the message names it."""


def resolve_args(argv: list[str], required: list[str], if_set: list[str] = IF_SET_ARGS) -> dict[str, str]:
    """Glue's `getResolvedOptions` for the `required` names (all must be present) and the `if_set` names present."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    missing = [f"--{name}" for name in required if f"--{name}" not in given]
    if missing:
        raise JobArgumentError(
            f"Glue job argument{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} missing: `crypto-pipeline aws deploy` sets every job argument "
            f"from the settings (Dagster adds the partition's per run); run deploy again with this version"
        )
    from awsglue.utils import getResolvedOptions

    args = dict(getResolvedOptions(argv, required))
    present = [n for n in if_set if f"--{n}" in given]
    if present:
        args.update(getResolvedOptions(argv, present))
    return args


def _flag(args: dict[str, str], name: str) -> bool:
    value = args[name]
    if value not in ("true", "false"):
        raise JobArgumentError(f"Glue job argument --{name} is {value!r}; expected true or false")
    return value == "true"


def glue_session(args: dict[str, str]):
    """Glue's SparkSession with the settings the transforms rely on. Its Iceberg catalog `lake` comes from the
    job's `--conf` (deploy: `spark_conf_argument`), which Glue applies before the session starts; the steps
    open it with `lake_session`, as locally."""
    from awsglue.context import GlueContext
    from pyspark.context import SparkContext

    spark = GlueContext(SparkContext.getOrCreate()).spark_session
    for k, v in RUNTIME_CONF.items():
        spark.conf.set(k, v)
    if args.get("s3_endpoint_url"):  # a non-AWS S3 (tests: moto)
        apply_s3a_conf(spark, args["s3_endpoint_url"], args["aws_region"])
    return spark


def lake_from_args(args: dict[str, str]) -> Lake:
    """The lake and its catalog: the Glue Data Catalog database `--glue_database` for an S3 lake (a local
    lake, as the streaming test runs, keeps its own SQLite catalog)."""
    return Lake(args["lake_root"], args.get("s3_endpoint_url", ""), args["aws_region"],
                glue_database=args["glue_database"], commit_retries=int(args["commit_retries"]))


def open_pipes(args: dict[str, str]):
    """Dagster Pipes from inside Glue: context from S3 (PipesS3ContextInjector), messages on stdout,
    which Glue ships to CloudWatch (`/aws-glue/jobs/output`, stream = run id) for PipesCloudWatchMessageReader."""
    import boto3
    from dagster_pipes import PipesCliArgsParamsLoader, PipesS3ContextLoader, open_dagster_pipes

    s3 = boto3.client("s3", region_name=args["aws_region"], endpoint_url=args.get("s3_endpoint_url") or None)
    return open_dagster_pipes(context_loader=PipesS3ContextLoader(s3), params_loader=PipesCliArgsParamsLoader())


def _secret_credentials(args: dict[str, str]) -> tuple[str, str] | None:
    """SASL user/password from a Secrets Manager secret (`{"username": ..., "password": ...}`), never from arguments."""
    secret_id = args.get("kafka_sasl_secret_id")
    if not secret_id:
        return None
    import boto3

    client = boto3.client("secretsmanager", region_name=args["aws_region"])
    secret = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    return secret["username"], secret["password"]


def kafka_security_args(args: dict[str, str]) -> tuple[str, str, tuple[str, str] | None]:
    """(security protocol, SASL mechanism, SASL credentials or None for none needed) of a Bronze job.

    Credentials come from the Secrets Manager secret `--kafka_sasl_secret_id` (never from job arguments),
    else from the environment as everywhere else; AWS_MSK_IAM signs with the job role instead."""
    import os

    from crypto_assets.contracts.kafka_security import sasl_credentials

    protocol, mechanism = args["kafka_security_protocol"], args["kafka_sasl_mechanism"]
    credentials = _secret_credentials(args)
    if credentials is None and protocol.startswith("SASL_") and mechanism != "AWS_MSK_IAM":
        credentials = sasl_credentials(dict(os.environ))
    return protocol, mechanism, credentials


def kafka_from_args(kind: str, args: dict[str, str]):
    """The Kafka cluster and topic of a Bronze job, as the Dagster resource would describe them."""
    from crypto_assets.bronze.kafka_source import KafkaClient

    protocol, mechanism, credentials = kafka_security_args(args)
    return KafkaClient(
        bootstrap_servers=args["kafka_bootstrap"], **{f"{kind}_topic": args["topic"]},
        timestamp_skew_minutes=int(args["kafka_timestamp_skew_minutes"]),
        security_protocol=protocol, sasl_mechanism=mechanism, credentials=credentials,
    )


# ---- reports in Pipes' raw form ---------------------------------------------------------------


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def pipes_metadata(metadata: Metadata) -> dict:
    """A report's metadata in Pipes' raw form, JSON-safe (Pipes sends it as JSON)."""
    return _jsonable({name: {"raw_value": value, "type": kind} for name, (kind, value) in metadata.items()})


def _report(pipes, asset_key: str, metadata: Metadata, checks: list[CheckReport]) -> None:
    pipes.report_asset_materialization(metadata=pipes_metadata(metadata), asset_key=asset_key)
    for c in checks:
        pipes.report_asset_check(check_name=c.name, passed=c.passed, severity=c.severity,
                                 metadata=pipes_metadata(c.metadata), asset_key=asset_key)


# ---- the jobs ----------------------------------------------------------------------------------


def silver_job(kind: str, argv: list[str] | None = None) -> None:
    """One Silver partition (event_date x product) on Glue, reported to Dagster."""
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.silver.build import build_silver

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, SILVER_ARGS)
    lake = lake_from_args(args)  # Silver computes with Arrow on the driver: no Spark session needed
    day, product = date.fromisoformat(args["event_date"]), args["product_id"]
    rules = SilverRules(allowed_lateness_days=int(args["allowed_lateness_days"]))
    with open_pipes(args) as pipes:
        require = _flag(args, "require_bronze_day")
        s = build_silver(lake, kind, day, [product], rules, require_bronze_day=require, run_id=pipes.run_id,
                         full=_flag(args, "full"))[product]
        pipes.log.info(f"silver {kind} {day} {product}: {s.rows} rows, {s.duplicates} duplicates, "
                       f"{s.quarantined} quarantined from Bronze {s.bronze_days}")
        _report(pipes, silver_asset(kind), *silver_report(kind, s))


def gold_job(argv: list[str] | None = None) -> None:
    """One Gold partition (event_date x product) on Glue, reported to Dagster."""
    from crypto_assets.gold.build import build_gold

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, GOLD_ARGS)
    lake = lake_from_args(args)  # Gold reads and writes with Arrow: no Spark session
    day, product = date.fromisoformat(args["event_date"]), args["product_id"]
    with open_pipes(args) as pipes:
        s = build_gold(lake, day, [product], run_id=pipes.run_id, full=_flag(args, "full"))[product]
        pipes.log.info(f"gold {day} {product}: {s.rows} rows ({s.training_ready} training-ready), "
                       f"{s.excluded_lookback} excluded for lookback")
        _report(pipes, GOLD_ASSET, *gold_report(s))


def candles_job(interval: str, argv: list[str] | None = None) -> None:
    """One candles partition (event_date x product) of `interval` on Glue, reported to Dagster; the same
    arguments as Gold (`GOLD_ARGS`)."""
    from crypto_assets.gold.candles_build import build_candles
    from crypto_assets.gold.candles_report import candles_report

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, GOLD_ARGS)
    lake = lake_from_args(args)  # candles read and write with Arrow: no Spark session
    day, product = date.fromisoformat(args["event_date"]), args["product_id"]
    with open_pipes(args) as pipes:
        s = build_candles(lake, interval, day, [product], run_id=pipes.run_id, full=_flag(args, "full"))[product]
        pipes.log.info(f"candles {interval} {day} {product}: {s.rows} windows from {s.input_rows} input rows")
        _report(pipes, candles_asset(interval), *candles_report(s))


def bronze_batch_job(kind: str, argv: list[str] | None = None) -> None:
    """One Bronze ingest day on Glue, reported to Dagster: the Kafka records of that UTC day replace the
    `ingest_date` partition of the Bronze Iceberg table in one commit, through the local asset's
    `build_bronze_day` (same offset window, same rows, same snapshot summary for the sensors)."""
    from crypto_assets.bronze.build import build_bronze_day
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.contracts.settings import Settings

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, BRONZE_BATCH_ARGS)
    kafka = kafka_from_args(kind, args)
    lake = lake_from_args(args)
    day = date.fromisoformat(args["ingest_date"])
    rules = SilverRules(allowed_lateness_days=int(args["allowed_lateness_days"]))
    # The local rule (the setting's default): a small day is read without Spark, written by pyiceberg, as locally.
    small = Settings.model_fields["bronze_arrow_max_records"].default
    with open_pipes(args) as pipes:
        stats = build_bronze_day(lambda: glue_session(args), kafka, lake, kind, day, rules, run_id=pipes.run_id,
                                 arrow_max_records=small)
        pipes.log.info(f"bronze {kind} {day}: {stats.rows} rows ({stats.malformed} malformed) in {stats.files} "
                       f"files, {stats.bytes_written} bytes -> {stats.table} snapshot {stats.snapshot_id}; products {stats.products}")
        _report(pipes, bronze_asset(kind), bronze_report(stats), [])


def bronze_stream_job(kind: str, argv: list[str] | None = None) -> None:
    """Continuous Bronze on Glue: Kafka -> the Bronze Iceberg table, one append commit per micro-batch, exactly
    once (the local stream's `start_bronze_stream`), checkpoint in S3. Runs until stopped, or `--run_seconds`."""
    from crypto_assets.bronze.stream import start_bronze_stream
    from crypto_assets.contracts.partitioning import SilverRules

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, STREAM_ARGS, IF_SET_ARGS + STREAM_ONLY_IF_SET)
    spark = glue_session(args)
    lake = lake_from_args(args)
    checkpoint = args["checkpoint_root"].rstrip("/") + f"/bronze_{kind}"
    if checkpoint.startswith("s3://"):
        checkpoint = "s3a://" + checkpoint[len("s3://"):]
    query = start_bronze_stream(spark, kafka_from_args(kind, args), lake, kind, checkpoint,
                                SilverRules(allowed_lateness_days=int(args["allowed_lateness_days"])),
                                trigger_seconds=float(args["trigger_seconds"]))
    log.info("bronze %s stream from %s to %s, checkpoint %s", kind, args["topic"], lake.catalog_config.describe(),
             checkpoint)
    if args.get("run_seconds"):
        query.awaitTermination(int(args["run_seconds"]))
        query.processAllAvailable()
        query.stop()
    else:
        query.awaitTermination()


def maintenance_job(argv: list[str] | None = None) -> None:
    """Maintenance of one table on Glue (`lake.maintenance.maintain_table` with Glue's Spark and the Glue Data
    Catalog, as the local job does with its own): what it changed goes back to Dagster as a Pipes custom message."""
    from dataclasses import asdict

    from crypto_assets.contracts.tables import TABLES
    from crypto_assets.lake.maintenance import maintain_table

    argv = sys.argv if argv is None else argv
    args = resolve_args(argv, MAINTENANCE_ARGS)
    if args["table"] not in TABLES:
        raise JobArgumentError(f"Glue job argument --table is {args['table']!r}; expected one of {', '.join(TABLES)}")
    lake = lake_from_args(args)
    with open_pipes(args) as pipes:
        stats = maintain_table(glue_session(args), lake.catalog_config, TABLES[args["table"]],
                               int(args["retention_hours"]), max_snapshots=int(args["max_snapshots"]))
        pipes.log.info(f"maintenance of {stats.table}: {stats.rewritten_files} files rewritten into {stats.added_files}, "
                       f"{stats.expired_snapshots} snapshots expired, {stats.orphan_files} orphan files removed")
        pipes.report_custom_message(asdict(stats))
