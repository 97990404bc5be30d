"""The Spark resource: a session per run, built by `lake/spark.py` from the settings, started only
when a run asks for it. We own session creation rather than using `PySparkResource`, which needs
`sparkContext` and so cannot work over Spark Connect."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.spark import build_spark_session


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
