"""The one way every asset, script and test gets a SparkSession.

Local mode by default (UTC session time zone, small shuffle, Kafka connector on the
classpath, ANSI mode set explicitly); a Spark Connect URL instead when configured. We own
session creation rather than using `PySparkResource`, which needs `sparkContext` and so
cannot work over Spark Connect.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.spark_conf import (  # shared with the Glue scripts
    LOCAL_CONF,
    RUNTIME_CONF,
    apply_s3a_conf,
    s3a_conf,
)


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

    from crypto_assets.tools.console import spark_log_options
    from crypto_assets.tools.jvm import require_java, spark_kafka_jars, spark_s3_jars

    require_java()
    # Python workers (pandas UDFs) must run the driver's interpreter, whose environment has pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    overrides = {k: v for k, v in (("state_dir", state_dir), ("jvm_dir", jvm_dir)) if v}
    settings = Settings.from_env(**overrides)
    # The S3A jars are always on the classpath: a local session can then read and write an s3:// lake.
    jars = ",".join(str(j) for j in [*spark_kafka_jars(settings), *spark_s3_jars(settings)])
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
    for k, v in conf.items():
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


class SparkResource(ConfigurableResource):
    """Spark session provider: local PySpark (`master`) or Spark Connect (`connect_url`)."""

    master: str = "local[2]"
    connect_url: str = ""
    shuffle_partitions: int = 4
    driver_memory: str = "4g"
    state_dir: str = ""
    jvm_dir: str = ""
    s3_endpoint_url: str = ""
    aws_region: str = ""

    _session = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkResource:
        return cls(
            master=settings.spark_master,
            connect_url=settings.spark_connect_url,
            shuffle_partitions=settings.spark_shuffle_partitions,
            driver_memory=settings.spark_driver_memory,
            state_dir=settings.state_dir,
            jvm_dir=settings.jvm_dir,
            s3_endpoint_url=settings.s3_endpoint_url,
            aws_region=settings.aws_region,
        )

    def get_session(self):
        if self._session is None:
            self._session = build_spark_session(
                master=self.master,
                connect_url=self.connect_url,
                shuffle_partitions=self.shuffle_partitions,
                driver_memory=self.driver_memory,
                state_dir=self.state_dir,
                jvm_dir=self.jvm_dir,
                s3_endpoint_url=self.s3_endpoint_url,
                aws_region=self.aws_region,
            )
        return self._session
