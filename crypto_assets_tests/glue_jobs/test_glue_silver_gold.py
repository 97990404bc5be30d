"""Silver and Gold with CRYPTO_COMPUTE=glue on moto: the real Glue entry scripts run in a local subprocess on
local Spark (`LocalGlueRunner`), report through Dagster Pipes, and commit to the lake's Iceberg tables in the
Glue Data Catalog (pyiceberg on the driver) the rows the local compute commits to its own."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.tables import TABLES, bronze_table, gold_table_def, quarantine_table_def, silver_table_def
from crypto_assets.gold.report import GOLD_CHECKS
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.keys import FULL_REBUILD_TAG
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets.tools.aws_deploy import deploy
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import (
    GLUE_ONLY_METADATA,
    assert_glue_failure_line,
    assert_reports_like_local,
    local_glue_resources,
    materialization_metadata,
    step_failure,
)
from crypto_assets_tests.support.records import send_records, trades_frame, ts

D, D2 = "2026-04-01", "2026-04-02"
# Metadata that names a lake's own snapshots (ids differ between two lakes holding the same rows).
SNAPSHOT_METADATA = ("snapshot_id", "quarantine_snapshot_id", "bronze_snapshot_id", "silver_snapshot_ids",
                     "bronze_snapshot_read_from", "silver_snapshots_read_from")


def _key(day, product="BTC-USD"):
    return MultiPartitionKey({"event_date": day, "product_id": product})


def _checks(result):
    """check -> (passed, metadata); the Glue run's own links, which Pipes adds to each result, left out."""
    return {c.check_name: (c.passed, {k: v.value for k, v in c.metadata.items() if k not in GLUE_ONLY_METADATA})
            for c in result.get_asset_check_evaluations()}


def _rows(lake: Lake, t, where: dict) -> list[tuple]:
    """The partition's rows, sorted, as the table's current snapshot holds them."""
    table = snapshots.read(lake.table(t), where)
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def _copy(source: Lake, target: Lake, t) -> None:
    """The table's rows committed to the other lake (one append): the same input in both lakes."""
    rows = snapshots.read(source.table(t))
    snapshots.append(target.catalog_config, t, rows, Provenance(asset="test-copy", run_id="test"))


@pytest.fixture
def two_lakes(fresh_settings, moto_endpoint, bucket, wheel):
    """The same Kafka input in Bronze twice: a local lake (local compute) and an S3 lake in the Glue catalog
    (glue compute, deployed to moto), whose Bronze table gets the local Bronze rows in one append."""
    local = fresh_settings
    aws = glue_settings(local, bucket, moto_endpoint)
    deploy(aws, wheel)
    records = [
        ("trades", "BTC-USD", trades_frame("BTC-USD", [1, 2, 3], f"{D}T10:00:00Z"), f"{D}T10:00:00.5Z"),
        ("trades", "BTC-USD", trades_frame("BTC-USD", [2, 3], f"{D}T10:00:00Z", event_type="snapshot"), f"{D}T10:05:00Z"),
        ("trades", "BTC-USD", trades_frame("BTC-USD", [5], f"{D}T11:00:00Z", price="-1"), f"{D}T11:00:00.5Z"),
        ("trades", "BTC-USD", trades_frame("BTC-USD", [6], f"{D}T23:59:59Z"), f"{D2}T00:00:02Z"),  # late
        ("trades", "BTC-USD", "{not json", f"{D}T12:00:00Z"),
    ]
    topic = {"trades": local.trades_topic, "ticker": local.ticker_topic}
    send_records(local.kafka_bootstrap, [(topic[k], key, v, ts(when)) for k, key, v, when in records])
    instance = DagsterInstance.ephemeral()
    trades_bronze = [a for a in bronze_assets(local) if a.key.path[-1] == "bronze_trades"]
    for day in (D, D2):
        assert materialize(trades_bronze, partition_key=day, resources=build_resources(local), instance=instance).success
    _copy(Lake.from_settings(local), Lake.from_settings(aws), bronze_table("trades"))
    return local, aws, instance


