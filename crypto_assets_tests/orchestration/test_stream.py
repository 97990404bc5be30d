"""Streaming Bronze on the real broker and Spark: the batch mode's rows, exactly once across restarts and replays."""

from __future__ import annotations

import json
from datetime import date

import pytest
from dagster import AssetKey, DagsterInstance

from crypto_assets.bronze.build import build_bronze_day, read_kafka_window
from crypto_assets.bronze.stream import BronzeBatchWriter
from crypto_assets.bronze.transforms import kafka_to_bronze
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import Provenance, snapshots_after
from crypto_assets.lake.spark import lake_session
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


def _bronze(spark, settings, kind="trades"):
    session = lake_session(spark, LakeResource.from_settings(settings).catalog_config)
    return session.table(f"lake.bronze.kafka_{kind}")


def _rows(spark, settings):
    return sorted(map(str, _bronze(spark, settings).collect()))


def _writes(settings, kind="trades"):
    """The provenance of the table's snapshots, oldest first."""
    table = LakeResource.from_settings(settings).table(bronze_table(kind))
    return [Provenance.of(snap) for snap in snapshots_after(table, None)[0]]


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

    streamed = _bronze(spark, s).select("partition", "offset").collect()
    assert len(streamed) == 5 and len(set(streamed)) == 5

    # The batch mode builds the same rows from the same Kafka records.
    batch_settings = s.replace(lake_root=str(tmp_path / "batch-lake"))
    batch_lake = LakeResource.from_settings(batch_settings)
    build_bronze_day(spark, KafkaResource.from_settings(s), batch_lake, "trades", date.fromisoformat(D1), SilverRules())
    assert _rows(spark, s) == _rows(spark, batch_settings)

    # One append commit per micro-batch, saying what it added; the stream id stays across the restart.
    writes = _writes(s)
    assert [(p.extra["writer"], p.extra["records"], p.extra["batch-id"]) for p in writes] == [
        ("stream", "3", "0"), ("stream", "2", "1")]
    assert len({p.extra["stream-id"] for p in writes}) == 1
    assert json.loads(writes[0].extra["partitions"]) == [[D1, "BTC-USD", 3], [D1, "ETH-USD", 1]]  # garbage is BTC's
    assert json.loads(writes[1].extra["partitions"]) == [[D1, "BTC-USD", 1], [D1, "SOL-USD", 1]]

    # The sensor records the streamed writes as Bronze materializations and adds the new products.
    instance = DagsterInstance.ephemeral()
    result = tick(build_definitions(s).resolve_sensor_def("bronze_to_silver"), s, instance, None)
    mats = [e for e in result.asset_events if e.asset_key == AssetKey("bronze_trades")]
    assert [(m.partition, m.metadata["rows_added"].value) for m in mats] == [(D1, 3), (D1, 2)]
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == ["BTC-USD", "ETH-USD", "SOL-USD"]


def test_a_replayed_micro_batch_is_skipped_and_duplicates_nothing(fresh_settings, spark):
    s = fresh_settings
    _send(s, FIRST)
    kafka = KafkaResource.from_settings(s)
    start, end = ts(f"{D1}T00:00:00Z"), ts(f"{D1}T23:59:59Z")
    lake = LakeResource.from_settings(s)
    session = lake_session(spark, lake.catalog_config)  # as the stream's batches come: from the lake's session
    batch = kafka_to_bronze(read_kafka_window(session, kafka, kafka.offset_window(s.trades_topic, start, end)), "trades")
    writer = BronzeBatchWriter(lake, "trades", SilverRules(), stream_id="stream-a")
    writer(batch, 7)
    writer(batch, 7)  # the crash-before-checkpoint case: Spark runs batch 7 again with the same offsets
    writer(batch, 6)  # an older batch id of the same stream: committed long ago
    assert _bronze(spark, s).count() == 3
    assert [(p.extra["stream-id"], p.extra["batch-id"]) for p in _writes(s)] == [("stream-a", "7")]
    # Another stream (a new checkpoint) numbers its batches from 0 again: its batches are its own.
    BronzeBatchWriter(lake, "trades", SilverRules(), stream_id="stream-b")(batch, 0)
    assert _bronze(spark, s).count() == 6


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
