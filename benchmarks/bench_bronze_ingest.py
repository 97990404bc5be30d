"""Benchmark: one day of trades in Kafka (1,000,000 records by default), then ONE Bronze build.

    .venv/bin/python benchmarks/bench_bronze_ingest.py [--records N] [--profile auto|always|never]

1. Starts its own broker (free ports, state under .state/bench/bench_bronze_ingest/, wiped first)
   and creates the project's topics (3 partitions).
2. Publishes N Coinbase Advanced Trade `market_trades` frames, one trade each (the format of
   producer/samples/samples_advanced_trade.ndjson), with the project's KafkaSink (acks=all):
   key = product_id (BTC-USD / ETH-USD / SOL-USD in turn), trade ids consecutive per product,
   prices a seeded random walk, Kafka timestamps spread evenly and increasing over one UTC day,
   headers source=bench, connection_id=bench-1. Reports the publish rate.
3. Builds a local Spark session (local[2], 4 shuffle partitions, 4g driver), warms it up and
   times `build_bronze_day(..., "trades", day)`; checks rows == N and malformed == 0.
   Reports seconds, records/s, bytes and files written, the time of each phase (offset lookup,
   existing-partition check, read+transform+write, stats collection) and peak memory.
   Goal: at least 50,000 records/s on 2 cores.
4. With --profile (default: only when the goal is missed) runs extra diagnostic jobs *after*
   the measurement: the bare Kafka scan, the scan + Bronze mapping, each to Spark's noop sink,
   so the cost of reading, of parsing and of writing Parquet can be told apart.

The broker and Spark are stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import _common as C

NAME = "bench_bronze_ingest"
GOAL_RPS = 50_000
PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")
START_PRICE = {"BTC-USD": 91234.56, "ETH-USD": 3050.12, "SOL-USD": 142.37}
FIRST_TRADE_ID = {"BTC-USD": 1_056_309_461, "ETH-USD": 712_004_118, "SOL-USD": 184_220_931}

# One trade per frame, keys in the order Coinbase sends them (see samples_advanced_trade.ndjson).
TEMPLATE = (
    '{"channel":"market_trades","timestamp":"%s.%09dZ","sequence_num":%d,'
    '"events":[{"type":"update","trades":[{"product_id":"%s","trade_id":"%d","price":"%s",'
    '"size":"%s","time":"%s.%06dZ","side":"%s"}]}]}'
)


def generate(n: int, day: date, seed: int = 1):
    """Yields (key, value, timestamp_ms) for n one-trade frames spread evenly over the UTC day.

    Plain %-formatting of one template with precomputed "YYYY-MM-DDTHH:MM:SS" strings: about
    3x faster than json.dumps of a dict per record.
    """
    rng = random.Random(seed)
    rnd = rng.random
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)
    ds = day.isoformat()
    stamps = [f"{ds}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
    span = 86_400_000
    price = [START_PRICE[p] for p in PRODUCTS]
    next_id = [FIRST_TRADE_ID[p] for p in PRODUCTS]
    keys = [p.encode() for p in PRODUCTS]
    for i in range(n):
        j = i % 3
        # Middle of the i-th of n equal slots: strictly increasing for n <= 43.2M, inside the day.
        ms = ((2 * i + 1) * span) // (2 * n)
        # The trade happened a little before Coinbase stamped the frame, which was a little
        # before we received it (Kafka timestamp = receive time).
        r = rnd()
        trade_ms = ms - 20 - int(r * 40)
        if trade_ms < 0:
            trade_ms = 0
        env_ms = ms - 3 if ms - 3 > trade_ms else trade_ms
        p = price[j] * (1.0 + (rnd() - 0.5) * 0.0004)
        price[j] = p
        trade_id = next_id[j]
        next_id[j] = trade_id + 1
        sz = rnd()
        size = ("%.8f" % max(sz * sz * 0.5, 1e-8)).rstrip("0")
        value = TEMPLATE % (
            stamps[env_ms // 1000], (env_ms % 1000) * 1_000_000 + int(r * 999_983), i + 1,
            PRODUCTS[j], trade_id, repr(round(p, 2)), size,
            stamps[trade_ms // 1000], (trade_ms % 1000) * 1000 + int(r * 997),
            "BUY" if rnd() < 0.5 else "SELL",
        )
        yield keys[j], value.encode(), day_ms + ms


def publish(settings, n: int, day: date) -> dict:
    from producer.kafka_sink import KafkaSink
    from producer.routing import KafkaRecord

    topic = settings.trades_topic
    headers = (("source", b"bench"), ("connection_id", b"bench-1"))
    sink = KafkaSink(settings.kafka_bootstrap)
    value_bytes = 0
    step = max(1, n // 10)
    t0 = time.perf_counter()
    try:
        for i, (key, value, ts) in enumerate(generate(n, day), 1):
            sink.send(KafkaRecord(topic, key, value, ts, headers))
            value_bytes += len(value)
            if i % step == 0:
                dt = time.perf_counter() - t0
                print(f"  sent {i:>9,} records  {dt:6.1f} s  ({i / dt:,.0f}/s)", flush=True)
    finally:
        sink.close(timeout_s=120)
    secs = time.perf_counter() - t0
    st = sink.stats
    if st.failed or st.acked != n:
        raise SystemExit(f"FAILED: publish: {st.acked:,} of {n:,} acked, {st.failed} failed (last error {st.last_error})")
    return {"seconds": secs, "value_bytes": value_bytes}


def generation_cost(n: int, day: date) -> float:
    """Time to build the same records without sending them (the producer's share of publish)."""
    t0 = time.perf_counter()
    for _ in generate(n, day):
        pass
    return time.perf_counter() - t0


def kafka_totals(settings) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(settings.trades_topic, p) for p in sorted(consumer.partitions_for_topic(settings.trades_topic))]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


