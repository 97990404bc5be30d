"""Streaming Bronze killed with SIGKILL at random moments and restarted: every Kafka offset lands exactly
once, and Bronze equals the batch mode's Bronze of the same days (real broker, Spark, `crypto-pipeline stream`)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date

from crypto_assets.bronze.build import build_bronze_day
from crypto_assets.lake.spark import lake_session
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import environment
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets_tests.conftest import REPO
from crypto_assets_tests.support.records import send_records, trades_frame, ts

DAYS = ("2026-08-01", "2026-08-02")
PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")


def _records(settings, n: int):
    out = []
    for i in range(n):
        day, product = DAYS[i * len(DAYS) // n], PRODUCTS[i % len(PRODUCTS)]
        when = f"{day}T{(i % 24):02d}:{(i % 60):02d}:00Z"
        value = trades_frame(product, [1000 + i], when) if i % 17 else "{broken"
        out.append((settings.trades_topic, product, value, ts(when)))
    return out


def _stream(settings, log, once=False) -> subprocess.Popen:
    env = {**os.environ, **environment(settings)}
    return subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.tools.cli", "stream", "--kinds", "trades", *(["--once"] if once else [])],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the Spark JVM with it
    )


def _commits(lake) -> int:
    snap = lake.table(bronze_table("trades")).current_snapshot()
    return 0 if snap is None else len(lake.table(bronze_table("trades")).snapshots())


def _kill_after_progress(proc: subprocess.Popen, lake, rng: random.Random, timeout_s: float = 180) -> None:
    """Waits for the stream to commit one more micro-batch, then SIGKILLs its process group a random moment later."""
    before, deadline = _commits(lake), time.monotonic() + timeout_s
    while _commits(lake) == before:
        assert proc.poll() is None, "the stream exited before it was killed"
        assert time.monotonic() < deadline, "the stream committed nothing in time"
        time.sleep(0.2)
    time.sleep(rng.uniform(0.0, 2.5))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_stream_killed_three_times_lands_every_offset_exactly_once(fresh_settings, spark, tmp_path):
    s = fresh_settings.replace(stream_trigger_seconds=1, stream_max_offsets_per_trigger=7)
    offsets = send_records(s.kafka_bootstrap, _records(s, 240))
    lake = LakeResource.from_settings(s)
    lake.table(bronze_table("trades"))
    rng = random.Random(16)
    with open(tmp_path / "stream.log", "wb") as log:
        for _ in range(3):
            proc = _stream(s, log)
            try:
                _kill_after_progress(proc, lake, rng)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
        last = _stream(s, log, once=True)  # restarted: lands the rest, then exits
        assert last.wait(timeout=600) == 0, (tmp_path / "stream.log").read_text()[-3000:]

    session = lake_session(spark, lake.catalog_config)
    streamed = session.table("lake.bronze.kafka_trades")
    keys = [(r.partition, r.offset) for r in streamed.select("partition", "offset").collect()]
    assert sorted(keys) == sorted(offsets) and len(set(keys)) == len(keys)  # every offset, once
    batches = [snap.summary.additional_properties.get("crypto.batch-id")
               for snap in lake.table(bronze_table("trades")).snapshots()]
    assert len(batches) == len(set(batches))  # no micro-batch committed twice

    # The batch mode builds the same rows from the same records.
    batch = s.replace(lake_root=str(tmp_path / "batch-lake"))
    batch_lake = LakeResource.from_settings(batch)
    for day in DAYS:
        build_bronze_day(spark, KafkaResource.from_settings(s), batch_lake, "trades", date.fromisoformat(day),
                         SilverRules())
    expected = lake_session(spark, batch_lake.catalog_config).table("lake.bronze.kafka_trades")
    assert sorted(map(str, streamed.collect())) == sorted(map(str, expected.collect()))