def test_silver_on_glue_reports_through_pipes_and_commits_what_local_commits(two_lakes):
    local, aws, instance = two_lakes
    trades_asset = [a for a in silver_assets(local) if a.key.path[-1] == "silver_trades"]
    local_result = materialize(trades_asset, partition_key=_key(D), resources=build_resources(local), instance=instance)
    glue_assets = [a for a in silver_assets(aws) if a.key.path[-1] == "silver_trades"]
    glue_result = materialize(glue_assets, partition_key=_key(D), resources=local_glue_resources(aws), instance=instance)

    local_md, glue_md = materialization_metadata(local_result), materialization_metadata(glue_result)
    assert_reports_like_local(local_md, glue_md, f"{aws.glue_job_prefix}-silver-trades", SNAPSHOT_METADATA)
    assert (glue_md["rows"], glue_md["duplicates_removed"], glue_md["quarantined_by_reason"]) == (
        4, 2, {"non_positive_price": 1, "malformed_record": 1})
    assert _checks(glue_result) == _checks(local_result) and len(_checks(glue_result)) == 5

    lake, where = Lake.from_settings(aws), {"product_id": "BTC-USD", "event_date": D}
    for t in (silver_table_def("trades"), quarantine_table_def("trades")):
        assert _rows(lake, t, where) == _rows(Lake.from_settings(local), t, where), t.identifier
    # The run's commit is the Glue table's current snapshot, with the run's provenance: the Glue catalog is
    # the tables' catalog (no partitions to register), and what Athena reads is this snapshot.
    table = load_table(lake.catalog_config, silver_table_def("trades"))
    assert str(snapshots.snapshot_id(table)) == glue_md["snapshot_id"] != ""
    provenance = Provenance.of(table.current_snapshot())
    assert (provenance.asset, provenance.run_id) == ("silver_trades", glue_result.run_id)
    assert provenance.upstream == {"bronze.kafka_trades": int(glue_md["bronze_snapshot_id"])}
    quarantine = load_table(lake.catalog_config, quarantine_table_def("trades"))
    assert str(snapshots.snapshot_id(quarantine)) == glue_md["quarantine_snapshot_id"]

    # Re-running goes on from the partition's state: nothing new in Bronze, nothing committed.
    before = _rows(lake, silver_table_def("trades"), where)
    again = materialize(glue_assets, partition_key=_key(D), resources=local_glue_resources(aws), instance=instance)
    again_md = materialization_metadata(again)
    assert (glue_md["mode"], again_md["mode"], again_md["bronze_rows_new"]) == ("full", "incremental", 0)
    assert again_md["snapshot_id"] == glue_md["snapshot_id"]
    # A full rebuild asked for by the run tag commits again (a new snapshot), with the same rows.
    rebuilt = materialize(glue_assets, partition_key=_key(D), resources=local_glue_resources(aws), instance=instance,
                          tags={FULL_REBUILD_TAG: "true"})
    rebuilt_md = materialization_metadata(rebuilt)
    table = load_table(lake.catalog_config, silver_table_def("trades"))
    assert (rebuilt_md["mode"], rebuilt_md["full_rebuild_reason"]) == ("full", "a full rebuild was asked for")
    assert str(snapshots.snapshot_id(table)) == rebuilt_md["snapshot_id"] != glue_md["snapshot_id"]
    assert _rows(lake, silver_table_def("trades"), where) == before


def test_gold_on_glue_matches_local(base_settings, moto_endpoint, bucket, wheel, tmp_path):
    from crypto_assets_tests.gold.datasets import cross_midnight
    from crypto_assets_tests.gold.silver_writer import write_silver

    local = base_settings.replace(lake_root=str(tmp_path / "lake"))
    aws = glue_settings(local, bucket, moto_endpoint)
    deploy(aws, wheel)
    trades, tickers = cross_midnight()
    write_silver(None, local.lake_root, trades, tickers)
    local_lake, lake = Lake.from_settings(local), Lake.from_settings(aws)
    for t in (silver_table_def("trades"), silver_table_def("ticker")):
        _copy(local_lake, lake, t)
    day = "2024-03-11"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("product_id", ["BTC-USD"])
    local_result = materialize([build_gold_asset(local)], partition_key=_key(day), resources=build_resources(local),
                               instance=instance)
    glue_result = materialize([build_gold_asset(aws)], partition_key=_key(day), resources=local_glue_resources(aws),
                              instance=instance)
    local_md, glue_md = materialization_metadata(local_result), materialization_metadata(glue_result)
    assert_reports_like_local(local_md, glue_md, f"{aws.glue_job_prefix}-gold-features", SNAPSHOT_METADATA)
    assert glue_md["rows"] > 500 and glue_md["tickers_in_input"] > 0
    checks = _checks(glue_result)
    assert checks == _checks(local_result) and all(passed for passed, _ in checks.values()) and len(checks) == len(GOLD_CHECKS)
    where = {"product_id": "BTC-USD", "event_date": day}
    assert _rows(lake, gold_table_def(), where) == _rows(local_lake, gold_table_def(), where)
    table = load_table(lake.catalog_config, gold_table_def())
    assert str(snapshots.snapshot_id(table)) == glue_md["snapshot_id"]
    provenance = Provenance.of(table.current_snapshot())
    assert (provenance.asset, provenance.run_id) == ("gold_features", glue_result.run_id)
    assert set(provenance.upstream) == {"silver.trades", "silver.ticker"}
    # Nothing new in Silver: the Glue run goes on from the partition's state and commits nothing; the run tag
    # asks for a full rebuild (the job's --full), which commits the same rows again.
    again = materialization_metadata(materialize([build_gold_asset(aws)], partition_key=_key(day),
                                                 resources=local_glue_resources(aws), instance=instance))
    assert again["mode"] == "unchanged" and again["snapshot_id"] == glue_md["snapshot_id"]
    rebuilt = materialization_metadata(materialize([build_gold_asset(aws)], partition_key=_key(day),
                                                   resources=local_glue_resources(aws), instance=instance,
                                                   tags={FULL_REBUILD_TAG: "true"}))
    assert (rebuilt["mode"], rebuilt["full_rebuild_reason"]) == ("full", "a full rebuild was asked for")
    assert rebuilt["snapshot_id"] != glue_md["snapshot_id"]
    assert _rows(lake, gold_table_def(), where) == _rows(local_lake, gold_table_def(), where)
    assert len(TABLES) == 9  # every table deploy created is still one table in the Glue database


