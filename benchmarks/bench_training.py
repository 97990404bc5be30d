"""Gold baseline benchmark: training and evaluation time and peak memory on a week of generated Gold.

Generated market (the test suite's random walk: Poisson trade times, tick-rounded prices, persistent
sides, irregular tickers) for `--days` days of `--products` products, `--trades` trades a day in all
(split evenly between the products), written to Silver, Gold built for each day with `build_gold`
(time reported, not the subject). Then, in a fresh process (so its peak memory is the training's
alone), `train_baseline` for the last day: the LightGBM classifier (target_direction_50), regressor
(target_return_10) and shuffled-target canary trained on the days before it, evaluated on it, models
saved to the lake. Peak memory is VmHWM of /proc/self/status of that process.

    .venv/bin/python benchmarks/bench_training.py [--days 7] [--products 2] [--trades 2000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date, timedelta

from _common import bench_settings, machine_info, machine_line, print_result, reset_dir, write_result

FIRST = date(2026, 11, 1)
PRODUCTS = ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]


def vm_hwm_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(lake_root: str, days: int, products: list[str], trades_per_day: int) -> dict:
    from crypto_assets.gold.build import build_gold
    from crypto_assets.lake.store import Lake
    from crypto_assets_tests.gold.silver_writer import write_silver
    from crypto_assets_tests.ml.gold_days import market

    clock = time.perf_counter()
    trades, tickers = market(FIRST, days, trades_per_day // len(products), tuple(products), seed=17)
    generated = time.perf_counter() - clock
    write_silver(None, lake_root, trades, tickers)
    silver = time.perf_counter() - clock - generated
    n_trades, n_tickers = len(trades), len(tickers)
    del trades, tickers
    lake = Lake(lake_root)
    gold_rows, per_day = 0, []
    for i in range(days):
        start = time.perf_counter()
        stats = build_gold(lake, FIRST + timedelta(days=i), products, leakage_samples=0)
        gold_rows += sum(s.training_ready for s in stats.values())
        per_day.append(round(time.perf_counter() - start, 1))
    return {"trades": n_trades, "tickers": n_tickers, "generate_seconds": round(generated, 1),
            "silver_write_seconds": round(silver, 1), "gold_build_seconds_per_day": per_day,
            "gold_training_ready_rows": gold_rows}


def train(lake_root: str, days: int) -> dict:
    """Runs in its own process: the training's time and peak memory only."""
    from crypto_assets.lake.store import Lake
    from crypto_assets.ml.baseline import BaselineConfig, train_baseline

    start = time.perf_counter()
    result = train_baseline(Lake(lake_root).catalog_config, FIRST + timedelta(days=days - 1),
                            BaselineConfig(train_days=days - 1), run_id="bench")
    return {"train_and_evaluate_seconds": round(time.perf_counter() - start, 1), "phases_seconds": result.seconds,
            "peak_memory_mib": round(vm_hwm_mib()), "rows": {k: v for k, v in result.rows.items() if k != "per_day"},
            "auc": result.classifier["auc"], "log_loss": result.classifier["log_loss"],
            "ic_spearman": result.regressor["ic_spearman"], "shuffled_target_auc": result.canary_auc,
            "model_uri": result.model_uri}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--products", type=int, default=2)
    parser.add_argument("--trades", type=int, default=2_000_000, help="trades a day, all products together")
    parser.add_argument("--reuse", action="store_true", help="train on the Gold an earlier run of this benchmark built "
                        "(same --days, --products, --trades); the build figures are then not measured")
    parser.add_argument("--train-only", metavar="LAKE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_only:
        print(json.dumps(train(args.train_only, args.days)))
        return 0

    settings = bench_settings("training")
    info = machine_info()
    print(machine_line(info), flush=True)
    products = PRODUCTS[: args.products]
    if args.reuse:
        built = {"gold": "reused from an earlier run"}
    else:
        reset_dir(settings.lake_root)
        print(f"building {args.days} days x {len(products)} products of Gold, {args.trades:,} trades a day ...", flush=True)
        built = build(settings.lake_root, args.days, products, args.trades)
        print(f"  {built}", flush=True)
    print("training and evaluating the baseline in a fresh process ...", flush=True)
    child = subprocess.run([sys.executable, __file__, "--train-only", settings.lake_root, "--days", str(args.days)],
                           capture_output=True, text=True, check=False)
    if child.returncode != 0:
        print(child.stderr[-4000:], file=sys.stderr)
        return 1
    trained = json.loads(child.stdout.strip().splitlines()[-1])
    summary = {"benchmark": "bench_training", "machine": info, "days": args.days, "products": products,
               "trades_per_day": args.trades, "feature_dtype": "float32", "lightgbm_rounds": 200, **built, **trained}
    write_result("bench_training", summary)
    print_result(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
