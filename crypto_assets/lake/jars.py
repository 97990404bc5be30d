"""Resolves JVM dependencies from Maven Central into the state folder, once (`resolve_jars`),
and the jar sets a Spark session needs: Spark's Kafka source at the installed PySpark version,
Spark's S3A filesystem (hadoop-aws at PySpark's Hadoop version with its AWS SDK bundle), and
Iceberg's Spark runtime with the SQLite JDBC driver and Iceberg's AWS bundle (Glue catalog, S3).

Each set is described by a POM under `jvm/` in the repository. Maven's own local repository
(~/.m2) caches downloads; a marker file makes repeated calls free. The local stack's own sets
(the Kafka broker, the Spark Connect server) are in `tools/jvm.py`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from crypto_assets.contracts.settings import Settings


class SetupError(RuntimeError):
    """A missing tool or failed download; the message says what to install or check."""


# The POMs are tooling, kept at the repository's top level (`jvm/`), not inside the package.
POM_DIR = Path(__file__).resolve().parents[2] / "jvm"  # crypto_assets/lake/jars.py -> <repo>/jvm


def require_java() -> str:
    java = shutil.which("java")
    if not java:
        raise SetupError("Java not found: install a Java 17 runtime (Debian: apt-get install openjdk-17-jdk-headless)")
    return java


def require_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise SetupError("Maven not found: install Apache Maven (Debian: apt-get install maven)")
    return mvn


def resolve_jars(pom: Path, target: Path, properties: dict[str, str]) -> list[Path]:
    """The jars of `pom` (with these Maven properties) in `target`, resolved on first use."""
    marker = target / ".resolved"
    if marker.exists():
        return sorted(target.glob("*.jar"))
    if not pom.exists():
        raise SetupError(f"{pom} not found: JVM dependencies are resolved from a source checkout of this repository")
    require_java()
    mvn = require_maven()
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        *(f"-D{k}={v}" for k, v in properties.items()),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SetupError(
            f"Maven could not resolve {pom.parent.name} from Maven Central "
            f"(check network access to Maven Central):\n{tail}"
        )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    marker.write_text(" ".join(cmd) + "\n")
    return sorted(target.glob("*.jar"))


def spark_kafka_jars(settings: Settings) -> list[Path]:
    """Spark's Kafka source at exactly the installed PySpark version."""
    import pyspark

    version = pyspark.__version__
    target = settings.jvm_cache_dir / f"spark-kafka-{version}"
    return resolve_jars(POM_DIR / "spark-kafka" / "pom.xml", target, {"spark.version": version})


# PySpark 3.5.x ships Hadoop 3.3.4; hadoop-aws must be the same version, and 1.12.262 is the AWS SDK
# bundle hadoop-aws 3.3.4 was built against.
HADOOP_AWS_VERSION = "3.3.4"
AWS_SDK_BUNDLE_VERSION = "1.12.262"


def spark_s3_jars(settings: Settings) -> list[Path]:
    """hadoop-aws + aws-java-sdk-bundle: Spark reads and writes `s3a://` paths with them."""
    target = settings.jvm_cache_dir / f"spark-s3-hadoop-{HADOOP_AWS_VERSION}"
    return resolve_jars(
        POM_DIR / "spark-s3" / "pom.xml", target,
        {"hadoop.version": HADOOP_AWS_VERSION, "aws.sdk.version": AWS_SDK_BUNDLE_VERSION},
    )


# The Iceberg version Glue 5.1 bundles; the SQLite driver opens the local catalog file.
ICEBERG_VERSION = "1.10.0"
SQLITE_JDBC_VERSION = "3.54.1.0"


def spark_iceberg_jars(settings: Settings) -> list[Path]:
    """iceberg-spark-runtime (Spark 3.5, Scala 2.12), iceberg-aws-bundle and sqlite-jdbc."""
    target = settings.jvm_cache_dir / f"spark-iceberg-{ICEBERG_VERSION}"
    return resolve_jars(
        POM_DIR / "spark-iceberg" / "pom.xml", target,
        {"iceberg.version": ICEBERG_VERSION, "sqlite.jdbc.version": SQLITE_JDBC_VERSION},
    )
