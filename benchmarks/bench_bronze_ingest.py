"""Benchmark: one day of trades in Kafka (1,000,000 records by default), then ONE Bronze build; and a small backfill.

    .venv/bin/python benchmarks/bench_bronze_ingest.py [--records N] [--small-records M] [--profile auto|always|never]

1. Starts its own broker (free ports, state under .state/bench/bench_bronze_ingest/, wiped first)
   and creates the project's topics (3 partitions).
2. Publishes N Coinbase Advanced Trade `market_trades` frames, one trade each (the format of
   producer/samples/samples_advanced_trade.ndjson), with the project's KafkaSink (acks=all):
   key = product_id (BTC-USD / ETH-USD / SOL-USD in turn), trade ids consecutive per product,
   prices a seeded random walk, Kafka timestamps spread evenly and increasing over one UTC day,
   headers source=bench, connection_id=bench-1. Reports the publish rate.
3. Builds a local Spark session (local[2], 4 shuffle partitions, 4g driver), warms it up and
   times `build_bronze_day(..., "trades", day, rules)`; checks rows == N and malformed == 0.
   Reports seconds, records/s, bytes and files written, the time of each phase (offset lookup,
   existing-partition check, read+transform+write, stats collection) and peak memory.
   Goal: at least 50,000 records/s on 2 cores, counting the Spark session's start (the figure
   `records/s incl. Spark start`; the build alone is reported too). The Spark path is forced
   (`arrow_max_records=0`), whatever the window's size.
5. A small backfill from the CLI: M records (default 5,000) on a day two days later, then
   `crypto-pipeline backfill --from D --to D --layers bronze` in a fresh process (Spark stopped
   first) against the same broker and lake: end-to-end seconds, goal under 10 s. A window of at
   most `CRYPTO_BRONZE_ARROW_MAX_RECORDS` records is read with kafka-python, so no JVM starts.
4. With --profile (default: only when the goal is missed) runs diagnostic jobs *after* the
   measurement in the same (now warm) session: the bare Kafka scan, the JSON parse, the Bronze
   mapping (to Spark's noop sink), a raw Parquet write, the Bronze write again, and the Bronze
   write with the Kafka source's minPartitions=4, each with the Spark JVM's CPU seconds.

Every phase also reports the CPU used by other processes: on a shared machine the figures are
then pessimistic, and the report says so.

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
GOAL_SMALL_S = 10.0
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
        trade_ms = max(trade_ms, 0)
        env_ms = max(trade_ms, ms - 3)
        p = price[j] * (1.0 + (rnd() - 0.5) * 0.0004)
        price[j] = p
        trade_id = next_id[j]
        next_id[j] = trade_id + 1
        sz = rnd()
        size = f"{max(sz * sz * 0.5, 1e-8):.8f}".rstrip("0")
        value = TEMPLATE % (
            stamps[env_ms // 1000], (env_ms % 1000) * 1_000_000 + int(r * 999_983), i + 1,
            PRODUCTS[j], trade_id, repr(round(p, 2)), size,
            stamps[trade_ms // 1000], (trade_ms % 1000) * 1000 + int(r * 997),
            "BUY" if rnd() < 0.5 else "SELL",
        )
        yield keys[j], value.encode(), day_ms + ms


def publish(settings, n: int, day: date, quiet: bool = False) -> dict:
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
            if i % step == 0 and not quiet:
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
    """Times the phases of build_bronze_day by wrapping what it calls (in this process only),
    with the Spark JVM's CPU seconds in each phase."""

    def __init__(self, groups: dict[str, int]):
        self.groups = groups
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, owner, attr: str, phase: str):
        orig = getattr(owner, attr)
        pt = self

        def timed(*a, **k):
            w = C.CpuWindow(pt.groups)
            w.__enter__()
            try:
                return orig(*a, **k)
            finally:
                w.__exit__(None, None, None)
                pt.times[phase] = pt.times.get(phase, 0.0) + w.wall
                pt.cpu[phase] = pt.cpu.get(phase, 0.0) + w.ours.get("spark", 0.0)

        setattr(owner, attr, timed)
        return orig


