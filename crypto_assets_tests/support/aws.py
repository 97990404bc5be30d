"""AWS fixtures (a pytest plugin, registered by the root conftest): one moto server (S3, Glue, CloudWatch Logs, IAM-less) for the session, dummy credentials.

Every AWS call of these tests goes over HTTP to moto's server, as it would to AWS; nothing of
ours is patched. One gap of moto is closed in moto itself: its Glue UpdateTable does not check
`VersionId` (the compare-and-swap of Iceberg commits in the Glue catalog); here it does, as AWS.
Tests isolate themselves with their own bucket (and a Glue database of their own).
"""

from __future__ import annotations

import os
import uuid

import pytest

from crypto_assets_tests.conftest import free_port

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def aws_env():
    saved = {k: os.environ.get(k) for k in DUMMY_AWS_ENV}
    os.environ.update(DUMMY_AWS_ENV)
    yield DUMMY_AWS_ENV
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def moto_endpoint(aws_env):
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    _glue_update_table_checks_the_version()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(moto_endpoint) -> str:
    import boto3

    name = f"lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(base_settings, moto_endpoint, bucket):
    """Settings with an S3 lake in a bucket of its own on the moto server, its tables in a Glue database of its own."""
    return base_settings.replace(lake_root=f"s3://{bucket}/lake", s3_endpoint_url=moto_endpoint, aws_region="us-east-1",
                                 glue_artifacts_root=f"s3://{bucket}/glue-artifacts", glue_database=f"db_{bucket[5:]}")


@pytest.fixture
def s3_spark(spark, moto_endpoint, aws_env):
    """The session's Spark, pointed at moto for s3a:// paths and for Iceberg's Glue catalog and S3FileIO.

    The JVM may have started before the dummy credentials were in the environment, so they are set in
    Hadoop's configuration (S3A) and as the JVM's `aws.*` system properties, which the AWS SDK v2 that
    Iceberg's Glue and S3 clients use reads before the environment."""
    from crypto_assets.lake.spark_conf import apply_s3a_conf

    apply_s3a_conf(spark, moto_endpoint, "us-east-1")
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop.set("fs.s3a.access.key", aws_env["AWS_ACCESS_KEY_ID"])
    hadoop.set("fs.s3a.secret.key", aws_env["AWS_SECRET_ACCESS_KEY"])
    hadoop.set("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider")
    system = spark.sparkContext._jvm.java.lang.System
    for prop, var in (("aws.accessKeyId", "AWS_ACCESS_KEY_ID"), ("aws.secretAccessKey", "AWS_SECRET_ACCESS_KEY"),
                      ("aws.sessionToken", "AWS_SESSION_TOKEN"), ("aws.region", "AWS_REGION")):
        system.setProperty(prop, aws_env[var])
    return spark


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    """The project's wheel, built once per session the way `aws deploy` builds it."""
    from crypto_assets.tools.aws_deploy import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


def glue_settings(settings, bucket: str, endpoint: str, **overrides):
    """`settings` moved to AWS mode on moto: S3 lake, Glue compute, a job prefix and database of their own."""
    tag = uuid.uuid4().hex[:6]
    values = dict(
        lake_root=f"s3://{bucket}/lake", s3_endpoint_url=endpoint, aws_region="us-east-1", compute="glue",
        glue_artifacts_root=f"s3://{bucket}/glue-artifacts", glue_role_arn="arn:aws:iam::123456789012:role/crypto-glue",
        glue_job_prefix=f"t{tag}", glue_database=f"crypto_{tag}",
    )
    values.update(overrides)
    return settings.replace(**values)


def _glue_update_table_checks_the_version() -> None:
    """moto's Glue UpdateTable ignores `VersionId`; AWS refuses a stale one with ConcurrentModificationException.
    Iceberg's commits (pyiceberg's and Spark's Glue catalog) rely on that compare-and-swap, so moto's server is
    made to check it as AWS does (the server runs in this process; only the fake AWS is changed, not our code)."""
    import threading

    from moto.glue.exceptions import GlueClientError
    from moto.glue.responses import GlueResponse

    if getattr(GlueResponse.update_table, "checks_version", False):
        return
    original = GlueResponse.update_table
    lock = threading.Lock()

    def update_table(self):
        expected = self.parameters.get("VersionId")
        with lock:  # the check and the update as one step, as AWS does them
            if expected is not None:
                table = self.glue_backend.get_table(self.parameters.get("DatabaseName"),
                                                    self.parameters["TableInput"]["Name"])
                if str(table._current_version) != str(expected):
                    raise GlueClientError("ConcurrentModificationException",
                                          f"Update table failed due to concurrent modifications: version {expected} "
                                          f"is not the current version {table._current_version}")
            return original(self)

    update_table.checks_version = True
    GlueResponse.update_table = update_table
