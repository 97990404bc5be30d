"""Streaming mode figures of issue #6, on the real services.

latency:   a steady paced synthetic market (~100 messages/s) -> local broker -> `crypto-pipeline
           stream` -> the Dagster daemon's sensors -> Silver and Gold runs; for every trade that
           reaches Gold, (first time its Gold row is readable) - (trade time). p50 and p95.
sustained: ~1,000 messages/s for 10 minutes into the broker with the streaming Bronze job
           running; samples Bronze's lag behind Kafka (records in Kafka not yet committed to
           Bronze) every few seconds, and the catch-up time once the producer stops.

Usage: python benchmarks/bench_streaming.py latency|sustained [--minutes N] [--rate R]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import _common as C

from crypto_assets.tools.live import local_spark_env, settings_env

VENV_BIN = Path(sys.executable).parent


def message_rate(products, m: float) -> float:
    """Published messages per second of the synthetic market (trades and ticker frames)."""
    from producer.synthetic import SyntheticConfig, generate_frames

    cfg = SyntheticConfig(products=products, seed=3, start=datetime(2026, 1, 1, tzinfo=timezone.utc),
                          duration_s=60.0, rate_multiplier=m)
    n = sum(1 for f in generate_frames(cfg) if '"channel":"market_trades"' in f.text or '"channel":"ticker"' in f.text)
    return n / 60.0


def market_for(base_products: tuple[str, ...], target_rate: float) -> tuple[tuple[str, ...], float]:
    """Products and rate multiplier for about `target_rate` messages/s. The generator batches a busy
    product's trades into at most ~20 frames/s, so past that more products are added, not more trades."""
    per_product = message_rate(base_products, 1.0) / len(base_products)
    products = list(base_products)
    while len(products) * per_product < target_rate:
        products.append(f"SYN{len(products):03d}-USD")
    products = tuple(products)
    m = target_rate / message_rate(products, 1.0)
    return products, m * target_rate / message_rate(products, m)


def start_producer(settings, rate: float, seconds: float, stop: threading.Event, history_s: float = 0.0) -> threading.Thread:
    """Paced synthetic feed starting now: frame times are wall-clock times, as from the exchange. With
    `history_s`, the same market's preceding seconds (same trade id sequences) are published first, as
    fast as possible, so the day's partitions already hold that much when the paced feed starts."""
    import itertools

    from producer.run import TimedFrame, publish_frames
    from producer.synthetic import SyntheticConfig, generate_frames

    products, m = market_for(tuple(settings.products), rate)
    achieved = message_rate(products, m)
    now = datetime.now(timezone.utc) + timedelta(seconds=2)
    cfg = SyntheticConfig(products=products, seed=5, start=now - timedelta(seconds=history_s),
                          duration_s=2 * history_s + seconds, rate_multiplier=m)  # room for the skipped while
    frames = (TimedFrame(f.received_at, f.text, "bench") for f in generate_frames(cfg))
    if history_s:
        history, first_live = [], []
        for f in frames:
            if f.received_at >= now:
                first_live = [f]
                break
            history.append(f)
        summary = publish_frames(history, settings, "synthetic", speed=0.0)
        print(f"producer: {history_s / 60:.0f} minutes of history published first: {summary}", flush=True)
        # Publishing the history took a while: the market's frames of that while are skipped (a gap, as
        # after a disconnect), so the paced feed's frame times are wall-clock times again.
        live_from = datetime.now(timezone.utc)
        live_until = live_from + timedelta(seconds=seconds)
        frames = itertools.takewhile(lambda f: f.received_at < live_until, itertools.dropwhile(
            lambda f: f.received_at < live_from, itertools.chain(first_live, frames)))
    thread = threading.Thread(target=publish_frames, args=(frames, settings, "synthetic"),
                              kwargs={"speed": 1.0, "stop": stop}, daemon=True)
    thread.start()
    print(f"producer: paced synthetic feed, {len(products)} products, ~{achieved:.0f} messages/s (rate multiplier "
          f"{m:.2f}) for {seconds:.0f} s", flush=True)
    return thread


