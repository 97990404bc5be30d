"""End to end in streaming mode: synthetic market -> real broker -> streaming Bronze (stopped and
restarted midway) -> sensor ticks -> the requested Silver and Gold runs -> Gold; then a CLI-style
backfill from batch Bronze into a second lake must reproduce Silver and Gold exactly."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from dagster import DagsterInstance

from crypto_assets.lake.commits import list_commit_names, read_commit
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


def _committed_rows(lake, kind: str) -> int:
    return sum(read_commit(lake, kind, n).rows for n in list_commit_names(lake, kind))


def _stream_until(settings, spark, lake, targets: dict[str, int], timeout_s: float = 240.0) -> None:
    """Runs the continuous stream until the commits hold `targets` rows per kind, then stops it."""
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


def _table_rows(spark, path: str) -> list[str]:
    return sorted(map(str, spark.read.parquet(path).collect()))


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
            (a, f"{DAY}|{p}") for a in ("silver_trades", "silver_ticker", "gold_features") for p in PRODUCTS)
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
    for kind, table in (("trades", "kafka_trades"), ("ticker", "kafka_ticker")):
        bronze = spark.read.parquet(f"{s.lake_root}/bronze/{table}")
        assert bronze.count() == _kafka_records(s, kind)
        assert bronze.select("partition", "offset").distinct().count() == bronze.count()
    assert len([n for n in list_commit_names(lake, "trades")]) >= 2

    # Gold has rows (the last 5 minutes have a full lookback) and they reconcile with Silver.
    gold = spark.read.parquet(f"{s.lake_root}/gold/features")
    silver_trades = spark.read.parquet(f"{s.lake_root}/silver/trades")
    assert 0 < gold.count() < silver_trades.count()

    # The backfill (batch Bronze, one run per partition) reproduces the sensor-driven data exactly.
    other = s.replace(lake_root=str(tmp_path / "backfill-lake"))
    day = START.date()
    runs = run_backfill(other, day, day, list(PRODUCTS), instance=DagsterInstance.ephemeral(), echo=lambda _: None)
    assert [r.success for r in runs] == [True] * len(runs) and len(runs) == 1 + 2 + 2
    for layer_table in ("silver/trades", "silver/ticker", "quarantine/trades", "gold/features"):
        ours = f"{s.lake_root}/{layer_table}"
        theirs = f"{other.lake_root}/{layer_table}"
        if layer_table.startswith("quarantine"):
            assert not LakeResource.from_settings(s).data_files(ours) and not LakeResource.from_settings(other).data_files(theirs)
            continue
        assert _table_rows(spark, ours) == _table_rows(spark, theirs), layer_table
