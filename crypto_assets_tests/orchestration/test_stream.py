"""Streaming Bronze on the real broker and Spark: the batch mode's rows, exactly once across restarts and replays."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.bronze.build import build_bronze_day, read_kafka_window
from crypto_assets.bronze.stream import BronzeBatchWriter
from crypto_assets.bronze.transforms import kafka_to_bronze
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.lake.commits import list_commit_names, read_commit
from crypto_assets.orchestration.definitions import build_definitions
from crypto_assets.orchestration.resources.kafka import KafkaResource, KafkaUnavailableError
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.tools.inprocess import tick
from crypto_assets.tools.stream_job import run_stream
from crypto_assets_tests.support.records import send_records, ticker_frame, trades_frame, ts

D1 = "2026-07-01"


def _send(settings, records):
    topic = {"trades": settings.trades_topic, "ticker": settings.ticker_topic}
    send_records(settings.kafka_bootstrap, [(topic[k], key, v, ts(when)) for k, key, v, when in records])


def _rows(spark, path):
    return sorted(map(str, spark.read.parquet(path).drop("ingest_date").collect()))


FIRST = [
    ("trades", "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D1}T10:00:00Z"), f"{D1}T10:00:00.5Z"),
    ("trades", "ETH-USD", trades_frame("ETH-USD", [9], f"{D1}T10:00:01Z"), f"{D1}T10:00:01.5Z"),
    ("trades", "BTC-USD", "{not json", f"{D1}T10:00:02Z"),
    ("ticker", "BTC-USD", ticker_frame("BTC-USD", f"{D1}T10:00:00Z"), f"{D1}T10:00:00.2Z"),
]
SECOND = [
    ("trades", "BTC-USD", trades_frame("BTC-USD", [3], f"{D1}T11:00:00Z"), f"{D1}T11:00:00.5Z"),
    ("trades", "SOL-USD", trades_frame("SOL-USD", [5], f"{D1}T11:00:01Z"), f"{D1}T11:00:01.5Z"),
]


def test_stream_lands_the_batch_rows_exactly_once_across_a_restart(fresh_settings, spark, tmp_path):
    s = fresh_settings
    _send(s, FIRST)
    report = run_stream(s, ("trades", "ticker"), once=True, spark=spark)
    assert report.rows == {"trades": 3, "ticker": 1}

    # Stopped; more data arrives; started again from its checkpoint.
    _send(s, SECOND)
    again = run_stream(s, ("trades", "ticker"), once=True, spark=spark)
    assert again.rows == {"trades": 2, "ticker": 0}

    lake = LakeResource.from_settings(s)
    streamed = f"{s.lake_root}/bronze/kafka_trades/ingest_date={D1}"
    offsets = [r.offset for r in spark.read.parquet(streamed).select("offset", "partition").collect()]
    assert len(offsets) == 5 and len(set(spark.read.parquet(streamed).select("partition", "offset").collect())) == 5

    # The batch mode builds the same rows from the same Kafka records.
    batch_settings = s.replace(lake_root=str(tmp_path / "batch-lake"))
    batch_lake = LakeResource.from_settings(batch_settings)
    build_bronze_day(spark, KafkaResource.from_settings(s), batch_lake, "trades", date.fromisoformat(D1), SilverRules())
    assert _rows(spark, streamed) == _rows(spark, f"{batch_settings.lake_root}/bronze/kafka_trades/ingest_date={D1}")

    commits = [read_commit(lake, "trades", n) for n in list_commit_names(lake, "trades")]
    assert [(c.writer, c.rows) for c in commits] == [("stream", 3), ("stream", 2)]
    assert commits[0].partitions == [[D1, "BTC-USD", 3], [D1, "ETH-USD", 1]]  # the garbage record is BTC's (key)
    assert commits[1].partitions == [[D1, "BTC-USD", 1], [D1, "SOL-USD", 1]]

    # The sensor records the streamed writes as Bronze materializations and adds the new products.
    instance = DagsterInstance.ephemeral()
    result = tick(build_definitions(s).resolve_sensor_def("bronze_to_silver"), s, instance, None)
    mats = [e for e in result.asset_events if e.asset_key == AssetKey("bronze_trades")]
    assert [(m.partition, m.metadata["rows_added"].value) for m in mats] == [(D1, 3), (D1, 2)]
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == ["BTC-USD", "ETH-USD", "SOL-USD"]


def test_a_replayed_micro_batch_rewrites_its_own_files_and_duplicates_nothing(fresh_settings, spark):
    s = fresh_settings
    _send(s, FIRST)
    kafka = KafkaResource.from_settings(s)
    start, end = ts(f"{D1}T00:00:00Z"), ts(f"{D1}T23:59:59Z")
    batch = kafka_to_bronze(read_kafka_window(spark, kafka, kafka.offset_window(s.trades_topic, start, end)), "trades")
    lake = LakeResource.from_settings(s)
    writer = BronzeBatchWriter(lake, "trades", SilverRules())
    path = f"{s.lake_root}/bronze/kafka_trades/ingest_date={D1}"
    writer(batch, 7)
    files = lake.list_names(path)
    writer(batch, 7)  # the crash-before-checkpoint case: Spark runs batch 7 again with the same offsets
    assert lake.list_names(path) == files and all(f.startswith("stream-b000000000007-") for f in files)
    assert spark.read.parquet(path).count() == 3


def test_stream_against_a_missing_topic_fails_with_one_line(fresh_settings, spark):
    s = fresh_settings.replace(trades_topic="no.such.topic")
    with pytest.raises(KafkaUnavailableError, match="topic 'no.such.topic' does not exist"):
        run_stream(s, ("trades",), once=True, spark=spark)


def test_a_stopped_stream_fails_the_sensor_tick_with_one_line_and_recovers(fresh_settings, spark):
    import time

    from dagster import build_sensor_context

    from crypto_assets.orchestration.bronze_sensor import StreamStalledError, evaluate_bronze_commits

    s = fresh_settings.replace(bronze_mode="stream", stream_stall_seconds=60)
    lake, kafka = LakeResource.from_settings(s), KafkaResource.from_settings(s)
    _send(s, FIRST)
    run_stream(s, ("trades", "ticker"), once=True, spark=spark)
    instance = DagsterInstance.ephemeral()

    def tick_at(cursor, now_s):
        ctx = build_sensor_context(instance=instance, cursor=cursor)
        return evaluate_bronze_commits(ctx, lake, s, kafka, now_ms=int(now_s * 1000))

    now = time.time()
    cursor = tick_at(None, now).cursor
    _send(s, SECOND)  # the stream is not running: these wait in Kafka
    assert tick_at(cursor, now + 30).skip_reason  # not stalled yet: within the allowance
    with pytest.raises(StreamStalledError) as err:
        tick_at(cursor, now + 600)
    message = str(err.value)
    assert "\n" not in message and "2 newer trades records" in message and "crypto-pipeline stream" in message
    run_stream(s, ("trades", "ticker"), once=True, spark=spark)  # restarted: it catches up by itself
    result = tick_at(cursor, now + 620)
    assert [str(r.partition_key) for r in result.run_requests] == [f"{D1}|BTC-USD", f"{D1}|SOL-USD"]
    assert tick_at(result.cursor, now + 1200).skip_reason  # nothing pending in Kafka: idle is fine


def test_merged_stream_files_hold_every_row_once_and_silver_reads_them_the_same(fresh_settings, spark, tmp_path):
    from crypto_assets.lake.compaction import piece
    from crypto_assets.silver.build import build_silver

    s = fresh_settings.replace(stream_compact_files=2)
    for i in range(3):  # three runs, so three micro-batches: the third merges the first two
        _send(s, [("trades", "BTC-USD", trades_frame("BTC-USD", [10 * i + 1, 10 * i + 2], f"{D1}T1{i}:00:00Z"),
                   f"{D1}T1{i}:00:00.5Z"),
                  ("trades", "ETH-USD", trades_frame("ETH-USD", [10 * i + 5], f"{D1}T1{i}:00:01Z"), f"{D1}T1{i}:00:01.5Z")])
        run_stream(s, ("trades",), once=True, spark=spark)
    lake = LakeResource.from_settings(s)
    folder = f"{s.lake_root}/bronze/kafka_trades/ingest_date={D1}"
    levels = sorted({piece(n).level for n in lake.list_names(folder)})
    assert levels == [0, 1]  # the first two batches merged, the third's own files still there
    bronze = spark.read.parquet(folder)
    assert bronze.count() == 6 and bronze.select("partition", "offset").distinct().count() == 6

    # Silver over the merged files equals Silver over the batch mode's files of the same records.
    batch_settings = s.replace(lake_root=str(tmp_path / "batch-lake"))
    batch_lake = LakeResource.from_settings(batch_settings)
    build_bronze_day(spark, KafkaResource.from_settings(s), batch_lake, "trades", date.fromisoformat(D1), SilverRules())
    for target in (lake, batch_lake):
        stats = build_silver(target, "trades", date.fromisoformat(D1), ["BTC-USD", "ETH-USD"], SilverRules())
        assert [(p, st.rows, st.window_items) for p, st in stats.items()] == [("BTC-USD", 6, 6), ("ETH-USD", 3, 3)]
    assert _rows(spark, f"{s.lake_root}/silver/trades") == _rows(spark, f"{batch_settings.lake_root}/silver/trades")


def test_a_failing_merge_never_stops_ingestion(fresh_settings, spark, monkeypatch, caplog):
    import crypto_assets.bronze.stream as stream_step

    def broken(*args, **kwargs):
        raise ValueError("schema mismatch\nand more")

    monkeypatch.setattr(stream_step, "compact_folder", broken)
    s = fresh_settings
    _send(s, FIRST)
    kafka = KafkaResource.from_settings(s)
    window = kafka.offset_window(s.trades_topic, ts(f"{D1}T00:00:00Z"), ts(f"{D1}T23:59:59Z"))
    batch = kafka_to_bronze(read_kafka_window(spark, kafka, window), "trades")
    lake = LakeResource.from_settings(s)
    BronzeBatchWriter(lake, "trades", SilverRules(), compact_fan_in=2)(batch, 3)
    assert spark.read.parquet(f"{s.lake_root}/bronze/kafka_trades/ingest_date={D1}").count() == 3
    assert [read_commit(lake, "trades", n).rows for n in list_commit_names(lake, "trades")] == [3]
    assert "merging the small files of" in caplog.text and "failed (schema mismatch)" in caplog.text
