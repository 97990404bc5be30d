"""End to end in streaming mode: synthetic market -> real broker -> streaming Bronze (stopped and
restarted midway) -> sensor ticks -> the requested Silver and Gold runs -> Gold; then a CLI-style
backfill from batch Bronze into a second lake must reproduce Silver and Gold exactly."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from dagster import DagsterInstance

from crypto_assets.contracts.tables import (
    bronze_table,
    candles_table_def,
    gold_table_def,
    quarantine_table_def,
    silver_table_def,
)
from crypto_assets.lake import snapshots
from crypto_assets.lake.snapshots import Provenance, snapshots_after
from crypto_assets.lake.spark import lake_session, spark_table
from crypto_assets.orchestration.definitions import build_definitions
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.tools.backfill import run_backfill
from crypto_assets.tools.inprocess import apply, execute, requested, tick
from crypto_assets.tools.stream_job import run_stream
from producer.run import publish_frames, synthetic_frames

START = datetime(2026, 9, 1, 10, 0, tzinfo=timezone.utc)
DAY = START.date().isoformat()
PRODUCTS = ("BTC-USD", "ETH-USD")


def _kafka_records(settings, kind: str) -> int:
    kafka = KafkaResource.from_settings(settings)
    return kafka.offset_window(kafka.topic_for(kind), START - timedelta(hours=1), START + timedelta(hours=2)).record_count


def _bronze_writes(lake, kind: str) -> list[Provenance]:
    """The provenance of the Bronze table's snapshots, oldest first (what the old commit log listed)."""
    return [p for p in (Provenance.of(s) for s in snapshots_after(lake.table(bronze_table(kind)), None)[0]) if p]


def _committed_rows(lake, kind: str) -> int:
    """The Kafka records the Bronze commits say they added."""
    return sum(int(p.extra.get("records", "0")) for p in _bronze_writes(lake, kind))


def _stream_until(settings, spark, lake, targets: dict[str, int], timeout_s: float = 240.0) -> None:
    """Runs the continuous stream until the commits hold `targets` rows per kind, then stops it."""
    # The stream creates these tables first thing too; done here, this thread's reads of them below never
    # race its start (two threads opening a new SQLite catalog at once both try to create its own tables).
    for kind in targets:
        lake.table(bronze_table(kind))
    stop = threading.Event()
    errors = []
    thread = threading.Thread(
        target=lambda: errors.append(run_stream(settings, ("trades", "ticker"), stop=stop, spark=spark, poll_s=0.5)),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while any(_committed_rows(lake, k) < n for k, n in targets.items()):
            assert thread.is_alive(), f"the stream stopped early: {errors}"
            assert time.monotonic() < deadline, {k: _committed_rows(lake, k) for k in targets}
            time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=120)


def _table(spark, lake, t):
    """A table of this lake, read by Spark through the lake's Iceberg catalog."""
    config = lake.catalog_config
    return lake_session(spark, config).table(spark_table(config, t))


def _table_rows(spark, lake, t) -> list[str]:
    return sorted(map(str, _table(spark, lake, t).collect()))


def test_streaming_pipeline_end_to_end_with_a_restart_and_an_identical_backfill(fresh_settings, spark, tmp_path):
    s = fresh_settings.replace(products=PRODUCTS, stream_trigger_seconds=1)
    lake = LakeResource.from_settings(s)
    instance = DagsterInstance.ephemeral()
    defs = build_definitions(s)
    to_silver, to_gold = defs.resolve_sensor_def("bronze_to_silver"), defs.resolve_sensor_def("silver_to_gold")
    frames = list(synthetic_frames(s, 11, 600.0, START))
    half = len(frames) // 2

    silver_cursor = gold_cursor = None
    outcomes = []
    for part in (frames[:half], frames[half:]):  # the stream is stopped and started again between the halves
        publish_frames(part, s, "synthetic", sink=None)
        _stream_until(s, spark, lake, {k: _kafka_records(s, k) for k in ("trades", "ticker")})
        result = tick(to_silver, s, instance, silver_cursor)
        silver_cursor = result.cursor
        apply(result, instance)
        assert requested(result) == sorted(
            (a, f"{DAY}|{p}") for a in ("silver_trades", "silver_ticker", "gold_features", "gold_candles_1m",
                                        "gold_candles_1h") for p in PRODUCTS)
        outcomes += execute(result, s, instance)
        # Gold of the day ran in those runs, after Silver: the Silver -> Gold sensor has nothing left to do.
        result = tick(to_gold, s, instance, gold_cursor)
        gold_cursor = result.cursor
        assert requested(result) == []
    assert requested(tick(to_silver, s, instance, silver_cursor)) == []
    assert requested(tick(to_gold, s, instance, gold_cursor)) == []

    # Every requested run succeeded with every check passed.
    assert all(o.success for o in outcomes)
    checks = [c for o in outcomes for c in o.get_asset_check_evaluations()]
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]

    # No Kafka record lost or duplicated by the stop/restart.
    for kind in ("trades", "ticker"):
        bronze = _table(spark, lake, bronze_table(kind))
        assert bronze.count() == _kafka_records(s, kind)
        assert bronze.select("partition", "offset").distinct().count() == bronze.count()
    stream_writes = [p for p in _bronze_writes(lake, "trades") if p.extra.get("writer") == "stream"]
    assert len(stream_writes) >= 2
    assert len({p.extra["stream-id"] for p in stream_writes}) == 1  # the restart resumed the same stream

    # Gold has rows (the last 5 minutes have a full lookback) and they reconcile with Silver.
    gold = _table(spark, lake, gold_table_def())
    silver_trades = _table(spark, lake, silver_table_def("trades"))
    assert 0 < gold.count() < silver_trades.count()

    # The backfill (batch Bronze, one run per partition) reproduces the sensor-driven data exactly.
    other = s.replace(lake_root=str(tmp_path / "backfill-lake"))
    day = START.date()
    runs = run_backfill(other, day, day, list(PRODUCTS), instance=DagsterInstance.ephemeral(), echo=lambda _: None)
    assert [r.success for r in runs] == [True] * len(runs) and len(runs) == 1 + 2 + 2
    backfill_lake = LakeResource.from_settings(other)
    for t in (silver_table_def("trades"), silver_table_def("ticker"), gold_table_def(), candles_table_def("1m"),
              candles_table_def("1h")):
        assert _table_rows(spark, lake, t) == _table_rows(spark, backfill_lake, t), t.identifier
    quarantine = quarantine_table_def("trades")  # the synthetic trades are all valid, in both lakes
    assert snapshots.read(lake.table(quarantine)).num_rows == 0
    assert snapshots.read(backfill_lake.table(quarantine)).num_rows == 0
