"""The Glue Bronze streaming script on local Spark against the real broker, writing the Iceberg Bronze table of an
S3 lake on moto through Spark's Glue catalog (the `--conf` deploy gives the job, Iceberg's AWS bundle), checkpoint
in S3: same rows as the batch Bronze asset, its checkpoint makes a restart continue where it stopped (no
duplicates), and records deleted before it read them stop it."""

from __future__ import annotations

import subprocess
import sys

from dagster import DagsterInstance, materialize
from kafka import KafkaAdminClient, TopicPartition

from crypto_assets.contracts.glue_jobs import job_arguments
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.tools.aws_deploy import DATALAKE_FORMATS, spark_conf_argument
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import REPO, glue_conf, glue_script_env
from crypto_assets_tests.support.records import send_records, trades_frame, ts

D = "2026-05-03"
COLUMNS = ["topic", "partition", "offset", "kafka_timestamp", "key", "value", "source", "connection_id", "channel",
           "sequence_num", "event_type", "product_id", "is_malformed", "malformed_reason", "ingest_date"]


def _run_stream(aws, check: bool = True) -> subprocess.CompletedProcess:
    """The streaming script with the arguments deploy gives the job (a 1 s trigger), for 5 s, in the Spark
    session Glue would open from the job's `--conf` and `--datalake-formats`."""
    arguments = {**job_arguments(aws, "bronze_trades_stream"), "--trigger_seconds": "1", "--run_seconds": "5"}
    argv = [sys.executable, str(REPO / "glue" / "bronze_trades_stream.py"),
            *(item for pair in arguments.items() for item in pair)]
    env = glue_script_env(aws, extra_conf=glue_conf(spark_conf_argument(aws)), datalake_formats=DATALAKE_FORMATS)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _rows(lake: Lake) -> list[tuple]:
    table = snapshots.read(lake.table(bronze_table("trades")), columns=COLUMNS)
    return sorted(tuple(r[c] for c in COLUMNS) for r in table.to_pylist())


def test_streaming_bronze_equals_batch_bronze_resumes_from_its_checkpoint_and_fails_on_lost_offsets(
        fresh_settings, moto_endpoint, bucket, tmp_path):
    s = fresh_settings
    aws = glue_settings(s, bucket, moto_endpoint)
    stream_lake = Lake.from_settings(aws)
    records = [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [i], f"{D}T10:00:0{i}Z", seq=i), ts(f"{D}T10:00:0{i}.5Z"))
               for i in range(1, 6)]
    records.append((s.trades_topic, "BTC-USD", "{broken", ts(f"{D}T10:00:07Z")))
    send_records(s.kafka_bootstrap, records)
    _run_stream(aws)

    batch = s.replace(lake_root=str(tmp_path / "batch-lake"))
    trades_bronze = [a for a in bronze_assets(batch) if a.key.path[-1] == "bronze_trades"]
    assert materialize(trades_bronze, partition_key=D, resources=build_resources(batch),
                       instance=DagsterInstance.ephemeral()).success
    streamed = _rows(stream_lake)
    assert streamed == _rows(Lake.from_settings(batch)) and len(streamed) == 6
    # Each micro-batch is one append commit in the Glue table, naming the stream and its batch.
    table = stream_lake.table(bronze_table("trades"))
    provenance = Provenance.of(table.current_snapshot())
    assert table.current_snapshot().summary.operation.value == "append"
    assert provenance.extra["writer"] == "stream" and "batch-id" in provenance.extra and provenance.extra["stream-id"]

    # A restart reads only what arrived since: one new record, one new row.
    send_records(s.kafka_bootstrap, [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [6], f"{D}T11:00:00Z"),
                                      ts(f"{D}T11:00:00.5Z"))])
    _run_stream(aws)
    again = _rows(stream_lake)
    assert len(again) == 7 and len({(r[1], r[2]) for r in again}) == 7

    # Offsets lost to retention must stop the Glue stream, as they stop the local stream and batch Bronze
    # (`failOnDataLoss` true on every path), instead of being skipped without a word.
    later = [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [i], f"{D}T12:00:0{i}Z"), ts(f"{D}T12:00:0{i}.5Z"))
             for i in range(7, 10)]
    (partition, _), *_, (_, last) = send_records(s.kafka_bootstrap, later)
    admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    try:  # what retention does: the two oldest unread records are gone before the stream reads them
        admin.delete_records({TopicPartition(s.trades_topic, partition): last})
    finally:
        admin.close()
    proc = _run_stream(aws, check=False)
    assert proc.returncode != 0 and "lost" in proc.stderr
    assert len(_rows(stream_lake)) == 7  # nothing written past the loss
