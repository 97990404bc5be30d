"""`crypto-pipeline aws deploy | destroy` against moto's server: jobs (Iceberg enabled), arguments, the lake's
Iceberg tables in the Glue Data Catalog, idempotence."""

from __future__ import annotations

import boto3
import pytest

from crypto_assets.contracts.tables import TABLES, hive_type
from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.tools.aws_deploy import ICEBERG_MODULE, MADE_BY, SETTINGS_MODULES, DeployError, deploy, destroy
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import glue_conf

JOBS = ["bronze-trades-batch", "bronze-ticker-batch", "silver-trades", "silver-ticker", "gold-features",
        "gold-candles-1m", "gold-candles-1h", "lake-maintenance", "bronze-trades-stream", "bronze-ticker-stream"]
TABLE_NAMES = {"bronze_kafka_trades", "bronze_kafka_ticker", "silver_trades", "silver_ticker", "quarantine_trades",
               "quarantine_ticker", "gold_features", "gold_candles_1m", "gold_candles_1h"}


def _all_jobs(glue) -> list[str]:
    """Every Glue job name on the (shared) moto server: other tests' jobs fill more than one page."""
    return [name for page in glue.get_paginator("list_jobs").paginate() for name in page["JobNames"]]


def _clients(endpoint):
    return (boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1"),
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1"))


def _keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_deploy_creates_jobs_tables_and_is_idempotent_and_destroy_removes_only_its_own(
        base_settings, moto_endpoint, bucket, wheel, capsys):
    s = glue_settings(base_settings, bucket, moto_endpoint, glue_workers=3, glue_worker_type="G.2X",
                      glue_silver_gold_worker_type="G.4X")
    glue, s3 = _clients(moto_endpoint)
    # Things deploy did not make, which destroy must leave alone.
    s3.put_object(Bucket=bucket, Key="analyst/notes/part-0.parquet", Body=b"x")
    glue.create_job(Name="someone-elses-job", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"})

    first = deploy(s, wheel)
    prefix = s.glue_job_prefix
    assert sorted(first.jobs) == sorted(f"{prefix}-{j}" for j in JOBS)
    assert set(first.tables) == TABLE_NAMES
    assert f'FROM "{s.glue_database}"."gold_features"' in first.athena_query

    job = glue.get_job(JobName=f"{prefix}-silver-trades")["Job"]
    # Silver and Gold compute on the driver: the measured driver-only sizing, whatever the Bronze jobs get.
    for driver_only in ("silver-trades", "silver-ticker", "gold-features", "gold-candles-1m", "gold-candles-1h"):
        found = glue.get_job(JobName=f"{prefix}-{driver_only}")["Job"]
        assert (found["GlueVersion"], found["WorkerType"], found["NumberOfWorkers"]) == (
            "5.1", s.glue_silver_gold_worker_type, s.glue_silver_gold_workers)
    assert job["Role"] == s.glue_role_arn and job["Timeout"] == s.glue_timeout_minutes
    assert job["Command"] == {"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/glue-artifacts/scripts/silver_trades.py",
                              "PythonVersion": "3"}
    args = job["DefaultArguments"]
    assert args["--extra-py-files"] == f"s3://{bucket}/glue-artifacts/dist/{wheel.name}"
    assert args["--additional-python-modules"] == ",".join(["dagster-pipes==1.13.27", *SETTINGS_MODULES, ICEBERG_MODULE])
    assert args["--datalake-formats"] == "iceberg" and "--conf" not in args  # Silver: pyiceberg, no Spark catalog
    assert (args["--glue_database"], args["--commit_retries"]) == (s.glue_database, str(s.commit_retries))
    assert args["--lake_root"] == f"s3://{bucket}/lake" and args["--aws_region"] == "us-east-1"
    assert args["--allowed_lateness_days"] == "1" and args["--job-language"] == "python"
    stream = glue.get_job(JobName=f"{prefix}-bronze-trades-stream")["Job"]
    assert stream["Command"]["Name"] == "gluestreaming"
    assert stream["DefaultArguments"]["--topic"] == s.trades_topic
    assert stream["DefaultArguments"]["--kafka_bootstrap"] == s.kafka_bootstrap
    assert stream["DefaultArguments"]["--checkpoint_root"] == f"s3://{bucket}/glue-artifacts/checkpoints/"
    assert stream["DefaultArguments"]["--allowed_lateness_days"] == "1"
    assert stream["DefaultArguments"]["--trigger_seconds"] == str(s.stream_trigger_seconds)
    # The Bronze jobs write through Spark's Iceberg catalog: Glue opens it from `--conf` (the local `lake_session`'s).
    assert glue_conf(stream["DefaultArguments"]["--conf"]) == CatalogConfig.from_settings(s).spark_conf()
    assert glue_conf(stream["DefaultArguments"]["--conf"])["spark.sql.catalog.lake.type"] == "glue"
    assert (stream["WorkerType"], stream["NumberOfWorkers"]) == ("G.2X", 3)
    # Maintenance rewrites files with Spark: the Bronze jobs' workers and Spark catalog, the history to keep.
    maintenance = glue.get_job(JobName=f"{prefix}-lake-maintenance")["Job"]
    assert (maintenance["WorkerType"], maintenance["NumberOfWorkers"]) == ("G.2X", 3)
    assert glue_conf(maintenance["DefaultArguments"]["--conf"]) == CatalogConfig.from_settings(s).spark_conf()
    assert maintenance["DefaultArguments"]["--retention_hours"] == str(s.snapshot_retention_hours)
    # Bronze batch: the streaming job's Kafka arguments, kafka-python for the offset lookup, a batch job's settings.
    batch = glue.get_job(JobName=f"{prefix}-bronze-ticker-batch")["Job"]
    assert batch["Command"] == {"Name": "glueetl", "PythonVersion": "3",
                                "ScriptLocation": f"s3://{bucket}/glue-artifacts/scripts/bronze_ticker_batch.py"}
    assert (batch["GlueVersion"], batch["WorkerType"], batch["NumberOfWorkers"], batch["Timeout"]) == (
        "5.1", "G.2X", 3, s.glue_timeout_minutes)
    assert batch["DefaultArguments"] == {
        **{k: v for k, v in args.items() if k != "--additional-python-modules"},
        "--additional-python-modules": ",".join(["dagster-pipes==1.13.27", *SETTINGS_MODULES, ICEBERG_MODULE,
                                                 "kafka-python==3.0.12"]),
        "--conf": stream["DefaultArguments"]["--conf"],
        "--kafka_bootstrap": s.kafka_bootstrap, "--topic": s.ticker_topic,
        "--kafka_security_protocol": "PLAINTEXT", "--kafka_sasl_mechanism": "SCRAM-SHA-512",
        "--kafka_timestamp_skew_minutes": str(s.kafka_timestamp_skew_minutes),
    }
    stream_kafka = {k: v for k, v in stream["DefaultArguments"].items() if k.startswith("--kafka") or k == "--topic"}
    assert stream_kafka.items() <= {**batch["DefaultArguments"], "--topic": s.trades_topic}.items()
    assert glue.get_tags(ResourceArn=f"arn:aws:glue:us-east-1:123456789012:job/{prefix}-silver-trades")["Tags"][
        "created_by"] == MADE_BY

    # The lake's tables: Iceberg tables in the Glue database (what Athena reads), created from their declaration.
    for t in TABLES.values():
        table = glue.get_table(DatabaseName=s.glue_database, Name=t.flat_name)["Table"]
        params = table["Parameters"]
        assert params["table_type"] == "ICEBERG", t.flat_name
        assert params["metadata_location"].startswith(f"s3://{bucket}/lake/{t.layer}/{t.name}/metadata/")
        assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/lake/{t.layer}/{t.name}"
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == [(f.name, hive_type(f.type)) for f in t.schema], t.flat_name
    metadata = {glue.get_table(DatabaseName=s.glue_database, Name=t.flat_name)["Table"]["Parameters"][
        "metadata_location"] for t in TABLES.values()}

    keys_after_first = _keys(s3, bucket)
    second = deploy(s, wheel)  # idempotent: same jobs, tables and files, nothing duplicated
    assert sorted(second.jobs) == sorted(first.jobs) and sorted(second.tables) == sorted(first.tables)
    assert _keys(s3, bucket) == keys_after_first
    assert sorted(j for j in _all_jobs(glue) if j.startswith(prefix)) == sorted(first.jobs)
    assert len(glue.get_tables(DatabaseName=s.glue_database)["TableList"]) == len(TABLES)
    assert {t["Parameters"]["metadata_location"] for t in glue.get_tables(DatabaseName=s.glue_database)[
        "TableList"]} == metadata  # the tables were left as they were, not created again
    assert glue.get_job(JobName=f"{prefix}-silver-trades")["Job"]["DefaultArguments"] == args

    removed = destroy(s)
    assert sorted(removed["jobs"]) == sorted(first.jobs) and set(removed["tables"]) == TABLE_NAMES
    assert removed["database"] == [s.glue_database]
    assert not [j for j in _all_jobs(glue) if j.startswith(prefix)]
    assert "someone-elses-job" in _all_jobs(glue)
    assert s.glue_database not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]
    # The lake stays: the file deploy did not make, and the tables' Iceberg metadata (their data, if any).
    assert _keys(s3, bucket) == sorted(["analyst/notes/part-0.parquet",
                                        *(m[len(f"s3://{bucket}/"):] for m in metadata)])
    assert destroy(s) == {"jobs": [], "tables": [], "database": [], "keys": []}  # nothing left to remove


def test_destroy_keeps_a_database_that_holds_other_tables(base_settings, moto_endpoint, bucket, wheel):
    s = glue_settings(base_settings, bucket, moto_endpoint)
    glue, _ = _clients(moto_endpoint)
    deploy(s, wheel)
    glue.create_table(DatabaseName=s.glue_database, TableInput={"Name": "analyst_table"})
    removed = destroy(s)
    assert removed["database"] == [] and set(removed["tables"]) == TABLE_NAMES
    assert [t["Name"] for t in glue.get_tables(DatabaseName=s.glue_database)["TableList"]] == ["analyst_table"]


def test_cli_deploy_errors_are_one_line(base_settings, moto_endpoint, bucket, monkeypatch, capsys):
    from crypto_assets.tools.cli import main

    monkeypatch.setenv("CRYPTO_LAKE_ROOT", f"s3://{bucket}/lake")
    monkeypatch.setenv("CRYPTO_S3_ENDPOINT_URL", moto_endpoint)
    assert main(["aws", "deploy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: CRYPTO_GLUE_ROLE_ARN is not set: the Glue jobs need an IAM role to run as (see README, AWS mode)"
    monkeypatch.setenv("CRYPTO_GLUE_ROLE_ARN", "arn:aws:iam::123456789012:role/x")
    monkeypatch.setenv("CRYPTO_LAKE_ROOT", "s3://no-such-bucket-anywhere/lake")
    monkeypatch.setenv("CRYPTO_GLUE_ARTIFACTS_ROOT", f"s3://{bucket}/a")
    assert main(["aws", "deploy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "S3 bucket 'no-such-bucket-anywhere'" in err and "does not exist" in err


@pytest.mark.parametrize("table", list(TABLES.values()), ids=lambda t: t.flat_name)
def test_catalog_types_are_hive_types(table):
    allowed = ("string", "int", "bigint", "double", "boolean", "timestamp", "date", "binary", "array<")
    assert all(hive_type(f.type).startswith(allowed) for f in table.schema)


def test_destroy_leaves_a_table_of_another_lake_under_the_same_name(base_settings, moto_endpoint, bucket, wheel):
    s = glue_settings(base_settings, bucket, moto_endpoint)
    glue, _ = _clients(moto_endpoint)
    glue.create_database(DatabaseInput={"Name": s.glue_database})
    glue.create_table(DatabaseName=s.glue_database, TableInput={
        "Name": "gold_features", "Parameters": {"table_type": "ICEBERG",
                                                "metadata_location": "s3://elsewhere/gold/features/metadata/0.json"}})
    with pytest.raises(DeployError) as refused:  # not this lake's table: deploy refuses to use it
        deploy(s, wheel)
    assert str(refused.value) == (
        f"Glue database {s.glue_database!r} already holds a table gold_features that is not this lake's Iceberg table "
        f"(s3://elsewhere/gold/features/metadata/0.json, expected s3://{bucket}/lake/gold/features): set "
        f"CRYPTO_GLUE_DATABASE to another database, or drop that table")
    removed = destroy(s)
    assert "gold_features" not in removed["tables"] and removed["database"] == []


def test_bronze_jobs_get_the_secret_id_never_the_password(base_settings, moto_endpoint, bucket, wheel):
    s = glue_settings(base_settings, bucket, moto_endpoint, kafka_security_protocol="SASL_SSL",
                      kafka_sasl_secret_id="AmazonMSK_crypto")
    glue, _ = _clients(moto_endpoint)
    deploy(s, wheel)
    for job in ("bronze-trades-batch", "bronze-trades-stream"):
        args = glue.get_job(JobName=f"{s.glue_job_prefix}-{job}")["Job"]["DefaultArguments"]
        assert (args["--kafka_security_protocol"], args["--kafka_sasl_secret_id"]) == ("SASL_SSL", "AmazonMSK_crypto")
        assert not [k for k in args if "password" in k or "username" in k]
    assert "--kafka_sasl_secret_id" not in glue.get_job(JobName=f"{s.glue_job_prefix}-silver-trades")["Job"][
        "DefaultArguments"]
    destroy(s)


def test_modules_installed_in_glue_are_the_versions_the_tests_run():
    from importlib.metadata import version

    from crypto_assets.tools.aws_deploy import KAFKA_CLIENT_MODULE, PIPES_MODULE

    assert [m.partition("==")[0] for m in SETTINGS_MODULES] == ["pydantic", "pydantic-settings"]
    assert ICEBERG_MODULE.startswith("pyiceberg[glue]==0.12.")
    for pin in (PIPES_MODULE, KAFKA_CLIENT_MODULE, *SETTINGS_MODULES, ICEBERG_MODULE):
        name, _, pinned = pin.partition("==")
        name = name.split("[")[0]
        assert version(name) == pinned, pin


def test_deploy_saves_the_readme_queries_as_athena_named_queries_once(base_settings, moto_endpoint, bucket, wheel):
    """Every example query of the README (tools.example_queries, the text the SQL test runs on the demo's lake)
    is an Athena named query on the Glue database, with the same text; a second deploy adds none."""
    from crypto_assets.tools.aws_deploy import ATHENA_WORKGROUP
    from crypto_assets.tools.example_queries import EXAMPLE_QUERIES

    s = glue_settings(base_settings, bucket, moto_endpoint)
    athena = boto3.client("athena", endpoint_url=moto_endpoint, region_name="us-east-1")

    def saved() -> list[dict]:
        ids = [i for page in athena.get_paginator("list_named_queries").paginate(WorkGroup=ATHENA_WORKGROUP)
               for i in page["NamedQueryIds"]]
        found = [athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids]
        return [q for q in found if q["Name"].startswith(f"{s.glue_job_prefix}-")]

    expected = {f"{s.glue_job_prefix}-{q.name}": (q.sql, s.glue_database) for q in EXAMPLE_QUERIES}
    first = deploy(s, wheel)
    assert first.named_queries == list(expected) and first.named_queries_kept == []
    assert {q["Name"]: (q["QueryString"], q["Database"]) for q in saved()} == expected
    assert all(q["Description"].endswith(f": created by {MADE_BY}") for q in saved())
    second = deploy(s, wheel)
    assert second.named_queries_kept == list(expected)
    assert sorted(q["Name"] for q in saved()) == sorted(expected)  # none twice
    destroy(s)