def run_bronze(spark, settings, day: date, groups: dict[str, int]):
    import crypto_assets.bronze.build as step
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.orchestration.resources.kafka import KafkaResource
    from crypto_assets.orchestration.resources.lake import LakeResource

    kafka = KafkaResource.from_settings(settings)
    lake = LakeResource.from_settings(settings)
    pt = PhaseTimer(groups)
    originals = [
        (KafkaResource, "offset_window", pt.wrap(KafkaResource, "offset_window", "offset lookup")),
        (step, "_existing_offsets", pt.wrap(step, "_existing_offsets", "existing-partition check")),
        (step, "_overwrite", pt.wrap(step, "_overwrite", "read+transform+summary+Iceberg commit")),
        (step, "_collect_stats", pt.wrap(step, "_collect_stats", "stats collection")),
    ]
    try:
        with C.CpuWindow(groups) as cw:
            stats = step.build_bronze_day(spark, kafka, lake, "trades", day, SilverRules.from_settings(settings),
                                          arrow_max_records=0)
    finally:
        for owner, attr, orig in originals:
            setattr(owner, attr, orig)
    phases = {k: (v, pt.cpu.get(k, 0.0)) for k, v in pt.times.items()}
    phases["other (plan, file listing)"] = (
        max(0.0, cw.wall - sum(pt.times.values())),
        max(0.0, cw.ours.get("spark", 0.0) - sum(pt.cpu.values())),
    )
    return stats, cw, phases


def profile(spark, settings, day: date, n: int, groups: dict[str, int]) -> dict[str, dict]:
    """Diagnostic jobs after the measurement (warm JVM): where does read+transform+write go?"""
    from pyspark.sql import functions as F

    import crypto_assets.bronze.build as step
    from crypto_assets.bronze.transforms import ENVELOPE_SCHEMA, filter_ingest_day, kafka_to_bronze
    from crypto_assets.contracts.partitioning import day_bounds
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    kafka = KafkaResource.from_settings(settings)
    start, end = day_bounds(day)
    window = kafka.offset_window(settings.trades_topic, start, end)
    raw = step.read_kafka_window(spark, kafka, window)
    # The Kafka source's minPartitions splits big Kafka partitions into several Spark tasks.
    split = raw.sparkSession.read.format("kafka")
    for k, v in {**kafka.spark_options(), **window.spark_options(), "minPartitions": "4"}.items():
        split = split.option(k, v)
    split = split.load()
    tmp = Path(settings.lake_root) / "_profile"

    def bronze_rows(df):
        return kafka_to_bronze(filter_ingest_day(df, day), "trades")

    jobs = [
        ("Kafka scan only -> noop", lambda: raw.write.format("noop").mode("overwrite").save()),
        ("Kafka scan + from_json only -> noop", lambda: raw.select(
            F.from_json(F.col("value").cast("string"), ENVELOPE_SCHEMA).alias("e")
        ).write.format("noop").mode("overwrite").save()),
        ("Kafka scan + Bronze mapping -> noop", lambda: bronze_rows(raw).write.format("noop").mode("overwrite").save()),
        ("Kafka scan -> raw Parquet (no parse)", lambda: raw.write.mode("overwrite").parquet(str(tmp / "raw"))),
        ("Bronze write again (warm JVM)", lambda: bronze_rows(raw).sortWithinPartitions("partition", "offset")
            .write.mode("overwrite").partitionBy("ingest_date").parquet(str(tmp / "bronze"))),
        ("Bronze write, minPartitions=4", lambda: bronze_rows(split).sortWithinPartitions("partition", "offset")
            .write.mode("overwrite").partitionBy("ingest_date").parquet(str(tmp / "bronze4"))),
    ]
    out: dict[str, dict] = {}
    print(f"  {'job':<40} {'wall s':>7} {'rec/s':>9} {'Spark CPU s':>11} {'cores':>5} {'others':>6}")
    for label, job in jobs:
        with C.CpuWindow(groups) as w:
            job()
        cpu = w.ours.get("spark", 0.0)
        out[label] = {"wall_s": round(w.wall, 2), "spark_cpu_s": round(cpu, 2), "others_avg_cores": round(w.others_cores, 2)}
        print(f"  {label:<40} {w.wall:7.2f} {n / w.wall:9,.0f} {cpu:11.1f} {w.cores('spark'):5.2f} {w.others_cores:6.2f}",
              flush=True)
    C.reset_dir(tmp)
    return out