# ---- bad input: one line naming the Glue run and its logs, never a hang ---------------------------------


@pytest.fixture
def deployed(base_settings, moto_endpoint, bucket, wheel, tmp_path):
    aws = glue_settings(base_settings.replace(lake_root=str(tmp_path / "unused")), bucket, moto_endpoint)
    deploy(aws, wheel)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("product_id", ["BTC-USD"])
    return aws, instance


def _gold_failure(aws, instance, **runner) -> str:
    result = materialize([build_gold_asset(aws)], partition_key=_key(D), resources=local_glue_resources(aws, **runner),
                         instance=instance, raise_on_error=False)
    assert not result.success
    message = step_failure(result)
    assert "\n" not in message, message
    return message


def test_failed_glue_run_names_the_run_its_logs_and_the_cause(deployed):
    aws, instance = deployed
    silver = [a for a in silver_assets(aws) if a.key.path[-1] == "silver_trades"]
    result = materialize(silver, partition_key=_key(D), resources=local_glue_resources(aws), instance=instance, raise_on_error=False)
    message = step_failure(result)
    assert_glue_failure_line(message, f"{aws.glue_job_prefix}-silver-trades",
                             f"Bronze kafka_trades ingest_date={D} has not been written yet")


def test_glue_run_timeout_is_one_line(deployed):
    aws, instance = deployed
    # The local runner stops the script after Timeout x 0.001 s (0.06 s: less than Python takes to import the
    # job's modules), as Glue would after Timeout minutes.
    message = _gold_failure(aws, instance, seconds_per_timeout_minute=0.001)
    assert " timed out after 60 min (CRYPTO_GLUE_TIMEOUT_MINUTES); logs: CloudWatch /aws-glue/jobs/error" in message
    assert message.startswith(f"Glue job {aws.glue_job_prefix}-gold-features run jr_")


def test_a_run_that_never_ends_does_not_hang_the_dagster_run(deployed):
    aws, instance = deployed
    message = _gold_failure(aws, instance, stay_running=True, deadline_seconds=1.0)
    assert "no final state after 1 s (still RUNNING); asked Glue to stop it; logs: CloudWatch" in message
    assert message.startswith(f"Glue job {aws.glue_job_prefix}-gold-features run jr_")


def test_missing_job_bucket_and_credentials_are_one_line(deployed, monkeypatch):
    aws, instance = deployed
    message = _gold_failure(aws.replace(glue_job_prefix="never-deployed"), instance)
    assert message == ("Glue job never-deployed-gold-features does not exist in us-east-1: run `crypto-pipeline aws "
                       "deploy` (or check CRYPTO_GLUE_JOB_PREFIX)")
    message = _gold_failure(aws.replace(lake_root="/srv/local-lake"), instance)
    assert message.startswith("CRYPTO_COMPUTE=glue needs the lake in S3, but CRYPTO_LAKE_ROOT=/srv/local-lake")
    message = _gold_failure(aws.replace(lake_root="s3://no-such-lake-bucket/lake"), instance)
    assert "S3 bucket 'no-such-lake-bucket' of the lake root s3://no-such-lake-bucket/lake does not exist" in message
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    message = _gold_failure(aws, instance)
    assert message.startswith("no AWS credentials found for the S3 lake s3://")
