"""Lake maintenance with CRYPTO_COMPUTE=glue on moto: deploy creates the `lake_maintenance` Glue job (Spark work,
Iceberg's catalog in its `--conf`), and Dagster's maintenance job runs it once per table through Pipes: the real
entry script on local Spark (`LocalGlueRunner`) compacts the table in the Glue Data Catalog and expires its
snapshots, reads stay identical, and the op observes the table's asset with what the run reported."""

from __future__ import annotations

import boto3

from crypto_assets.contracts.glue_jobs import MAINTENANCE_JOB, job_name
from crypto_assets.contracts.tables import silver_table_def
from crypto_assets.lake.maintenance import RETAIN_LAST
from crypto_assets.lake.snapshots import Provenance, append, read, replace, snapshot_files
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.maintenance import build_maintenance_job
from crypto_assets.tools.aws_deploy import deploy
from crypto_assets_tests.lake.test_catalog import DAY, trades
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import glue_conf, local_glue_resources, step_failure


def _sorted_rows(table) -> list[tuple]:
    return sorted((tuple(r.values()) for r in read(table).to_pylist()), key=repr)


def test_maintenance_on_glue_compacts_and_expires_a_table_in_the_glue_catalog(fresh_settings, moto_endpoint, bucket,
                                                                              wheel):
    aws = glue_settings(fresh_settings, bucket, moto_endpoint, snapshot_retention_count=2)
    deploy(aws, wheel)
    name = job_name(aws.glue_job_prefix, MAINTENANCE_JOB)
    job = boto3.client("glue", endpoint_url=moto_endpoint, region_name="us-east-1").get_job(JobName=name)["Job"]
    args = job["DefaultArguments"]
    assert args["--datalake-formats"] == "iceberg" and "spark.sql.catalog.lake" in glue_conf(args["--conf"])
    assert (args["--retention_hours"], args["--max_snapshots"]) == (str(aws.snapshot_retention_hours), "2")
    assert (job["WorkerType"], job["NumberOfWorkers"]) == (aws.glue_worker_type, aws.glue_workers)

    lake = Lake.from_settings(aws)
    t = silver_table_def("trades")
    # A partition as the steps write it (files of our own, add_files), then small appends to it and another.
    replace(lake.catalog_config, t, trades(7, "ETH-USD", tag=9), {"product_id": "ETH-USD", "event_date": DAY},
            Provenance("silver_trades", run_id="r"))
    for i in range(6):
        append(lake.catalog_config, t, trades(5, tag=i), Provenance("silver_trades", run_id=str(i)))
        append(lake.catalog_config, t, trades(2, "ETH-USD", tag=10 + i), Provenance("silver_trades", run_id=f"e{i}"))
    before = _sorted_rows(lake.table(t))
    assert len(lake.table(t).snapshots()) == 13

    result = build_maintenance_job(aws).execute_in_process(
        resources={"compute": local_glue_resources(aws)["compute"]}, op_selection=["maintain_silver_trades"])
    assert result.success
    table = lake.table(t)
    assert _sorted_rows(table) == before
    assert table.current_snapshot().summary.operation.value == "replace"  # the compaction: not new data
    files = snapshot_files(table, {"event_date": DAY})[1]
    assert sorted(f.records for f in files) == [19, 30]  # one file per partition
    # Expiry beyond the newest 2 snapshots, but never below the last RETAIN_LAST (14 with the compaction).
    assert len(table.snapshots()) == RETAIN_LAST
    observation = next(e.asset_observation_data.asset_observation for e in result.all_events
                       if e.event_type_value == "ASSET_OBSERVATION")
    metadata = {k: v.value for k, v in observation.metadata.items()}
    assert observation.asset_key.to_user_string() == "silver_trades"
    assert (metadata["maintenance_expired_snapshots"], metadata["snapshots"], metadata["data_files"]) == (
        14 - RETAIN_LAST, RETAIN_LAST, 2)
    assert metadata["maintenance_rewritten_files"] == 13 and metadata["maintenance_added_files"] == 2


def test_maintenance_on_glue_of_a_lake_outside_s3_fails_with_one_line(fresh_settings, moto_endpoint, bucket):
    local_lake = glue_settings(fresh_settings, bucket, moto_endpoint, lake_root=str(fresh_settings.lake_root))
    resources = local_glue_resources(local_lake)
    result = build_maintenance_job(local_lake).execute_in_process(
        resources={"compute": resources["compute"]}, op_selection=["maintain_gold_features"], raise_on_error=False)
    assert not result.success
    assert step_failure(result).startswith("CRYPTO_COMPUTE=glue needs the lake in S3")