def small_backfill(settings, n: int, day: date, groups: dict[str, int]) -> dict:
    """Publishes n records on `day`, then times `crypto-pipeline backfill --layers bronze` of that day in a
    fresh process (what a user runs), and checks the Bronze partition it committed."""
    import os
    import subprocess

    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake import snapshots
    from crypto_assets.orchestration.resources.lake import LakeResource

    publish(settings, n, day, quiet=True)
    env = {**os.environ, "CRYPTO_STATE_DIR": settings.state_dir, "CRYPTO_LAKE_ROOT": settings.lake_root,
           "CRYPTO_KAFKA_PORT": str(settings.kafka_port),
           "CRYPTO_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
           "CRYPTO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    cli = Path(sys.executable).parent / "crypto-pipeline"
    cmd = [str(cli), "backfill", "--from", day.isoformat(), "--to", day.isoformat(), "--layers", "bronze"]
    with C.CpuWindow(groups) as w:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(C.REPO))
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"FAILED: {' '.join(cmd[1:])} exited {done.returncode}: " + " | ".join(tail))
    table = LakeResource.from_settings(settings).table(bronze_table("trades"))
    rows = snapshots.read(table, {"ingest_date": day}, columns=["offset"]).num_rows
    return {"records": n, "seconds": round(w.wall, 2), "rows": rows, "others_avg_cores": round(w.others_cores, 2),
            "command": " ".join(["crypto-pipeline", *cmd[1:]])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="trade records to publish (default 1,000,000)")
    ap.add_argument("--small-records", type=int, default=5_000,
                    help="records of the small CLI backfill (default 5,000; 0 skips it)")
    ap.add_argument("--day", default="2026-11-20", help="UTC day of the records (default 2026-11-20)")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="diagnostic jobs after the measurement (auto: only if the goal is missed)")
    args = ap.parse_args(argv)
    if args.records < 1:
        ap.error("--records must be >= 1")
    n = args.records
    day = date.fromisoformat(args.day)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)
    C.quiet_spark_progress()

    from crypto_assets.lake.spark import build_spark_session
    from crypto_assets.tools.broker import LocalBroker

    info = C.machine_info()
    print(f"== {NAME}: {n:,} trade records in Kafka -> one Bronze day ({day})")
    print(C.machine_line(info), flush=True)

    settings = C.bench_settings(NAME)
    C.reset_dir(C.BENCH_STATE / NAME)  # broker data and lake: every run starts empty
    broker = LocalBroker(settings)
    spark = None
    summary: dict = {"benchmark": NAME, "machine": info, "records": n, "day": day.isoformat()}
    try:
        t0 = time.perf_counter()
        st = broker.up()
        broker.ensure_topics()
        broker_pid = broker.status().pid
        print(f"broker up in {time.perf_counter() - t0:.1f} s at {settings.kafka_bootstrap}; "
              f"topics: {', '.join(f'{t}({p})' for t, p in sorted(st.topics.items()))}", flush=True)

        print(f"publishing {n:,} records with KafkaSink (acks=all) ...", flush=True)
        with C.CpuWindow({"broker": broker_pid}) as pw:
            pub = publish(settings, n, day)
        pub_rps = n / pub["seconds"]
        gen_s = generation_cost(n, day)
        ends = kafka_totals(settings)
        if sum(ends.values()) != n:  # (the small day's records are published after the measurement)
            raise SystemExit(f"FAILED: topic holds {sum(ends.values()):,} records, expected {n:,}")
        avg = pub["value_bytes"] / n
        print(f"published {n:,} records ({pub['value_bytes'] / 1024**2:,.0f} MiB of values, {avg:.0f} B avg) "
              f"in {pub['seconds']:.1f} s = {pub_rps:,.0f} records/s; per Kafka partition {ends}", flush=True)
        summary["publish"] = {
            "seconds": round(pub["seconds"], 2), "records_per_s": round(pub_rps),
            "value_bytes_avg": round(avg, 1), "generation_s": round(gen_s, 2), "partition_end_offsets": ends,
            "cpu": pw.summary(),
        }

        with C.TreeRssSampler(exclude_pids=(broker_pid,) if broker_pid else ()) as sampler:
            t0 = time.perf_counter()
            spark = build_spark_session(
                master="local[2]", shuffle_partitions=4, driver_memory="4g",
                state_dir=settings.state_dir, jvm_dir=settings.jvm_dir,
            )
            spark.range(10).count()
            session_s = time.perf_counter() - t0
            groups = {"broker": broker_pid, "spark": spark.sparkContext._gateway.proc.pid}
            print(f"Spark session (local[2]) up and warmed in {session_s:.1f} s; building Bronze ...", flush=True)
            stats, bw, phases = run_bronze(spark, settings, day, groups)
        broker_rss = C.rss_of(broker_pid) if broker_pid else 0.0
        bronze_s = bw.wall
        rps = n / bronze_s
        spark_cpu = bw.ours.get("spark", 0.0)

        problems = []
        if stats.rows != n:
            problems.append(f"rows {stats.rows:,} != {n:,}")
        if stats.malformed != 0:
            problems.append(f"malformed {stats.malformed:,} != 0 ({stats.malformed_by_reason})")
        if stats.products != sorted(PRODUCTS):
            problems.append(f"products {stats.products} != {sorted(PRODUCTS)}")

        total_rps = n / (session_s + bronze_s)  # the goal counts Spark's start
        ok = total_rps >= GOAL_RPS
        cores_note = "" if info["nproc"] == 2 else f" (measured on {info['nproc']} cores, goal is for 2)"
        mem = {**sampler.summary_mib(), **{f"rusage_{k}": v for k, v in C.rusage_max_rss_mib().items()},
               "broker_rss_mib": broker_rss}
        print()
        print(f"machine:  {C.machine_line(info)[9:]}")
        print(f"publish:  {n:,} records ({avg:.0f} B values) in {pub['seconds']:.1f} s = {pub_rps:,.0f} records/s "
              f"(KafkaSink, acks=all; Python used {pw.cores('python'):.2f} cores, broker {pw.cores('broker'):.2f}; "
              f"building the values alone takes {gen_s:.1f} s)")
        if C.contention_note(pw.others_cores):
            print(f"          {C.contention_note(pw.others_cores)}")
        print(f"bronze:   {stats.rows:,} rows, {stats.malformed} malformed, products {stats.products}")
        print(f"          {session_s + bronze_s:.1f} s with Spark's start ({session_s:.1f} s) = {total_rps:,.0f} records/s; "
              f"the build alone {bronze_s:.1f} s = {rps:,.0f} records/s")
        print(f"          {stats.files} files, "
              f"{stats.bytes_written / 1024**2:,.1f} MiB ({stats.bytes_written:,} bytes) written")
        print(f"          Spark JVM CPU {spark_cpu:.1f} s = {1e6 * spark_cpu / n:.1f} us/record, "
              f"{bw.cores('spark'):.2f} of 2 cores on average")
        for phase, (secs, cpu) in phases.items():
            print(f"          {phase:<28} {secs:7.2f} s ({100 * secs / bronze_s:4.1f} %)  "
                  f"Spark CPU {cpu:6.1f} s = {cpu / secs if secs > 0 else 0:4.2f} cores")
        if C.contention_note(bw.others_cores):
            print(f"          {C.contention_note(bw.others_cores)}")
        print(f"memory:   peak RSS Python+Spark tree {mem['tree_peak_mib']:,.0f} MiB "
              f"(Python {mem['python_peak_mib']:,.0f}, Spark JVM {mem['children_peak_mib']:,.0f}); "
              f"broker {broker_rss:,.0f} MiB; ru_maxrss self {mem['rusage_self_mib']:,.0f} MiB")
        print(f"goal: at least {GOAL_RPS:,} records/s on 2 cores incl. Spark start: {'PASS' if ok else 'MISS'}{cores_note}")
        summary.update({
            "spark_session_s": round(session_s, 2),
            "bronze": {
                "seconds": round(bronze_s, 2), "records_per_s": round(rps), "rows": stats.rows,
                "seconds_incl_spark_start": round(session_s + bronze_s, 2), "records_per_s_incl_spark_start": round(total_rps),
                "malformed": stats.malformed, "files": stats.files, "bytes_written": stats.bytes_written,
                "spark_cpu_s": round(spark_cpu, 2), "spark_avg_cores": round(bw.cores("spark"), 2),
                "phases": {k: {"wall_s": round(v[0], 2), "spark_cpu_s": round(v[1], 2)} for k, v in phases.items()},
                "cpu": bw.summary(),
            },
            "memory_mib": mem,
            "contended": bool(C.contention_note(pw.others_cores) or C.contention_note(bw.others_cores)),
            "goal": f">= {GOAL_RPS} records/s on 2 cores",
            "goal_met": ok,
            "verdict": "PASS" if ok else "MISS",
        })
        if problems:
            summary["verdict"] = "FAILED"
            summary["problems"] = problems
            print("FAILED: " + "; ".join(problems), flush=True)
        elif args.profile == "always" or (args.profile == "auto" and not ok):
            print("profile (diagnostic jobs after the measurement, same Spark session):", flush=True)
            summary["profile"] = profile(spark, settings, day, n, groups)
        if spark is not None:
            spark.stop()
            spark = None
        if args.small_records > 0 and summary.get("verdict") != "FAILED":
            small_day = date.fromordinal(day.toordinal() + 2)  # beyond the timestamp skew of the big day
            print(f"small backfill: {args.small_records:,} records on {small_day}, then the CLI ...", flush=True)
            small = small_backfill(settings, args.small_records, small_day, {"broker": broker_pid})
            small_ok = small["seconds"] < GOAL_SMALL_S and small["rows"] == args.small_records
            small.update(goal=f"< {GOAL_SMALL_S:.0f} s end to end", goal_met=small_ok)
            summary["small_backfill"] = small
            print(f"small:    `{small['command']}`: {small['rows']:,} rows in {small['seconds']:.1f} s end to end "
                  f"(goal < {GOAL_SMALL_S:.0f} s: {'PASS' if small_ok else 'MISS'})")
            if C.contention_note(small["others_avg_cores"]):
                print(f"          {C.contention_note(small['others_avg_cores'])}")
            if small["rows"] != args.small_records:
                summary["verdict"] = "FAILED"
                summary.setdefault("problems", []).append(f"small backfill rows {small['rows']} != {args.small_records}")
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
