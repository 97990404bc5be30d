"""The local stack's JVM dependencies: the Kafka broker with its log4j2 backend, and the Spark
Connect server plugin, resolved from Maven Central like Spark's own jars (`lake/jars.py`)."""

from __future__ import annotations

from pathlib import Path

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.jars import POM_DIR, resolve_jars

KAFKA_VERSION = "4.4.0"


def kafka_broker_jars(settings: Settings) -> list[Path]:
    """Jars of the Apache Kafka broker (KRaft) plus log4j2, resolved on first use."""
    target = settings.jvm_cache_dir / f"kafka-broker-{KAFKA_VERSION}"
    return resolve_jars(POM_DIR / "kafka-broker" / "pom.xml", target, {"kafka.version": KAFKA_VERSION})


def spark_connect_jars(settings: Settings) -> list[Path]:
    """The Spark Connect server plugin at exactly the installed PySpark version."""
    import pyspark

    version = pyspark.__version__
    target = settings.jvm_cache_dir / f"spark-connect-{version}"
    return resolve_jars(POM_DIR / "spark-connect" / "pom.xml", target, {"spark.version": version})
