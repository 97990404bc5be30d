"""Typed settings for every part of the pipeline, with `CRYPTO_*` environment overrides.

This is the one place settings are declared; the README's configuration table is generated
from `SETTINGS_DOC` below (`crypto-pipeline settings --markdown`). No Dagster or Spark imports
here, so the producer can use it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

ENV_PREFIX = "CRYPTO_"


def _default_home() -> Path:
    """The project folder: the repository root for a source checkout, else the working directory."""
    repo = Path(__file__).resolve().parents[2]  # crypto_assets/contracts/settings.py -> the repository
    if (repo / "setup.py").exists() and (repo / "crypto_assets").is_dir():
        return repo
    return Path.cwd()


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


COMPUTES = ("local", "glue")
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(f"{ENV_PREFIX}{name}={value!r} is not valid; expected one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Settings:
    home: str = ""
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_bootstrap: str = ""
    kafka_partitions: int = 3
    kafka_retention_bytes: int = 2 * 1024**3
    kafka_heap: str = "512m"
    trades_topic: str = "crypto.trades.raw"
    ticker_topic: str = "crypto.ticker.raw"
    deadletter_topic: str = "crypto.deadletter.raw"
    products: tuple[str, ...] = ("BTC-USD", "ETH-USD")
    lake_root: str = ""
    state_dir: str = ""
    jvm_dir: str = ""
    spark_master: str = "local[2]"
    spark_connect_url: str = ""
    spark_connect_port: int = 15002
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "4g"
    first_date: str = ""
    kafka_timestamp_skew_minutes: int = 60
    allowed_lateness_days: int = 1
    bronze_mode: str = "batch"
    automation: str = "off"
    bronze_batch_cron: str = "* * * * *"
    stream_trigger_seconds: int = 5
    stream_max_offsets_per_trigger: int = 500000
    stream_checkpoint_root: str = ""
    stream_compact_files: int = 32
    stream_stall_seconds: int = 120
    sensor_interval_seconds: int = 10
    silver_freshness_minutes: int = 3
    gold_freshness_minutes: int = 5
    aws_region: str = "us-east-1"
    s3_endpoint_url: str = ""
    compute: str = "local"
    glue_job_prefix: str = "crypto-lakehouse"
    glue_role_arn: str = ""
    glue_worker_type: str = "G.1X"
    glue_workers: int = 2
    glue_version: str = "5.1"
    glue_database: str = "crypto_lakehouse"
    glue_timeout_minutes: int = 60
    glue_artifacts_root: str = ""
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_secret_id: str = ""

    def __post_init__(self) -> None:
        home = Path(self.home) if self.home else _default_home()
        object.__setattr__(self, "home", str(home))
        if not self.state_dir:
            object.__setattr__(self, "state_dir", str(home / ".state"))
        if not self.jvm_dir:
            object.__setattr__(self, "jvm_dir", str(home / ".state" / "jvm"))
        if not self.lake_root:
            object.__setattr__(self, "lake_root", str(home / "lake"))
        _one_of("BRONZE_MODE", self.bronze_mode, ("batch", "stream"))
        _one_of("AUTOMATION", self.automation, ("off", "on"))
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap", f"127.0.0.1:{self.kafka_port}")
        if self.stream_compact_files == 1 or self.stream_compact_files < 0:
            raise SettingsError(f"{ENV_PREFIX}STREAM_COMPACT_FILES must be 0 (off) or >= 2, got {self.stream_compact_files}")
        if self.first_date:
            try:
                date.fromisoformat(self.first_date)
            except ValueError:
                raise SettingsError(
                    f"{ENV_PREFIX}FIRST_DATE={self.first_date!r} is not a date; expected YYYY-MM-DD, or empty for "
                    f"the lake's first Bronze day"
                ) from None
        if self.kafka_partitions < 1:
            raise SettingsError(f"{ENV_PREFIX}KAFKA_PARTITIONS must be >= 1, got {self.kafka_partitions}")
        if not self.glue_artifacts_root and self.lake_root.startswith(("s3://", "s3a://")):
            bucket = self.lake_root.split("://", 1)[1].split("/", 1)[0]
            object.__setattr__(self, "glue_artifacts_root", f"s3://{bucket}/{self.glue_job_prefix}-artifacts")
        _one_of("COMPUTE", self.compute, COMPUTES)
        _one_of("KAFKA_SECURITY_PROTOCOL", self.kafka_security_protocol, KAFKA_SECURITY_PROTOCOLS)
        _one_of("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism, KAFKA_SASL_MECHANISMS)
        if self.glue_workers < 2:
            raise SettingsError(f"{ENV_PREFIX}GLUE_WORKERS must be >= 2 (Glue's minimum), got {self.glue_workers}")
        if self.glue_timeout_minutes < 1:
            raise SettingsError(f"{ENV_PREFIX}GLUE_TIMEOUT_MINUTES must be >= 1, got {self.glue_timeout_minutes}")
        if self.kafka_port == self.kafka_controller_port:
            raise SettingsError(
                f"{ENV_PREFIX}KAFKA_PORT and {ENV_PREFIX}KAFKA_CONTROLLER_PORT must differ "
                f"(both are {self.kafka_port})"
            )

    @property
    def topics(self) -> tuple[str, str]:
        return (self.ticker_topic, self.trades_topic)

    @property
    def checkpoint_root(self) -> str:
        """Follows lake_root unless set (so a copy with another lake gets its own checkpoints)."""
        return self.stream_checkpoint_root or f"{self.lake_root}/_checkpoints"

    @property
    def jvm_cache_dir(self) -> Path:
        return Path(self.jvm_dir)

    @property
    def broker_dir(self) -> Path:
        return Path(self.state_dir) / "kafka"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then `CRYPTO_<NAME>` variables, then explicit keyword overrides."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if var not in env or env[var] == "":
                continue
            raw = env[var]
            values[f.name] = _parse(var, raw, f.type)
        values.update(overrides)
        return cls(**values)


def _parse(var: str, raw: str, type_name: str):
    try:
        if type_name == "int":
            return int(raw)
        if type_name.startswith("tuple"):
            items = tuple(p.strip() for p in raw.split(",") if p.strip())
            if not items:
                raise ValueError("empty list")
            return items
        return raw
    except ValueError as exc:
        raise SettingsError(f"{var}={raw!r} is not valid ({exc}); expected {type_name}") from None


# name -> (description). Kept beside the dataclass so the README table cannot drift from it.
SETTINGS_DOC: dict[str, str] = {
    "home": "Project folder; state and lake default to folders inside it. Default: the repository root.",
    "kafka_port": "Local broker's client (PLAINTEXT) port on 127.0.0.1.",
    "kafka_controller_port": "Local broker's KRaft controller port on 127.0.0.1.",
    "kafka_bootstrap": "Kafka bootstrap servers used by the producer, Spark and Dagster. Default: 127.0.0.1:<kafka_port>.",
    "kafka_partitions": "Partitions of each topic created by `crypto-pipeline kafka up`.",
    "kafka_retention_bytes": "Per-partition size retention of the local topics (no time retention, so replayed old data stays).",
    "kafka_heap": "JVM heap of the local broker.",
    "trades_topic": "Kafka topic of market_trades messages.",
    "ticker_topic": "Kafka topic of ticker messages.",
    "deadletter_topic": "Kafka topic for frames the producer could not route (with a reason).",
    "products": "Comma-separated Coinbase product ids.",
    "lake_root": "Root of the lake (Bronze/Silver/Gold Parquet). A local folder, or s3://bucket/prefix in AWS. Default: <home>/lake.",
    "state_dir": "Git-ignored folder for the broker's data and logs and Spark's scratch files. Default: <home>/.state.",
    "jvm_dir": "Where the jars resolved from Maven Central are kept. Default: <home>/.state/jvm.",
    "spark_master": "Spark master of local Spark sessions (streaming Bronze, Bronze batch, maintenance).",
    "spark_connect_url": "If set (sc://host:port), every run attaches to that Spark Connect server (for example the warm local one of `crypto-pipeline spark up`) instead of starting its own Spark.",
    "spark_connect_port": "Port of the local Spark Connect server started by `crypto-pipeline spark up`, on 127.0.0.1.",
    "spark_shuffle_partitions": "spark.sql.shuffle.partitions, sized for a small machine.",
    "spark_driver_memory": "Driver memory of the local Spark session.",
    "first_date": "First day of the daily partitions (UTC), YYYY-MM-DD. Empty: the lake's first Bronze ingest day, or today for a new lake (a backfill or the demo of earlier days moves it back to their first day).",
    "kafka_timestamp_skew_minutes": "How far out of order Kafka record timestamps may be; Bronze widens its offset lookup by this much and then filters exactly by day.",
    "allowed_lateness_days": "Days after its event day that a record may arrive and still reach its Silver partition.",
    "bronze_mode": "How Bronze lands: `batch` (a schedule re-materializes today's Bronze on `bronze_batch_cron`) or `stream` (`crypto-pipeline stream` appends through a checkpoint; the Bronze sensor records its writes as materializations).",
    "automation": "`on` starts the schedule and sensors (Bronze cadence, Bronze -> Silver, Silver -> Gold, freshness) with `dagster dev`; `off` leaves them stopped until turned on in the UI.",
    "bronze_batch_cron": "Cadence of the batch-mode Bronze schedule (cron, UTC).",
    "stream_trigger_seconds": "Micro-batch trigger interval of the streaming Bronze job.",
    "stream_max_offsets_per_trigger": "Most Kafka records one streaming micro-batch takes (bounds catch-up batches after downtime).",
    "stream_checkpoint_root": "Checkpoints of the streaming Bronze job, one folder per table. Default: <lake_root>/_checkpoints.",
    "stream_compact_files": "Streaming Bronze: once an ingest day holds this many committed micro-batches, their small files are merged into one (and this many merged files into one again), so readers open few files; 0 turns merging off.",
    "stream_stall_seconds": "Streaming mode: the Bronze sensor's tick fails (visible in the UI) when the stream has landed nothing for this long while Kafka holds newer records.",
    "sensor_interval_seconds": "Minimum interval between ticks of the Bronze and Gold sensors.",
    "silver_freshness_minutes": "Freshness policy of Silver: warn when no partition was updated for this long (while data flows).",
    "gold_freshness_minutes": "Freshness policy of Gold: fail when no partition was updated for this long (while data flows).",
    "aws_region": "AWS region of the S3 lake, Glue jobs, Glue Data Catalog and CloudWatch logs.",
    "s3_endpoint_url": "S3/Glue/CloudWatch endpoint override (a local S3 or moto server, http://host:port); empty = AWS.",
    "compute": "Where Bronze (batch mode), Silver and Gold run: `local` (PySpark in the Dagster process) or `glue` (AWS Glue job runs through Dagster Pipes).",
    "glue_job_prefix": "Name prefix of the Glue jobs `crypto-pipeline aws deploy` makes (`<prefix>-silver-trades`, ...) and of the default artifacts folder.",
    "glue_role_arn": "IAM role the Glue jobs run as (required by `aws deploy`).",
    "glue_worker_type": "Glue worker type (G.1X = 4 vCPU, 16 GB, 1 DPU).",
    "glue_workers": "Glue workers per job run (minimum 2).",
    "glue_version": "Glue version of the jobs (5.1 = Spark 3.5, Python 3.11, Java 17).",
    "glue_database": "Glue Data Catalog database of the Bronze/Silver/Gold tables (Athena reads it).",
    "glue_timeout_minutes": "A Glue job run longer than this is stopped by Glue (state TIMEOUT) and fails the Dagster run.",
    "glue_artifacts_root": "S3 folder for the deployed wheel, Glue scripts and Dagster Pipes context. Default: s3://<lake bucket>/<glue_job_prefix>-artifacts.",
    "kafka_security_protocol": "Kafka client security: PLAINTEXT (local broker), SSL, SASL_PLAINTEXT or SASL_SSL (managed Kafka, e.g. MSK).",
    "kafka_sasl_mechanism": "SASL mechanism when the protocol is SASL_*: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (user/password from CRYPTO_KAFKA_SASL_USERNAME/_PASSWORD, never logged) or AWS_MSK_IAM (AWS credentials).",
    "kafka_sasl_secret_id": "Glue Bronze jobs (batch and streaming): Secrets Manager secret holding {\"username\", \"password\"} for SASL (no secret in job arguments).",
}


def settings_markdown() -> str:
    defaults = Settings(home="<home>")
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        value = getattr(defaults, f.name)
        if isinstance(value, tuple):
            value = ",".join(value)
        shown = f"`{value}`" if value != "" else ""
        lines.append(f"| `{ENV_PREFIX}{f.name.upper()}` | {shown} | {SETTINGS_DOC[f.name]} |")
    return "\n".join(lines)