def start_stream(settings, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([str(VENV_BIN / "crypto-pipeline"), "stream"], env=local_spark_env(settings_env(settings)), cwd=C.REPO,
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def kafka_end_total(settings) -> int:
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    kafka = KafkaResource.from_settings(settings)
    far = datetime(2100, 1, 1, tzinfo=timezone.utc)
    return sum(sum(kafka.offset_window(t, datetime(2000, 1, 1, tzinfo=timezone.utc), far).latest.values())
               for t in settings.topics)


class BronzeCommitted:
    """Kafka records the Bronze tables' commits added (`crypto.records` of each snapshot's summary),
    summed incrementally: each poll reads only the snapshots committed since the previous one."""

    def __init__(self, lake):
        self.lake = lake
        self.cursor: dict[str, int | None] = {}  # kind -> last snapshot id counted
        self.totals: dict[str, int] = {}

    def __call__(self) -> int:
        from crypto_assets.contracts.tables import bronze_table
        from crypto_assets.lake.catalog import load_table
        from crypto_assets.lake.snapshots import DATA_OPERATIONS, Provenance, snapshots_after

        for kind in ("trades", "ticker"):
            table = load_table(self.lake.catalog_config, bronze_table(kind), create=False)
            if table is None:
                continue
            new, found = snapshots_after(table, self.cursor.get(kind))
            if not found:  # first poll, or the last snapshot counted was expired: count everything kept
                self.totals[kind] = 0
            for snap in new:
                if snap.summary is None or snap.summary.operation.value not in DATA_OPERATIONS:
                    continue  # a maintenance rewrite, or the delete half of a replace: no records added
                p = Provenance.of(snap)
                self.totals[kind] = self.totals.get(kind, 0) + (int(p.extra.get("records", "0")) if p else 0)
            if new:
                self.cursor[kind] = new[-1].snapshot_id
        return sum(self.totals.values())


def dagster_home(root: Path, settings) -> Path:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(f"""storage:
  sqlite:
    base_dir: {home}/storage
local_artifact_storage:
  module: dagster._core.storage.root
  class: LocalArtifactStorage
  config:
    base_dir: {home}/artifacts
compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {home}/compute_logs
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 2
telemetry:
  enabled: false
""")
    return home


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run_latency(args, settings, root: Path, info: dict) -> dict:
    from crypto_assets.contracts.tables import gold_table_def
    from crypto_assets.lake.catalog import load_table, open_catalog
    from crypto_assets.lake.snapshots import snapshot_files
    from crypto_assets.orchestration.resources.lake import LakeResource

    lake = LakeResource.from_settings(settings)
    open_catalog(lake.catalog_config)  # the catalog's own tables exist before the stream and the runs open it
    home = dagster_home(root, settings)
    spark_server = None
    if args.warm_spark:
        from crypto_assets.tools.spark_server import LocalSparkServer

        spark_server = LocalSparkServer(settings)
        spark_server.up()
        settings = settings.replace(spark_connect_url=spark_server.url)
        print(f"runs attach to the warm Spark Connect server at {spark_server.url}", flush=True)
    env = {**settings_env(settings), "DAGSTER_HOME": str(home)}
    daemon = subprocess.Popen([str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env=env, cwd=C.REPO,
                              stdout=(root / "daemon.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    stream = start_stream(settings, root / "stream.log")
    stop = threading.Event()
    seconds = args.minutes * 60
    since_midnight = (datetime.now(timezone.utc) - datetime.now(timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                        microsecond=0)).total_seconds()
    args.history_minutes = min(args.history_minutes, max(0.0, since_midnight - 120) / 60)  # the same UTC day
    producer = start_producer(settings, args.rate, seconds, stop, history_s=args.history_minutes * 60)
    t_start = datetime.now(timezone.utc)  # the paced feed's start (after any history)
    # Gold rows need 5 minutes and 500 trades of history: measure trades after that warm-up.
    measure_from = t_start + timedelta(minutes=args.warmup_minutes)
    seen: dict[tuple[str, int], float] = {}
    read_already: set[str] = set()  # the poller reads each Gold data file once, not every second
    latencies: list[float] = []
    by_minute: dict[int, list[float]] = {}  # minute of the paced feed (by trade time) -> latencies

    deadline = time.monotonic() + seconds + args.drain_seconds
    # CPU by role: the streaming job (its JVM) and the daemon with the runs it launched.
    with C.CpuWindow({"stream": stream.pid, "daemon_and_runs": daemon.pid}) as cpu:
        while time.monotonic() < deadline:
            now = datetime.now(timezone.utc)
            # The data files of Gold's current snapshot (a commit's rows are readable once it is current).
            gold = load_table(lake.catalog_config, gold_table_def(), create=False)
            for product in settings.products if gold is not None else ():
                for day in {t_start.date(), now.date()}:
                    _, files = snapshot_files(gold, {"product_id": product, "event_date": day})
                    for data_file in files:
                        if data_file.path in read_already:
                            continue  # read at an earlier poll: data files never change, a rewrite is a new file
                        try:
                            table = lake.read_files([data_file.path], columns=["trade_id", "trade_time"])
                        except OSError:
                            continue  # removed by maintenance since the snapshot was read: next poll
                        read_already.add(data_file.path)
                        for tid, tt in zip(table.column("trade_id").to_pylist(), table.column("trade_time").to_pylist()):
                            if (product, tid) in seen:
                                continue
                            tt = tt.replace(tzinfo=timezone.utc) if tt.tzinfo is None else tt
                            seen[(product, tid)] = 0
                            if tt >= measure_from and tt <= t_start + timedelta(seconds=seconds):
                                latencies.append((now - tt).total_seconds())
                                by_minute.setdefault(int((tt - t_start).total_seconds() // 60), []).append(latencies[-1])
            time.sleep(args.poll_seconds)
    stop.set()
    producer.join(timeout=30)
    for proc in (stream, daemon):
        stop_process(proc)
    if spark_server is not None:
        spark_server.down()
    runs = _run_durations(home)
    result = {
        "warm_spark": args.warm_spark, "history_minutes": round(args.history_minutes, 1),
        "rate_msgs_per_s": args.rate, "minutes": args.minutes, "trades_measured": len(latencies),
        "p50_s": round(statistics.median(latencies), 1) if latencies else None,
        "p95_s": round(percentile(latencies, 95), 1) if latencies else None,
        "max_s": round(max(latencies), 1) if latencies else None,
        # Trade -> Gold latency over the run: it stays flat when Silver and Gold keep up with the feed.
        "p50_by_minute_s": {m: round(statistics.median(v), 1) for m, v in sorted(by_minute.items())},
        "runs": runs, "cpu": cpu.summary(),
    }
    print("p50 latency by minute of the feed (s): " + ", ".join(f"{m}: {v}" for m, v in result["p50_by_minute_s"].items()),
          flush=True)
    return result


def _run_durations(home: Path) -> dict:
    """Median wall time of the daemon-launched runs per asset (from the instance's run records)."""
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance, RunsFilter

    out: dict[str, list[float]] = {}
    with DagsterInstance.get() as instance:
        for rec in instance.get_run_records(filters=RunsFilter()):
            if rec.start_time and rec.end_time:
                key = rec.dagster_run.tags.get("crypto/asset", "other")
                out.setdefault(key, []).append(rec.end_time - rec.start_time)
    return {k: {"runs": len(v), "median_s": round(statistics.median(v), 1)} for k, v in out.items()}


def run_sustained(args, settings, root: Path, info: dict) -> dict:
    from crypto_assets.lake.catalog import open_catalog
    from crypto_assets.orchestration.resources.lake import LakeResource

    lake = LakeResource.from_settings(settings)
    open_catalog(lake.catalog_config)  # the catalog's own tables exist before the stream opens it too
    bronze_committed = BronzeCommitted(lake)
    stream = start_stream(settings, root / "stream.log")
    stop = threading.Event()
    seconds = args.minutes * 60
    producer = start_producer(settings, args.rate, seconds, stop)
    samples = []
    t0 = time.monotonic()
    with C.CpuWindow() as cpu:
        while True:
            elapsed = time.monotonic() - t0
            kafka, bronze = kafka_end_total(settings), bronze_committed()
            samples.append((round(elapsed, 1), kafka, kafka - bronze))
            if int(elapsed) // 30 != int(samples[-2][0] if len(samples) > 1 else -1) // 30:
                print(f"  t={elapsed:6.0f} s  kafka={kafka:>9,}  bronze lag={kafka - bronze:>7,} records", flush=True)
            if not producer.is_alive() and kafka - bronze == 0:
                break
            if elapsed > seconds + 600:
                break
            time.sleep(args.poll_seconds)
    produced_until = seconds
    catch_up = next((t for t, _, lag in samples if t >= produced_until and lag == 0), None)
    stop_process(stream)
    lags = [lag for t, _, lag in samples if t <= produced_until]
    n = len(lags)
    return {
        "rate_msgs_per_s": args.rate, "minutes": args.minutes,
        "records_in_kafka": samples[-1][1],
        "achieved_msgs_per_s": round(samples[-1][1] / seconds, 1),
        "lag_max_records": max(lags), "lag_median_records": int(statistics.median(lags)),
        "lag_first_quarter_mean": int(statistics.mean(lags[: max(1, n // 4)])),
        "lag_last_quarter_mean": int(statistics.mean(lags[-max(1, n // 4):])),
        "catch_up_after_producer_stop_s": round(catch_up - produced_until, 1) if catch_up is not None else None,
        "lag_series": samples[:: max(1, len(samples) // 60)], "cpu": cpu.summary(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["latency", "sustained"])
    ap.add_argument("--minutes", type=float, help="producer run time (latency 11, sustained 10)")
    ap.add_argument("--rate", type=float, help="messages/s (latency 100, sustained 1000)")
    ap.add_argument("--warmup-minutes", type=float, default=6.0, help="latency: trades before this are not measured")
    ap.add_argument("--history-minutes", type=float, default=0.0,
                    help="latency: publish this much of the market's past first (as fast as possible), so the day's "
                         "partitions are that full when measuring starts (the day's own start, UTC, at most)")
    ap.add_argument("--drain-seconds", type=float, default=120.0, help="latency: polling after the producer stops")
    ap.add_argument("--poll-seconds", type=float, default=1.0)
    ap.add_argument("--warm-spark", action="store_true",
                    help="latency: runs attach to one Spark Connect server (Silver and Gold run on Arrow and use none)")
    args = ap.parse_args(argv)
    args.minutes = args.minutes or (11.0 if args.mode == "latency" else 10.0)
    args.rate = args.rate or (100.0 if args.mode == "latency" else 1000.0)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)

    from crypto_assets.tools.broker import LocalBroker

    name = f"streaming_{args.mode}"
    info = C.machine_info()
    print(f"== {name}")
    print(C.machine_line(info), flush=True)
    root = C.BENCH_STATE / name
    C.reset_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    settings = C.bench_settings(name, sensor_interval_seconds=5, stream_trigger_seconds=5, automation="on",
                                bronze_mode="stream", spark_connect_port=C.free_port())
    broker = LocalBroker(settings)
    broker.up()
    try:
        body = run_latency(args, settings, root, info) if args.mode == "latency" else run_sustained(args, settings, root, info)
    finally:
        broker.down()
    summary = {"benchmark": name, "machine": info, **body}
    note = C.contention_note(body["cpu"]["others_avg_cores"])
    if note:
        summary["note"] = note
        print(note)
    C.print_result(summary)
    print(f"written {C.write_result(name, summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
