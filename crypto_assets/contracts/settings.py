"""Every setting of the pipeline, declared once: type, default, description and environment variable.

Two pydantic-settings classes: `Settings` (the lake, Kafka, Spark, Dagster and AWS; `CRYPTO_<NAME>`)
and `ProducerSettings` (the feed producer's own options; `CRYPTO_PRODUCER_<NAME>`, plus the
Coinbase variables). Constructing a class directly uses the declared defaults and the values given;
`from_env()` adds the environment (the process's, or a mapping), so tests and child processes
resolve settings the same way. A bad value stops with one `SettingsError` line naming the variable
and what it accepts. Secrets are `SecretStr`: never printed, never in the README table (which
`settings_markdown()` generates from these declarations: `crypto-pipeline settings --markdown`).
No Dagster or Spark imports here, so every layer can use it.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crypto_assets.contracts.names import PRODUCT_ID_PATTERN

ENV_PREFIX = "CRYPTO_"
PRODUCER_ENV_PREFIX = "CRYPTO_PRODUCER_"

Compute = Literal["local", "glue"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"]
COMPUTES: tuple[str, ...] = typing.get_args(Compute)
KAFKA_SECURITY_PROTOCOLS: tuple[str, ...] = typing.get_args(KafkaSecurityProtocol)
KAFKA_SASL_MECHANISMS: tuple[str, ...] = typing.get_args(KafkaSaslMechanism)

_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN.removeprefix("^").removesuffix(r"\z"))


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _default_home() -> Path:
    """The project folder: the repository root for a source checkout, else the working directory."""
    repo = Path(__file__).resolve().parents[2]  # crypto_assets/contracts/settings.py -> the repository
    if (repo / "setup.py").exists() and (repo / "crypto_assets").is_dir():
        return repo
    return Path.cwd()


# The environment `from_env` reads while it constructs (None: direct construction, no environment).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("crypto_settings_environ", default=None)


def _describe(annotation: Any) -> str:
    """What a value of this type looks like, for error lines."""
    if typing.get_origin(annotation) is Annotated:
        return _describe(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is tuple:
        return "a comma-separated list"
    return {int: "an integer", float: "a number", str: "text", SecretStr: "text"}.get(annotation, str(annotation))


class _Declared(BaseSettings):
    """Behaviour shared by the settings classes (frozen, env only through `from_env`, one-line errors)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_ignore_empty=True, populate_by_name=True,
                                      validate_default=True, hide_input_in_errors=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(type(self)._error_line(exc)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings,)
        env_settings.env_vars = {k.lower(): v for k, v in environ.items() if v != ""}
        return (init_settings, env_settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any):
        """Defaults, then the environment (`os.environ` unless a mapping is given), then `overrides`."""
        token = _ENVIRON.set(os.environ if environ is None else environ)
        try:
            return cls(**overrides)
        finally:
            _ENVIRON.reset(token)

    def replace(self, **changes: Any):
        """A copy with some values changed, validated like a new declaration."""
        return type(self)(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

    @classmethod
    def env_name(cls, name: str) -> str:
        alias = cls.model_fields[name].validation_alias
        return str(alias or cls.model_config["env_prefix"] + name.upper())

    @classmethod
    def _error_line(cls, exc: ValidationError) -> str:
        error = exc.errors(include_url=False)[0]
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule over several settings: its message names them
            return message
        name = str(error["loc"][0])
        name = next((n for n, f in cls.model_fields.items() if f.validation_alias == name), name)
        field = cls.model_fields.get(name)
        if field is None:
            return f"unknown setting {name!r}"
        var, raw = cls.env_name(name), error.get("input")
        shown = "" if field.annotation is SecretStr else f"={raw!r}"  # a secret's value is never shown
        if error["type"] == "value_error":
            return message if message.startswith(var) else f"{var}{shown} is not valid; {message}"
        if error["type"].endswith(("_parsing", "_type", "literal_error")):
            return f"{var}{shown} is not valid; expected {_describe(field.annotation)}"
        return f"{var}{shown} is not valid; {message[:1].lower()}{message[1:]}"


def _at_least(var_name: str, minimum: int, value: int, why: str = "") -> int:
    if value < minimum:
        raise ValueError(f"{ENV_PREFIX}{var_name} must be >= {minimum}{why}, got {value}")
    return value


class Settings(_Declared):
    """The lakehouse's settings (`CRYPTO_<NAME>`); paths left empty follow `home` and `lake_root`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    home: str = Field("", description="Project folder; state and lake default to folders inside it. Default: the repository root.")
    kafka_port: int = Field(9092, description="Local broker's client (PLAINTEXT) port on 127.0.0.1.")
    kafka_controller_port: int = Field(9093, description="Local broker's KRaft controller port on 127.0.0.1.")
    kafka_bootstrap: str = Field("", description="Kafka bootstrap servers used by the producer, Spark and Dagster. Default: 127.0.0.1:<kafka_port>.")
    kafka_partitions: int = Field(3, description="Partitions of each topic created by `crypto-pipeline kafka up`.")
    kafka_retention_bytes: int = Field(2 * 1024**3, description="Per-partition size retention of the local topics (no time retention, so replayed old data stays).")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker.")
    trades_topic: str = Field("crypto.trades.raw", description="Kafka topic of market_trades messages.")
    ticker_topic: str = Field("crypto.ticker.raw", description="Kafka topic of ticker messages.")
    deadletter_topic: str = Field("crypto.deadletter.raw", description="Kafka topic for frames the producer could not route (with a reason).")
    products: Annotated[tuple[str, ...], NoDecode] = Field(("BTC-USD", "ETH-USD"), description="Comma-separated Coinbase product ids.")
    lake_root: str = Field("", description="Root of the lake: the Iceberg warehouse of the Bronze/Silver/Gold tables. A local folder, or s3://bucket/prefix in AWS. Default: <home>/lake.")
    catalog: Literal["", "sql", "glue"] = Field("", description="The Iceberg catalog of the tables: `sql` (a SQLite file, shared by pyiceberg and Spark) or `glue` (the Glue Data Catalog, which Athena reads). Default: `sql` for a local lake, `glue` for an S3 lake.")
    catalog_uri: str = Field("", description="The `sql` catalog's database (SQLAlchemy URL). Default: sqlite:///<lake_root>/catalog.db, so a lake folder carries its own catalog.")
    commit_retries: int = Field(8, description="How often a commit that lost a race with another writer is retried on the new snapshot before the run fails.")
    snapshot_retention_hours: int = Field(24, description="Maintenance expires snapshots older than this (time travel reaches back this far); the last few snapshots of a table are always kept.")
    snapshot_retention_count: int = Field(500, description="Maintenance also keeps at most this many snapshots per table (the newest), whatever their age: a commit through pyiceberg costs about 0.6 ms more per kept snapshot (benchmarks/bench_commits.py: 81 ms at 250, 824 ms at 1,500), and a table the stream or the sensors commit to every few seconds would otherwise hold tens of thousands.")
    maintenance_cron: str = Field("7,22,37,52 * * * *", description="Cadence of the lake maintenance job (compact small files, expire snapshots, remove orphan files), cron, UTC.")
    state_dir: str = Field("", description="Git-ignored folder for the broker's data and logs and Spark's scratch files. Default: <home>/.state.")
    jvm_dir: str = Field("", description="Where the jars resolved from Maven Central are kept. Default: <home>/.state/jvm.")
    spark_master: str = Field("local[2]", description="Spark master of local Spark sessions (streaming Bronze, Bronze batch, maintenance).")
    spark_connect_url: str = Field("", description="If set (sc://host:port), every run attaches to that Spark Connect server (for example the warm local one of `crypto-pipeline spark up`) instead of starting its own Spark.")
    spark_connect_port: int = Field(15002, description="Port of the local Spark Connect server started by `crypto-pipeline spark up`, on 127.0.0.1.")
    spark_shuffle_partitions: int = Field(4, description="spark.sql.shuffle.partitions, sized for a small machine.")
    spark_driver_memory: str = Field("4g", description="Driver memory of the local Spark session.")
    first_date: str = Field("", description="First day of the daily partitions (UTC), YYYY-MM-DD. Empty: the lake's first Bronze ingest day, or today for a new lake (a backfill or the demo of earlier days moves it back to their first day).")
    kafka_timestamp_skew_minutes: int = Field(60, description="How far out of order Kafka record timestamps may be; Bronze widens its offset lookup by this much and then filters exactly by day.")
    allowed_lateness_days: int = Field(1, description="Days after its event day that a record may arrive and still reach its Silver partition.")
    bronze_mode: Literal["batch", "stream"] = Field("batch", description="How Bronze lands: `batch` (a schedule re-materializes today's Bronze on `bronze_batch_cron`) or `stream` (`crypto-pipeline stream` appends through a checkpoint; the Bronze sensor records its writes as materializations).")
    automation: Literal["off", "on"] = Field("off", description="`on` starts the schedule and sensors (Bronze cadence, Bronze -> Silver, Silver -> Gold, freshness) with `dagster dev`; `off` leaves them stopped until turned on in the UI.")
    bronze_batch_cron: str = Field("* * * * *", description="Cadence of the batch-mode Bronze schedule (cron, UTC).")
    bronze_arrow_max_records: int = Field(200_000, ge=0, description="A batch Bronze day whose Kafka window holds at most this many records is read with kafka-python and written with pyiceberg, without starting Spark (same rows, same commit); bigger windows go through Spark. 0: always Spark.")
    stream_trigger_seconds: int = Field(5, description="Micro-batch trigger interval of the streaming Bronze job.")
    stream_max_offsets_per_trigger: int = Field(500000, description="Most Kafka records one streaming micro-batch takes (bounds catch-up batches after downtime).")
    stream_checkpoint_root: str = Field("", description="Checkpoints of the streaming Bronze job, one folder per table. Default: <lake_root>/_checkpoints.")
    stream_stall_seconds: int = Field(120, description="Streaming mode: the Bronze sensor's tick fails (visible in the UI) when the stream has landed nothing for this long while Kafka holds newer records.")
    sensor_interval_seconds: int = Field(10, description="Minimum interval between ticks of the Bronze and Gold sensors.")
    silver_freshness_minutes: int = Field(3, description="Freshness policy of Silver: warn when no partition was updated for this long (while data flows).")
    gold_freshness_minutes: int = Field(5, description="Freshness policy of Gold: fail when no partition was updated for this long (while data flows).")
    dashboard_port: int = Field(8501, ge=1, le=65535, description="Port of `crypto-pipeline dashboard` (Streamlit) on 127.0.0.1; `--port` overrides it.")
    dashboard_refresh_seconds: int = Field(15, ge=1, description="How often the dashboard re-reads the lake (the newest snapshot of each table) while it is open.")
    baseline_model: Literal["off", "on"] = Field("off", description="`on`: the `gold_baseline_model` asset (a gradient-boosted baseline on Gold, purged walk-forward validation, leakage canaries) runs daily on its schedule and in `make demo`; `make live` turns it on.")
    baseline_train_days: int = Field(3, ge=1, description="Days of Gold before the partition's day that the baseline trains on (walk-forward: each day is tested on a model trained on the days before it).")
    baseline_min_rows: int = Field(1000, ge=1, description="Fewest training-ready Gold rows each day of the baseline's window must hold; fewer ends the run with a line naming the days.")
    baseline_suspicious_auc: float = Field(0.75, gt=0.5, le=1.0, description="The baseline's `suspicious_score` check fails when the walk-forward AUC exceeds this (a trade-level direction model this good usually leaks), naming the features that carry it.")
    baseline_cron: str = Field("30 1 * * *", description="When the baseline's schedule trains on yesterday's Gold (cron, UTC), with CRYPTO_BASELINE_MODEL=on.")
    aws_region: str = Field("us-east-1", description="AWS region of the S3 lake, Glue jobs, Glue Data Catalog and CloudWatch logs.")
    s3_endpoint_url: str = Field("", description="S3/Glue/CloudWatch endpoint override (a local S3 or moto server, http://host:port); empty = AWS.")
    compute: Compute = Field("local", description="Where Bronze (batch mode), Silver and Gold run: `local` (in the Dagster process: Spark for Bronze, Arrow for Silver and Gold) or `glue` (AWS Glue job runs through Dagster Pipes).")
    glue_job_prefix: str = Field("crypto-lakehouse", description="Name prefix of the Glue jobs `crypto-pipeline aws deploy` makes (`<prefix>-silver-trades`, ...) and of the default artifacts folder.")
    glue_role_arn: str = Field("", description="IAM role the Glue jobs run as (required by `aws deploy`).")
    glue_worker_type: str = Field("G.1X", description="Glue worker type of the Bronze jobs (batch and streaming), which run Spark work (G.1X = 4 vCPU, 16 GB, 1 DPU).")
    glue_workers: int = Field(2, description="Glue workers per Bronze job run (minimum 2).")
    glue_silver_gold_worker_type: str = Field("G.1X", description="Glue worker type of the Silver and Gold jobs, which compute with Arrow on the driver and run no Spark task: its memory must hold the driver's peak (README, AWS mode: about 5 GiB per million trades of a Gold product-day; G.1X = 16 GB, G.2X = 32 GB).")
    glue_silver_gold_workers: int = Field(2, description="Workers per Silver or Gold job run: Glue's minimum of 2 (one is the driver, the other idles).")
    glue_version: str = Field("5.1", description="Glue version of the jobs (5.1 = Spark 3.5, Python 3.11, Java 17).")
    glue_database: str = Field("crypto_lakehouse", description="Glue Data Catalog database of the Bronze/Silver/Gold tables (Athena reads it).")
    glue_timeout_minutes: int = Field(60, description="A Glue job run longer than this is stopped by Glue (state TIMEOUT) and fails the Dagster run.")
    glue_artifacts_root: str = Field("", description="S3 folder for the deployed wheel, Glue scripts and Dagster Pipes context. Default: s3://<lake bucket>/<glue_job_prefix>-artifacts.")
    kafka_security_protocol: KafkaSecurityProtocol = Field("PLAINTEXT", description="Kafka client security: PLAINTEXT (local broker), SSL, SASL_PLAINTEXT or SASL_SSL (managed Kafka, e.g. MSK).")
    kafka_sasl_mechanism: KafkaSaslMechanism = Field("SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN (user and password below) or AWS_MSK_IAM (AWS credentials).")
    kafka_sasl_username: str = Field("", description="SASL user name (SASL_* protocols with a SCRAM or PLAIN mechanism).")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password; a secret: never printed or logged.")
    kafka_sasl_secret_id: str = Field("", description="Glue Bronze jobs (batch and streaming): Secrets Manager secret holding {\"username\", \"password\"} for SASL (no secret in job arguments).")

    @field_validator("products", mode="before")
    @classmethod
    def _product_list(cls, value: Any) -> Any:
        items = tuple(p.strip() for p in value.split(",")) if isinstance(value, str) else tuple(value)
        items = tuple(p for p in items if p)
        if not items:
            raise ValueError(f"{ENV_PREFIX}PRODUCTS needs at least one product id, e.g. BTC-USD,ETH-USD")
        bad = [p for p in items if not _PRODUCT_ID.fullmatch(p)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not a Coinbase product id; expected a comma-separated "
                             f"list like BTC-USD,ETH-USD (upper case, BASE-QUOTE)")
        return items

    @field_validator("first_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}FIRST_DATE={value!r} is not a date; expected YYYY-MM-DD, or empty for "
                                 f"the lake's first Bronze day") from None
        return value

    @field_validator("kafka_partitions")
    @classmethod
    def _partitions(cls, value: int) -> int:
        return _at_least("KAFKA_PARTITIONS", 1, value)

    @field_validator("glue_workers", "glue_silver_gold_workers")
    @classmethod
    def _workers(cls, value: int, info) -> int:
        return _at_least(info.field_name.upper(), 2, value, " (Glue's minimum)")

    @field_validator("glue_timeout_minutes")
    @classmethod
    def _timeout(cls, value: int) -> int:
        return _at_least("GLUE_TIMEOUT_MINUTES", 1, value)

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if self.kafka_port == self.kafka_controller_port:
            raise ValueError(f"{ENV_PREFIX}KAFKA_PORT and {ENV_PREFIX}KAFKA_CONTROLLER_PORT must differ "
                             f"(both are {self.kafka_port})")
        home = Path(self.home) if self.home else _default_home()
        derived = {
            "home": str(home),
            "state_dir": self.state_dir or str(home / ".state"),
            "jvm_dir": self.jvm_dir or str(home / ".state" / "jvm"),
            "lake_root": self.lake_root or str(home / "lake"),
            "kafka_bootstrap": self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}",
        }
        on_s3 = derived["lake_root"].startswith(("s3://", "s3a://"))
        if self.catalog == "sql" and on_s3 and not self.catalog_uri:
            raise ValueError(f"{ENV_PREFIX}CATALOG=sql with an S3 lake needs {ENV_PREFIX}CATALOG_URI (a SQLAlchemy URL "
                             f"such as sqlite:////path/catalog.db), or leave {ENV_PREFIX}CATALOG empty for the Glue catalog")
        if not self.glue_artifacts_root and on_s3:
            bucket = derived["lake_root"].split("://", 1)[1].split("/", 1)[0]
            derived["glue_artifacts_root"] = f"s3://{bucket}/{self.glue_job_prefix}-artifacts"
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: the derived defaults are set once, here
        return self

    @property
    def topics(self) -> tuple[str, str]:
        return (self.ticker_topic, self.trades_topic)

    @property
    def lake_on_s3(self) -> bool:
        return self.lake_root.startswith(("s3://", "s3a://"))

    @property
    def catalog_kind(self) -> str:
        """`catalog`, or its default for the lake root (follows lake_root, like the checkpoints)."""
        return self.catalog or ("glue" if self.lake_on_s3 else "sql")

    @property
    def catalog_url(self) -> str:
        """`catalog_uri`, or the SQLite file inside a local lake (empty for the Glue catalog)."""
        if self.catalog_uri or self.catalog_kind == "glue":
            return self.catalog_uri
        return f"sqlite:///{Path(self.lake_root).resolve()}/catalog.db"

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


def parse_port_or_off(value: Any) -> int | None:
    """A port number, 0 (any free port) or off/none/no (no endpoint)."""
    if isinstance(value, str):
        if value.strip().lower() in ("off", "none", "no"):
            return None
        try:
            value = int(value)
        except ValueError:
            raise ValueError("expected a port (0-65535) or 'off'") from None
    if value is not None and not 0 <= value <= 65535:
        raise ValueError(f"must be a port (0-65535) or 'off', got {value}")
    return value


class ProducerSettings(_Declared):
    """The feed producer's own options (`CRYPTO_PRODUCER_<NAME>`); each also has a CLI option of `produce`."""

    model_config = SettingsConfigDict(env_prefix=PRODUCER_ENV_PREFIX)

    ws_url: str = Field("wss://advanced-trade-ws.coinbase.com", validation_alias="CRYPTO_COINBASE_WS_URL",
                        description="Coinbase Advanced Trade WebSocket endpoint (ws:// or wss://).")
    watchdog_s: float = Field(10.0, gt=0, description="Seconds without any frame (heartbeats arrive every second) after which the connection is dropped and made again.")
    backoff_base_s: float = Field(0.5, gt=0, description="First reconnect delay; doubles per failed attempt, with jitter.")
    backoff_cap_s: float = Field(30.0, description="Longest reconnect delay.")
    min_connect_interval_s: float = Field(0.5, ge=0, description="Least time between two connection attempts (Coinbase rate-limits connects).")
    buffer_records: int = Field(100_000, ge=1, description="Records kept in memory while Kafka has not acknowledged them; at this bound (or buffer_mb) the producer waits for Kafka.")
    buffer_mb: float = Field(64.0, gt=0, description="The same bound in MiB of record values.")
    metrics_port: Annotated[int | None, NoDecode] = Field(9108, description="Port of the Prometheus metrics endpoint on 127.0.0.1 for live runs (offline runs only with `--metrics-port`); 0 = any free port, `off` = none.")
    status_interval_s: float = Field(10.0, ge=0, description="Seconds between status lines (0 = none).")
    linger_ms: int = Field(5, ge=0, description="Kafka producer linger (batching delay) in milliseconds.")
    record: str | None = Field(None, description="Also save the live frames to this file (JSON lines), for `--source replay` later.")
    close_timeout_s: float = Field(30.0, ge=0, description="On stop, how long to wait for Kafka to take the buffered records.")
    coinbase_api_key_name: str = Field("", validation_alias="COINBASE_API_KEY_NAME",
                                       description="Coinbase CDP API key name (optional: the public channels need no key); set with the private key.")
    coinbase_api_private_key: SecretStr = Field(SecretStr(""), validation_alias="COINBASE_API_PRIVATE_KEY",
                                                description="Its EC P-256 private key (PEM; literal \\n accepted); a secret: never printed or logged.")

    @field_validator("ws_url")
    @classmethod
    def _websocket(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("a WebSocket URL must start with ws:// or wss://")
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> int | None:
        return parse_port_or_off(value)

    @model_validator(mode="after")
    def _backoff(self) -> ProducerSettings:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError(f"{self.env_name('backoff_cap_s')} must be >= {self.env_name('backoff_base_s')}")
        return self

    @property
    def buffer_bytes(self) -> int:
        return int(self.buffer_mb * 1024**2)


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, tuple):
        value = ",".join(value)
    return "" if value in ("", None) else f"`{value}`"


def settings_markdown() -> str:
    """The README's settings table, generated from the declarations above."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for cls, defaults in ((Settings, Settings(home="<home>")), (ProducerSettings, ProducerSettings())):
        for name, field in cls.model_fields.items():
            lines.append(f"| `{cls.env_name(name)}` | {_shown(getattr(defaults, name))} | {field.description} |")
    return "\n".join(lines)


def environment(*declared: _Declared) -> dict[str, str]:
    """The `CRYPTO_*` variables that make a child process resolve the same settings (secrets included:
    they go to the child's environment, never to output)."""
    env: dict[str, str] = {}
    for settings in declared:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value in ("", None):
                continue
            env[type(settings).env_name(name)] = ",".join(value) if isinstance(value, tuple) else str(value)
    return env