class PhaseTimer:
    """Times the phases of build_bronze_day by wrapping what it calls (in this process only)."""

    def __init__(self):
        self.times: dict[str, float] = {}

    def wrap(self, owner, attr: str, phase: str):
        orig = getattr(owner, attr)
        times = self.times

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                times[phase] = times.get(phase, 0.0) + time.perf_counter() - t0

        setattr(owner, attr, timed)
        return orig


def run_bronze(spark, settings, day: date) -> tuple[object, float, dict[str, float]]:
    from pyspark.sql.readwriter import DataFrameWriter

    import crypto_assets.steps.bronze as step
    from crypto_assets.resources.kafka import KafkaResource
    from crypto_assets.resources.lake import LakeResource

    kafka = KafkaResource.from_settings(settings)
    lake = LakeResource.from_settings(settings)
    pt = PhaseTimer()
    originals = [
        (KafkaResource, "offset_window", pt.wrap(KafkaResource, "offset_window", "offset lookup")),
        (step, "_existing_offsets", pt.wrap(step, "_existing_offsets", "existing-partition check")),
        (DataFrameWriter, "parquet", pt.wrap(DataFrameWriter, "parquet", "read+transform+write")),
        (step, "_collect_stats", pt.wrap(step, "_collect_stats", "stats collection")),
    ]
    try:
        t0 = time.perf_counter()
        stats = step.build_bronze_day(spark, kafka, lake, "trades", day)
        secs = time.perf_counter() - t0
    finally:
        for owner, attr, orig in originals:
            setattr(owner, attr, orig)
    phases = dict(pt.times)
    phases["other (plan, file listing)"] = max(0.0, secs - sum(phases.values()))
    return stats, secs, phases


