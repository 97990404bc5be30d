"""Spark settings shared by the local session builder and the Glue entry scripts (no Dagster here)."""

from __future__ import annotations

# Settings the transforms rely on, applied to local, Connect and Glue sessions alike.
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.compression.codec": "snappy",
    # Plain microsecond timestamps (not legacy INT96): what Athena, Arrow and the catalog expect.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Silver caches its marked rows for a few passes within one run; compressing the in-memory
    # columns cost more CPU than the passes saved (2M tickers: 38.6 s -> 30.4 s for the first write).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}

# Static settings of every session we start (local and the Connect server): Iceberg's SQL extensions
# (the maintenance procedures). The catalog itself is set per lake at run time (`lake.spark.use_catalog`).
ICEBERG_EXTENSIONS = {"spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"}

# Local sessions and the local Spark Connect server only (not Glue, whose S3 listings gain from
# Spark's parallel listing): Silver reads an exact list of Bronze files, a few hundred once the
# stream has run a while, and above this many paths Spark lists them with a Spark job on every
# analysis of every action. Listing them in the driver made small Silver runs on 300 streamed
# files 2x faster through Spark Connect.
LOCAL_CONF = {
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
}


def s3a_conf(endpoint_url: str = "", region: str = "") -> dict[str, str]:
    """Hadoop S3A options (without the `spark.hadoop.` prefix) for `s3a://` lake paths.

    With no endpoint (AWS), S3A's default credential chain applies (environment, profile, instance
    role). An endpoint (a local S3 or moto server) needs path-style access; plain http needs SSL off.
    """
    conf = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # Fail in seconds, not minutes, when S3 is unreachable or a bucket is missing.
        "fs.s3a.attempts.maximum": "3",
        "fs.s3a.retry.limit": "3",
        "fs.s3a.connection.establish.timeout": "5000",
        "fs.s3a.connection.timeout": "30000",
    }
    if region:
        conf["fs.s3a.endpoint.region"] = region
    if endpoint_url:
        conf["fs.s3a.endpoint"] = endpoint_url
        conf["fs.s3a.path.style.access"] = "true"
        conf["fs.s3a.connection.ssl.enabled"] = "true" if endpoint_url.startswith("https") else "false"
        conf["fs.s3a.change.detection.mode"] = "none"
    return conf


def apply_s3a_conf(spark, endpoint_url: str = "", region: str = "") -> None:
    """Sets the S3A options on a running classic session (new S3A filesystem instances pick them up)."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for k, v in s3a_conf(endpoint_url, region).items():
        hadoop.set(k, v)
