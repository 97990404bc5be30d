"""The one way every step, script and test gets a SparkSession (not Glue: `glue_jobs` gets Glue's).

Local mode by default (UTC session time zone, small shuffle, Kafka connector and S3A on the
classpath, ANSI mode set explicitly, the JVM's log in `<state>/logs/spark.log`); a Spark Connect
URL instead when configured. The Dagster resource (`orchestration/resources/spark.py`) and the
tools build their sessions here.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.catalog import SPARK_CATALOG, CatalogConfig, CatalogError
from crypto_assets.lake.spark_conf import ICEBERG_EXTENSIONS, LOCAL_CONF, RUNTIME_CONF, apply_s3a_conf, s3a_conf

log = logging.getLogger(__name__)


def log_dir(state_dir: str) -> Path:
    """Where commands and the Spark JVM write their log files."""
    return Path(state_dir) / "logs"


def build_spark_session(
    master: str = "local[2]",
    connect_url: str = "",
    shuffle_partitions: int = 4,
    driver_memory: str = "4g",
    state_dir: str = "",
    jvm_dir: str = "",
    extra_conf: dict[str, str] | None = None,
    app_name: str = "crypto-lakehouse",
    s3_endpoint_url: str = "",
    aws_region: str = "",
):
    from pyspark.sql import SparkSession

    conf = {**RUNTIME_CONF, **LOCAL_CONF}
    conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    conf.update(extra_conf or {})
    if connect_url:
        spark = SparkSession.builder.remote(connect_url).getOrCreate()
        for k, v in conf.items():
            spark.conf.set(k, v)
        return spark

    from crypto_assets.lake.jars import require_java, spark_iceberg_jars, spark_kafka_jars, spark_s3_jars

    require_java()
    # Python workers (pandas UDFs) must run the driver's interpreter, whose environment has pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    overrides = {k: v for k, v in (("state_dir", state_dir), ("jvm_dir", jvm_dir)) if v}
    settings = Settings.from_env(**overrides)
    # The S3A jars are always on the classpath: a local session can then read and write an s3:// lake.
    jars = ",".join(str(j) for j in [*spark_kafka_jars(settings), *spark_s3_jars(settings),
                                     *spark_iceberg_jars(settings)])
    warehouse = Path(settings.state_dir) / "spark-warehouse"
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.jars", jars)
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions",
                f"-Duser.timezone=UTC -Dderby.system.home={warehouse} {spark_log_options(settings.state_dir)}")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    for k, v in {**conf, **ICEBERG_EXTENSIONS}.items():
        builder = builder.config(k, v)
    for k, v in s3a_conf(s3_endpoint_url, aws_region).items():
        builder = builder.config(f"spark.hadoop.{k}", v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if s3_endpoint_url or aws_region:
        apply_s3a_conf(spark, s3_endpoint_url, aws_region)
    # getOrCreate may hand back an existing session: make sure runtime settings hold anyway.
    for k, v in conf.items():
        if spark.conf.isModifiable(k):
            spark.conf.set(k, v)
    return spark


def lake_session(spark, config: CatalogConfig):
    """A session whose catalog `lake` is this lake's Iceberg catalog: `spark` itself when its `lake` is
    unset (it is set now) or already this one, else a new session on the same Spark context (a
    process using two lakes, as the tests do). Iceberg's JDBC catalog keys its tables by the catalog's
    name, which pyiceberg writes as `lake`, so the name cannot vary per lake."""
    from crypto_assets.lake.catalog import open_catalog

    open_catalog(config)  # creates the catalog's own tables, which Spark's JDBC catalog then only reads
    conf = config.spark_conf()
    conf.pop("spark.sql.extensions")  # static: set when the session is built
    key = f"spark.sql.catalog.{SPARK_CATALOG}"
    current = {k: spark.conf.get(k, None) for k in conf}
    if current == conf:
        return spark
    if current[key] is not None:
        if _is_connect(spark):
            raise CatalogError(f"the Spark Connect session already serves the lake {current[f'{key}.warehouse']}; "
                               f"restart it for {config.root} (crypto-pipeline spark down, then spark up)")
        spark = spark.newSession()
    for k, v in conf.items():
        spark.conf.set(k, v)
    return spark


def _is_connect(spark) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def spark_table(config: CatalogConfig, t) -> str:
    """The Spark SQL name of a declared table in a session from `lake_session`."""
    return ".".join((SPARK_CATALOG, *config.identifier(t)))


_COMMIT_LOCK = threading.Lock()
BUSY_RETRIES = 8


def spark_commit(write, committed=lambda: False) -> None:
    """Runs a Spark write to an Iceberg table (`write()`), one at a time per process (the two streams
    of `crypto-pipeline stream` share the catalog), again when the SQLite catalog was busy: its commit
    failed before changing the table (`committed()` says whether it landed after all)."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            with _COMMIT_LOCK:
                write()
            return
        except Exception as exc:  # noqa: BLE001 - only the catalog's busy database is retried
            if "SQLITE_BUSY" not in str(exc) or attempt == BUSY_RETRIES:
                raise
            if committed():
                return
            log.info("the SQLite catalog was busy; committing again (attempt %d)", attempt + 2)
            time.sleep(min(0.1 * 2**attempt, 3.0))


# The Spark driver's log4j2 configuration: everything at WARN into a file, nothing on the terminal
# (Spark's default prints its start-up banner and per-host warnings there).
_LOG4J2 = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yyyy-MM-dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
"""


def spark_log_options(state_dir: str) -> str:
    """A `-Dlog4j2.configurationFile=...` option for the Spark driver (the file is written here)."""
    folder = log_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "log4j2-spark.properties"
    text = _LOG4J2.format(log_file=folder / "spark.log")
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return f"-Dlog4j2.configurationFile={config}"
