"""Benchmark: local Kafka broker start until ready (`LocalBroker.up()`), cold then warm.

    .venv/bin/python benchmarks/bench_broker_start.py [--runs N]

One cold start on a fresh state folder (includes the KRaft storage format and topic creation),
then N warm starts on the same folder with `down()` between them. Each start is timed with
time.perf_counter around `LocalBroker.up()`, which returns only when the broker answers and the
topics exist. Goal: median warm start under 15 s on 2 cores.

The broker runs on free ports with its own state under .state/bench/bench_broker_start/, so a
developer's broker is left alone; it is stopped at the end whatever happens.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import _common as C

NAME = "bench_broker_start"
GOAL_S = 15.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm starts after the cold one (default 5)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)

    from crypto_assets.tools.broker import LocalBroker

    info = C.machine_info()
    print(f"== {NAME}: Kafka broker start until ready (cold + {args.runs} warm)")
    print(C.machine_line(info), flush=True)

    settings = C.bench_settings(NAME)
    C.reset_dir(C.BENCH_STATE / NAME)
    broker = LocalBroker(settings)
    print(f"state: {settings.state_dir}  ports: {settings.kafka_port}/{settings.kafka_controller_port}")

    cold_s: float | None = None
    cold_others = 0.0
    warm: list[float] = []
    warm_others: list[float] = []
    stops: list[float] = []
    broker_rss: list[float] = []
    try:
        with C.CpuWindow() as cw:
            t0 = time.perf_counter()
            st = broker.up()
            cold_s = time.perf_counter() - t0
        cold_others = cw.others_cores
        print(f"cold start (format + start + topics): {cold_s:6.2f} s   topics: {sorted(st.topics)}"
              f"   [other processes: {cw.others_cores:.2f} cores]", flush=True)
        broker_rss.append(C.rss_of(st.pid))
        for i in range(1, args.runs + 1):
            t0 = time.perf_counter()
            broker.down()
            stops.append(time.perf_counter() - t0)
            with C.CpuWindow() as cw:
                t0 = time.perf_counter()
                st = broker.up()
                dt = time.perf_counter() - t0
            warm.append(dt)
            warm_others.append(cw.others_cores)
            broker_rss.append(C.rss_of(st.pid))
            if not st.running:
                raise RuntimeError(f"broker not running after warm start {i}")
            print(f"warm start {i}/{args.runs}: {dt:6.2f} s   (previous down(): {stops[-1]:.2f} s)"
                  f"   [other processes: {cw.others_cores:.2f} cores]", flush=True)
    finally:
        t0 = time.perf_counter()
        stopped = broker.down()
        if stopped:
            stops.append(time.perf_counter() - t0)

    median = statistics.median(warm)
    ok = median < GOAL_S
    cores_note = "" if info["nproc"] == 2 else f" (measured on {info['nproc']} cores, goal is for 2)"
    print()
    print(f"cold start:         {cold_s:.2f} s")
    print(f"warm starts:        {', '.join(f'{w:.2f}' for w in warm)} s")
    print(f"warm median:        {median:.2f} s  (min {min(warm):.2f}, max {max(warm):.2f})")
    print(f"down() median:      {statistics.median(stops):.2f} s")
    print(f"broker RSS after up: {max(broker_rss):.0f} MiB max (heap -Xmx{settings.kafka_heap})")
    note = C.contention_note(statistics.mean([cold_others, *warm_others]))
    if note:
        print(note)
    print(f"goal: median warm start under {GOAL_S:.0f} s on 2 cores: {'PASS' if ok else 'MISS'}{cores_note}")

    summary = {
        "benchmark": NAME,
        "machine": info,
        "cold_s": round(cold_s, 3),
        "warm_s": [round(w, 3) for w in warm],
        "warm_median_s": round(median, 3),
        "down_median_s": round(statistics.median(stops), 3),
        "broker_rss_max_mib": max(broker_rss),
        "others_avg_cores": {"cold": round(cold_others, 2), "warm": [round(o, 2) for o in warm_others]},
        "contended": bool(note),
        "goal": f"median warm start < {GOAL_S:.0f} s on 2 cores",
        "goal_met": ok,
        "verdict": "PASS" if ok else "MISS",
    }
    path = C.write_result(NAME, summary)
    print(f"written: {path.relative_to(C.REPO)}")
    C.print_result(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