def profile(spark, settings, day: date, n: int) -> dict[str, float]:
    """Diagnostic jobs after the measurement: where does the read+transform+write time go?"""
    import crypto_assets.steps.bronze as step
    from crypto_assets.resources.kafka import KafkaResource
    from crypto_assets.transforms.bronze import day_bounds, filter_ingest_day, kafka_to_bronze

    kafka = KafkaResource.from_settings(settings)
    start, end = day_bounds(day)
    window = kafka.offset_window(settings.trades_topic, start, end)
    out: dict[str, float] = {}

    def noop(label, df):
        t0 = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        out[label] = time.perf_counter() - t0
        print(f"  {label:<44} {out[label]:7.2f} s  ({n / out[label]:,.0f} records/s)", flush=True)

    raw = step.read_kafka_window(spark, kafka, window)
    noop("Kafka scan only (noop sink)", raw)
    noop("Kafka scan + day filter + Bronze mapping", kafka_to_bronze(filter_ingest_day(raw, day), "trades"))
    noop(
        "... + sortWithinPartitions",
        kafka_to_bronze(filter_ingest_day(raw, day), "trades").sortWithinPartitions("partition", "offset"),
    )
    # Parquet write without the JSON parse: how much is the writer itself?
    tmp = str(Path(settings.lake_root) / "_profile_raw_parquet")
    t0 = time.perf_counter()
    raw.write.mode("overwrite").parquet(tmp)
    out["Kafka scan + raw Parquet write"] = time.perf_counter() - t0
    print(f"  {'Kafka scan + raw Parquet write (no parse)':<44} {out['Kafka scan + raw Parquet write']:7.2f} s", flush=True)
    C.reset_dir(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="trade records to publish (default 1,000,000)")
    ap.add_argument("--day", default="2026-11-20", help="UTC day of the records (default 2026-11-20)")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="diagnostic noop jobs after the measurement (auto: only if the goal is missed)")
    args = ap.parse_args(argv)
    if args.records < 1:
        ap.error("--records must be >= 1")
    n = args.records
    day = date.fromisoformat(args.day)
    logging.basicConfig(level=logging.WARNING)

    from crypto_assets.broker import LocalBroker
    from crypto_assets.resources.spark import build_spark_session

    info = C.machine_info()
    print(f"== {NAME}: {n:,} trade records in Kafka -> one Bronze day ({day})")
    print(C.machine_line(info), flush=True)

    settings = C.bench_settings(NAME)
    C.reset_dir(C.BENCH_STATE / NAME)  # broker data and lake: every run starts empty
    broker = LocalBroker(settings)
    spark = None
    summary: dict = {"benchmark": NAME, "machine": info, "records": n, "day": day.isoformat()}
    ok = False
    try:
        t0 = time.perf_counter()
        st = broker.up()
        broker.ensure_topics()
        print(f"broker up in {time.perf_counter() - t0:.1f} s at {settings.kafka_bootstrap}; "
              f"topics: {', '.join(f'{t}({p})' for t, p in sorted(st.topics.items()))}", flush=True)

        print(f"publishing {n:,} records with KafkaSink (acks=all) ...", flush=True)
        pub = publish(settings, n, day)
        pub_rps = n / pub["seconds"]
        gen_s = generation_cost(n, day)
        ends = kafka_totals(settings)
        if sum(ends.values()) != n:
            raise SystemExit(f"FAILED: topic holds {sum(ends.values()):,} records, expected {n:,}")
        avg = pub["value_bytes"] / n
        print(f"published {n:,} records ({pub['value_bytes'] / 1024**2:,.0f} MiB of values, {avg:.0f} B avg) "
              f"in {pub['seconds']:.1f} s = {pub_rps:,.0f} records/s "
              f"(of which building the values: {gen_s:.1f} s); per partition {ends}", flush=True)
        summary["publish"] = {
            "seconds": round(pub["seconds"], 2), "records_per_s": round(pub_rps),
            "value_bytes_avg": round(avg, 1), "generation_s": round(gen_s, 2), "partition_end_offsets": ends,
        }

        broker_pid = broker.status().pid
        with C.TreeRssSampler(exclude_pids=(broker_pid,) if broker_pid else ()) as sampler:
            t0 = time.perf_counter()
            spark = build_spark_session(
                master="local[2]", shuffle_partitions=4, driver_memory="4g",
                state_dir=settings.state_dir, jvm_dir=settings.jvm_dir,
            )
            spark.range(10).count()
            session_s = time.perf_counter() - t0
            print(f"Spark session (local[2]) up and warmed in {session_s:.1f} s; building Bronze ...", flush=True)

            stats, bronze_s, phases = run_bronze(spark, settings, day)
        broker_rss = C.rss_of(broker_pid) if broker_pid else 0.0
        rps = n / bronze_s

        problems = []
        if stats.rows != n:
            problems.append(f"rows {stats.rows:,} != {n:,}")
        if stats.malformed != 0:
            problems.append(f"malformed {stats.malformed:,} != 0 ({stats.malformed_by_reason})")
        if stats.products != sorted(PRODUCTS):
            problems.append(f"products {stats.products} != {sorted(PRODUCTS)}")

        ok = rps >= GOAL_RPS
        cores_note = "" if info["nproc"] == 2 else f" (measured on {info['nproc']} cores, goal is for 2)"
        mem = {**sampler.summary_mib(), **{f"rusage_{k}": v for k, v in C.rusage_max_rss_mib().items()},
               "broker_rss_mib": broker_rss}
        print()
        print(f"publish:  {n:,} records in {pub['seconds']:.1f} s = {pub_rps:,.0f} records/s (acks=all, KafkaSink)")
        print(f"bronze:   {stats.rows:,} rows, {stats.malformed} malformed, products {stats.products}")
        print(f"          {bronze_s:.1f} s = {rps:,.0f} records/s; {stats.files} files, "
              f"{stats.bytes_written / 1024**2:,.1f} MiB ({stats.bytes_written:,} bytes) written")
        for phase, secs in phases.items():
            print(f"          {phase:<30} {secs:7.2f} s  ({100 * secs / bronze_s:4.1f} %)")
        print(f"memory:   peak RSS Python+Spark tree {mem['tree_peak_mib']:,.0f} MiB "
              f"(Python {mem['python_peak_mib']:,.0f}, Spark JVM {mem['children_peak_mib']:,.0f}); "
              f"broker {broker_rss:,.0f} MiB; ru_maxrss self {mem['rusage_self_mib']:,.0f} MiB")
        print(f"goal: at least {GOAL_RPS:,} records/s on 2 cores: {'PASS' if ok else 'MISS'}{cores_note}")
        summary.update({
            "spark_session_s": round(session_s, 2),
            "bronze": {
                "seconds": round(bronze_s, 2), "records_per_s": round(rps), "rows": stats.rows,
                "malformed": stats.malformed, "files": stats.files, "bytes_written": stats.bytes_written,
                "phases_s": {k: round(v, 2) for k, v in phases.items()},
            },
            "memory_mib": mem,
            "goal": f">= {GOAL_RPS} records/s on 2 cores",
            "goal_met": ok,
            "verdict": "PASS" if ok else "MISS",
        })
        if problems:
            summary["verdict"] = "FAILED"
            summary["problems"] = problems
            print("FAILED: " + "; ".join(problems), flush=True)
        elif args.profile == "always" or (args.profile == "auto" and not ok):
            print("profile (diagnostic noop jobs, after the measurement):", flush=True)
            summary["profile_s"] = {k: round(v, 2) for k, v in profile(spark, settings, day, n).items()}
    finally:
        if spark is not None:
            try:
                spark.stop()
            except Exception as exc:  # do not hide the real error
                print(f"warning: spark.stop() failed: {exc!r}")
        broker.down()

    path = C.write_result(NAME, summary)
    print(f"written: {path.relative_to(C.REPO)}")
    C.print_result(summary)
    return 1 if summary.get("verdict") == "FAILED" else 0


if __name__ == "__main__":
    sys.exit(main())
