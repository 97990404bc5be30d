"""The Glue Bronze streaming script on local Spark against the real broker: same rows as the batch Bronze
asset, its checkpoint makes a restart continue where it stopped (no duplicates), and records deleted
before it read them stop it."""

from __future__ import annotations

import subprocess
import sys

from dagster import DagsterInstance, materialize
from kafka import KafkaAdminClient, TopicPartition

from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.tools.aws_deploy import job_arguments
from crypto_assets_tests.support.local_glue import REPO, glue_script_env
from crypto_assets_tests.support.records import send_records, trades_frame, ts

D = "2026-05-03"
COLUMNS = ["topic", "partition", "offset", "kafka_timestamp", "key", "value", "source", "connection_id", "channel",
           "sequence_num", "event_type", "product_id", "is_malformed", "malformed_reason", "ingest_date"]


def _run_stream(settings, lake_root, checkpoint_root, check: bool = True) -> subprocess.CompletedProcess:
    """The streaming script with the arguments deploy gives the job (a local lake and checkpoints instead of
    S3's, a 1 s trigger), for 5 s."""
    arguments = {**job_arguments(settings.replace(lake_root="s3://unused/lake"), "bronze_trades_stream"),
                 "--lake_root": lake_root, "--checkpoint_root": checkpoint_root, "--trigger_seconds": "1",
                 "--run_seconds": "5"}
    argv = [sys.executable, str(REPO / "glue" / "bronze_trades_stream.py"),
            *(item for pair in arguments.items() for item in pair)]
    proc = subprocess.run(argv, env=glue_script_env(settings), capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _rows(spark, path):
    return sorted(tuple(r) for r in spark.read.parquet(path).select(*COLUMNS).collect())


def test_streaming_bronze_equals_batch_bronze_resumes_from_its_checkpoint_and_fails_on_lost_offsets(fresh_settings, spark, tmp_path):
    s = fresh_settings
    records = [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [i], f"{D}T10:00:0{i}Z", seq=i), ts(f"{D}T10:00:0{i}.5Z"))
               for i in range(1, 6)]
    records.append((s.trades_topic, "BTC-USD", "{broken", ts(f"{D}T10:00:07Z")))
    send_records(s.kafka_bootstrap, records)
    stream_lake, checkpoints = str(tmp_path / "stream-lake"), str(tmp_path / "checkpoints")
    _run_stream(s, stream_lake, checkpoints)

    batch = s.replace(lake_root=str(tmp_path / "batch-lake"))
    trades_bronze = [a for a in bronze_assets(batch) if a.key.path[-1] == "bronze_trades"]
    assert materialize(trades_bronze, partition_key=D, resources=build_resources(batch),
                       instance=DagsterInstance.ephemeral()).success
    streamed = _rows(spark, f"{stream_lake}/bronze/kafka_trades")
    assert streamed == _rows(spark, f"{batch.lake_root}/bronze/kafka_trades") and len(streamed) == 6

    # A restart reads only what arrived since: one new record, one new row.
    send_records(s.kafka_bootstrap, [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [6], f"{D}T11:00:00Z"),
                                      ts(f"{D}T11:00:00.5Z"))])
    _run_stream(s, stream_lake, checkpoints)
    again = _rows(spark, f"{stream_lake}/bronze/kafka_trades")
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
    proc = _run_stream(s, stream_lake, checkpoints, check=False)
    assert proc.returncode != 0 and "lost" in proc.stderr
    assert len(_rows(spark, f"{stream_lake}/bronze/kafka_trades")) == 7  # nothing written past the loss
