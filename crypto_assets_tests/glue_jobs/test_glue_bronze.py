"""Bronze (batch) with CRYPTO_COMPUTE=glue on moto: the real Glue entry script runs in a local subprocess against
the real broker, reports through Dagster Pipes, and commits through Spark's Iceberg catalog on the Glue Data
Catalog (Glue's `--conf`, Iceberg's AWS bundle) the rows the local compute commits."""

from __future__ import annotations

from dagster import DagsterInstance, materialize

from crypto_assets.bronze.summary import added_partitions
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.partitions import PRODUCTS
from crypto_assets.tools.aws_deploy import deploy
from crypto_assets_tests.conftest import free_port
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import (
    assert_glue_failure_line,
    assert_reports_like_local,
    local_glue_resources,
    materialization_metadata,
    step_failure,
)
from crypto_assets_tests.support.records import send_records, trades_frame, ts

D = "2026-06-10"


def _bronze_trades(settings):
    return [a for a in bronze_assets(settings) if a.key.path[-1] == "bronze_trades"]


def _rows(lake: Lake) -> list[dict]:
    rows = snapshots.read(lake.table(bronze_table("trades")), {"ingest_date": D}).to_pylist()
    return sorted(rows, key=lambda r: (r["partition"], r["offset"]))


def test_bronze_on_glue_reports_products_through_pipes_and_writes_what_local_writes(
        fresh_settings, moto_endpoint, bucket, wheel):
    local = fresh_settings
    aws = glue_settings(local, bucket, moto_endpoint)
    deploy(aws, wheel)
    send_records(local.kafka_bootstrap, [(local.trades_topic, key, value, ts(when)) for key, value, when in [
        ("BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D}T09:00:00Z"), f"{D}T09:00:00.5Z"),
        ("SOL-USD", trades_frame("SOL-USD", [7], f"{D}T12:00:00Z", seq=2), f"{D}T12:00:00.5Z"),
        ("BTC-USD", "{not json", f"{D}T13:00:00Z"),
        ("BTC-USD", trades_frame("BTC-USD", [3], "2026-06-09T23:59:00Z"), "2026-06-09T23:59:00.5Z"),  # day before
        ("BTC-USD", trades_frame("BTC-USD", [4], "2026-06-11T00:00:01Z"), "2026-06-11T00:00:01.5Z"),  # day after
    ]])

    local_result = materialize(_bronze_trades(local), partition_key=D, resources=build_resources(local),
                               instance=DagsterInstance.ephemeral())
    instance = DagsterInstance.ephemeral()
    assert instance.get_dynamic_partitions(PRODUCTS.name) == []
    glue_result = materialize(_bronze_trades(aws), partition_key=D, resources=local_glue_resources(aws),
                              instance=instance)

    local_md, glue_md = materialization_metadata(local_result), materialization_metadata(glue_result)
    assert_reports_like_local(local_md, glue_md, f"{aws.glue_job_prefix}-bronze-trades-batch", ("path", "snapshot_id"))
    assert (glue_md["rows"], glue_md["malformed_by_reason"], glue_md["products"]) == (
        3, {"not_json": 1}, ["BTC-USD", "SOL-USD"])
    lake = Lake.from_settings(aws)
    assert glue_md["table"] == "bronze.kafka_trades" and glue_md["path"].startswith(f"s3://{bucket}/lake/bronze/")
    # The products the job saw are partitions of Silver and Gold now, as after a local Bronze run.
    assert sorted(instance.get_dynamic_partitions(PRODUCTS.name)) == ["BTC-USD", "SOL-USD"]

    glue_rows = _rows(lake)
    assert glue_rows == _rows(Lake.from_settings(local)) and len(glue_rows) == 3
    # The job's commit is the Glue table's current snapshot (one commit), and its summary names the Silver
    # partitions that gained data, for the Bronze sensor.
    table = lake.table(bronze_table("trades"))
    assert str(snapshots.snapshot_id(table)) == glue_md["snapshot_id"] != ""
    provenance = Provenance.of(table.current_snapshot())
    assert (provenance.asset, provenance.partition, provenance.run_id) == ("bronze_trades", D, glue_result.run_id)
    assert added_partitions(provenance) == [[D, "BTC-USD", 3], [D, "SOL-USD", 1]]
    assert all(f.path.startswith(f"s3://{bucket}/lake/bronze/kafka_trades/data/")
               for f in snapshots.snapshot_files(table, {"ingest_date": D})[1])


def test_bronze_on_glue_with_kafka_unreachable_fails_with_one_line(base_settings, moto_endpoint, bucket, wheel, tmp_path):
    aws = glue_settings(base_settings.replace(lake_root=str(tmp_path / "unused")), bucket, moto_endpoint,
                        kafka_bootstrap=f"127.0.0.1:{free_port()}")
    deploy(aws, wheel)
    result = materialize(_bronze_trades(aws), partition_key=D, resources=local_glue_resources(aws),
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    message = step_failure(result)
    assert_glue_failure_line(message, f"{aws.glue_job_prefix}-bronze-trades-batch",
                             f"Kafka broker not reachable at {aws.kafka_bootstrap}")
