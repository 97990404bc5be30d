"""Glue job arguments: every value a job needs comes from the settings (deploy's default arguments plus what
Dagster adds per run), none has a default in the entry scripts, and a missing one stops the job with one
line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from crypto_assets.contracts.glue_jobs import (
    BATCH_JOBS,
    GLUE_JOBS,
    MAINTENANCE_JOB,
    STREAM_JOBS,
    bronze_batch_job,
    job_arguments,
    kafka_kind,
    required_arguments,
)
from crypto_assets.contracts.names import CANDLE_INTERVALS, GOLD_ASSET, candles_asset, silver_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import silver_table_def
from crypto_assets.glue_jobs.jobs import lake_from_args
from crypto_assets.orchestration.glue import GlueCompute
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets_tests.support.local_glue import REPO, glue_script_env

DAY = date(2026, 3, 4)


def _settings(base_settings, **overrides):
    return base_settings.replace(lake_root="s3://lake-bucket/lake", compute="glue", **overrides)


def _run_arguments(settings, job: str) -> dict[str, str]:
    """What Dagster's Glue compute adds to the job's default arguments for one partition."""
    compute = GlueCompute.from_settings(settings, lake=LakeResource.from_settings(settings),
                                        kafka=KafkaResource.from_settings(settings))
    rules = SilverRules(allowed_lateness_days=settings.allowed_lateness_days)
    if job in STREAM_JOBS:
        return {}
    if job == MAINTENANCE_JOB:
        return compute.maintenance_arguments(silver_table_def("trades"), settings.snapshot_retention_hours,
                                             settings.snapshot_retention_count)
    if kafka_kind(job):
        assert job == bronze_batch_job(kafka_kind(job))
        return compute.bronze_arguments(kafka_kind(job), DAY, rules)
    if job == GOLD_ASSET or job in [candles_asset(i) for i in CANDLE_INTERVALS]:
        return compute.gold_arguments(DAY, "BTC-USD")  # the candles jobs take Gold's arguments
    assert job in (silver_asset("trades"), silver_asset("ticker"))
    return compute.silver_arguments(DAY, "BTC-USD", rules, require_bronze_day=True)


def _required(job: str) -> list[str]:
    return required_arguments(job)


def _argv(arguments: dict[str, str]) -> list[str]:
    return [item for pair in arguments.items() for item in pair]


@pytest.mark.parametrize("job", list(GLUE_JOBS))
def test_every_argument_a_job_requires_comes_from_the_settings(base_settings, job):
    plain = _settings(base_settings)
    given = {**job_arguments(plain, job), **_run_arguments(plain, job)}
    assert sorted(given) == sorted(f"--{name}" for name in _required(job))
    # The arguments of empty-means-none settings appear once those settings are set.
    full = _settings(base_settings, s3_endpoint_url="http://127.0.0.1:5000", kafka_sasl_secret_id="AmazonMSK_x")
    given = {**job_arguments(full, job), **_run_arguments(full, job)}
    extra = {"--s3_endpoint_url": "http://127.0.0.1:5000", **({"--kafka_sasl_secret_id": "AmazonMSK_x"}
                                                               if kafka_kind(job) else {})}
    assert sorted(given) == sorted([*(f"--{name}" for name in _required(job)), *extra])
    assert {k: given[k] for k in extra} == extra
    # The values are the settings'.
    assert given["--lake_root"] == "s3://lake-bucket/lake" and given["--aws_region"] == full.aws_region
    assert (given["--glue_database"], given["--commit_retries"]) == (full.glue_database, str(full.commit_retries))
    if "--allowed_lateness_days" in given:
        assert given["--allowed_lateness_days"] == str(full.allowed_lateness_days)
    if job in STREAM_JOBS:
        assert given["--trigger_seconds"] == str(full.stream_trigger_seconds)
    if job == MAINTENANCE_JOB:
        assert (given["--retention_hours"], given["--max_snapshots"], given["--table"]) == (
            str(full.snapshot_retention_hours), str(full.snapshot_retention_count), "silver.trades")
    if kafka_kind(job):
        assert (given["--kafka_bootstrap"], given["--kafka_timestamp_skew_minutes"], given["--kafka_security_protocol"],
                given["--kafka_sasl_mechanism"]) == (full.kafka_bootstrap, str(full.kafka_timestamp_skew_minutes),
                                                     full.kafka_security_protocol, full.kafka_sasl_mechanism)


# One argument per job, each one the entry scripts used to fill in silently when it was missing.
MISSING = {
    "silver_trades": "require_bronze_day", "silver_ticker": "allowed_lateness_days", "gold_features": "aws_region",
    "gold_candles_1m": "event_date", "gold_candles_1h": "product_id",
    "bronze_trades_batch": "kafka_timestamp_skew_minutes", "bronze_ticker_batch": "kafka_security_protocol",
    "bronze_trades_stream": "trigger_seconds", "bronze_ticker_stream": "glue_database",
    "lake_maintenance": "max_snapshots",
}


@pytest.mark.parametrize("job", sorted(MISSING))
def test_a_job_started_without_an_argument_fails_with_one_line_naming_it(base_settings, wheel, job):
    """The real entry script, with the shipped wheel as its code, as Glue would start it."""
    settings = _settings(base_settings)
    arguments = {**job_arguments(settings, job), **_run_arguments(settings, job)}
    del arguments[f"--{MISSING[job]}"]
    script = REPO / "glue" / GLUE_JOBS[job]
    proc = subprocess.run([sys.executable, str(script), *_argv(arguments)], env=glue_script_env(settings, wheel),
                          capture_output=True, text=True, cwd=os.sep, timeout=300)
    assert proc.returncode != 0
    # What Glue shows as the run's error (and Dagster in its one failure line): the exception's line.
    assert proc.stderr.strip().splitlines()[-1] == (
        f"crypto_assets.glue_jobs.jobs.JobArgumentError: Glue job argument --{MISSING[job]} is missing: "
        f"`crypto-pipeline aws deploy` sets every job argument from the settings (Dagster adds the partition's per "
        f"run); run deploy again with this version")


def test_a_job_opens_the_lake_and_catalog_its_arguments_name(base_settings):
    """The job's lake is the settings' lake, its catalog the settings' Glue database (what deploy created)."""
    settings = _settings(base_settings, s3_endpoint_url="http://127.0.0.1:5000", glue_database="crypto_x",
                         commit_retries=3)
    args = {k[2:]: v for k, v in {**job_arguments(settings, "gold_features"),
                                  **_run_arguments(settings, "gold_features")}.items()}
    config = lake_from_args(args).catalog_config
    assert config == LakeResource.from_settings(settings).catalog_config
    assert (config.kind, config.glue_database, config.commit_retries, config.endpoint_url) == (
        "glue", "crypto_x", 3, "http://127.0.0.1:5000")


def test_deploy_and_dagster_build_the_lake_arguments_alike(base_settings):
    """The arguments both set (deploy as defaults, Dagster per run) are equal: one builder."""
    settings = _settings(base_settings, s3_endpoint_url="http://127.0.0.1:5000", kafka_sasl_secret_id="AmazonMSK_x")
    for job in [*BATCH_JOBS, MAINTENANCE_JOB]:
        deployed, per_run = job_arguments(settings, job), _run_arguments(settings, job)
        assert {k: deployed[k] for k in deployed.keys() & per_run.keys()} == {
            k: per_run[k] for k in deployed.keys() & per_run.keys()}, job
