"""What one incremental run costs as its partition grows: 1,000 new trades added to a Silver and a Gold
partition that already hold 10,000 vs 1,000,000 trades (goal: within 2x of each other), and the runs' peak
memory on the big partition (goal: under 1 GiB).

For each size: a fresh lake whose Bronze gets that many trades of one product and day (records in Coinbase's
format, made into Bronze rows by the Bronze Arrow path, no Spark), Silver and then Gold built from them (the
first runs: full rebuilds), then 1,000 more trades (the latest of the day) appended to Bronze in one commit
and Silver and Gold brought up to date by one incremental run each, every run in a fresh Python process of
its own (its peak RSS is that run's). Prints both and a RESULT line.

    .venv/bin/python benchmarks/bench_incremental.py [--sizes 10000,1000000] [--new 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import namedtuple
from datetime import date, datetime, timedelta, timezone

from _common import bench_settings, machine_info, machine_line, print_result, reset_dir, write_result

DAY = date(2026, 11, 20)
PRODUCT = "BTC-USD"
Record = namedtuple("Record", "topic partition offset timestamp key value headers")


def records(first: int, n: int, day_seconds: float = 80_000.0, total: int = 1) -> list[Record]:
    """Trades `first` .. `first + n - 1` of the day, one per Kafka record, offsets = their number."""
    start = datetime.combine(DAY, datetime.min.time(), timezone.utc)
    out = []
    for i in range(first, first + n):
        t = start + timedelta(seconds=i * day_seconds / total)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        value = json.dumps({"channel": "market_trades", "client_id": "", "timestamp": stamp, "sequence_num": i,
                            "events": [{"type": "update", "trades": [{
                                "product_id": PRODUCT, "trade_id": str(1_000_000 + i), "price": f"{95000 + i % 997:.2f}",
                                "size": "0.01", "side": "BUY" if i % 2 else "SELL", "time": stamp}]}]},
                           separators=(",", ":")).encode()
        out.append(Record("crypto.trades.raw", 0, i, int(t.timestamp() * 1000) + 50, PRODUCT.encode(), value,
                          [("source", b"bench")]))
    return out


def add_bronze(lake, first: int, n: int, total: int) -> None:
    import pyarrow as pa

    from crypto_assets.bronze.arrow_source import bronze_rows
    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake import snapshots

    t = bronze_table("trades")
    parts = [bronze_rows(records(lo, min(100_000, first + n - lo), total=total), "trades", DAY)
             for lo in range(first, first + n, 100_000)]
    snapshots.append(lake.catalog_config, t, pa.concat_tables(parts).cast(t.schema),
                     snapshots.Provenance(asset="bronze_trades", run_id="bench"))


def run_phase(settings, layer: str) -> None:
    """One Silver or Gold run of the partition, in this (fresh) process. Its peak RSS is the kernel's
    high-water mark of this process's memory (VmHWM; `ru_maxrss` would count the parent's memory at the
    fork)."""
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.gold.build import build_gold
    from crypto_assets.gold.report import gold_report
    from crypto_assets.orchestration.resources.lake import LakeResource
    from crypto_assets.silver.build import build_silver

    lake = LakeResource.from_settings(settings)
    clock = time.perf_counter()
    if layer == "silver":
        s = build_silver(lake, "trades", DAY, [PRODUCT], SilverRules())[PRODUCT]
        seconds = time.perf_counter() - clock
        assert s.reconciles, s
        out = {"mode": s.mode, "rows": s.rows, "appended": s.rows_appended, "new": s.bronze_rows_new}
    else:
        g = build_gold(lake, DAY, [PRODUCT])[PRODUCT]
        seconds = time.perf_counter() - clock
        failed = [c.name for c in gold_report(g)[1] if not c.passed]
        assert not failed, failed
        out = {"mode": g.mode, "rows": g.rows, "appended": g.rows_written, "replaced": g.rows_replaced,
               "new": g.silver_rows_read}
    print("RUN " + json.dumps({"seconds": round(seconds, 3), **out, "peak_rss_mib": peak_rss_mib()}), flush=True)


def peak_rss_mib() -> int:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return round(kib / 1024)


def run(settings, layer: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", "run", "--layer", layer, "--lake", settings.lake_root],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RUN "))[4:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--phase", choices=["all", "run"], default="all", help=argparse.SUPPRESS)
    ap.add_argument("--lake", help=argparse.SUPPRESS)
    ap.add_argument("--layer", choices=["silver", "gold"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "run":
        run_phase(bench_settings("bench_incremental").replace(lake_root=args.lake), args.layer)
        return

    from crypto_assets.orchestration.resources.lake import LakeResource

    info = machine_info()
    print(machine_line(info))
    sizes = [int(x) for x in args.sizes.split(",")]
    figures: dict[str, dict[int, dict]] = {"silver": {}, "gold": {}}
    for size in sizes:
        base = bench_settings("bench_incremental")
        settings = base.replace(lake_root=f"{base.lake_root}-{size}")
        reset_dir(settings.lake_root)
        lake = LakeResource.from_settings(settings)
        clock = time.perf_counter()
        total = size + args.new
        add_bronze(lake, 0, size, total)
        for layer in ("silver", "gold"):
            first = run(settings, layer)
            assert first["mode"] == "full", first
            print(f"  partition of {size:,} trades: the first (full) {layer} run {first['seconds']:.2f} s, "
                  f"peak RSS {first['peak_rss_mib']} MiB", flush=True)
        print(f"  (Bronze and both first runs: {time.perf_counter() - clock:.1f} s)", flush=True)
        add_bronze(lake, size, args.new, total)
        for layer in ("silver", "gold"):
            inc = run(settings, layer)
            assert inc["mode"] == "incremental", inc
            if layer == "silver":
                assert (inc["appended"], inc["rows"]) == (args.new, total), inc
            figures[layer][size] = inc
            print(f"  + {args.new:,} trades: one incremental {layer} run {inc['seconds']:.3f} s "
                  f"({inc['appended']:,} rows written, {inc.get('replaced', 0):,} replaced), "
                  f"peak RSS {inc['peak_rss_mib']} MiB", flush=True)
    summary = {"benchmark": "bench_incremental", "machine": info, "new_trades": args.new, "goal_ratio": 2.0,
               "goal_rss_mib": 1024}
    met = True
    for layer, by_size in figures.items():
        small, big = by_size[min(sizes)], by_size[max(sizes)]
        ratio = big["seconds"] / small["seconds"]
        ok = ratio <= 2.0 and big["peak_rss_mib"] < 1024
        met &= ok
        summary[f"{layer}_seconds"] = {str(k): v["seconds"] for k, v in by_size.items()}
        summary[f"{layer}_peak_rss_mib"] = {str(k): v["peak_rss_mib"] for k, v in by_size.items()}
        summary[f"{layer}_ratio"] = round(ratio, 2)
        print(f"{layer}: {args.new:,} trades into {min(sizes):,} vs {max(sizes):,}: {small['seconds']:.3f} s vs "
              f"{big['seconds']:.3f} s = {ratio:.2f}x (goal within 2x: {'PASS' if ratio <= 2.0 else 'MISS'}); peak "
              f"RSS {big['peak_rss_mib']} MiB (goal under 1024: {'PASS' if big['peak_rss_mib'] < 1024 else 'MISS'})")
    summary["goal_met"] = met
    write_result("bench_incremental", summary)
    print_result(summary)


if __name__ == "__main__":
    main()
