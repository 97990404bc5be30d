"""Bronze -> Silver for one busy day: 2,000,000 trades and 2,000,000 ticker messages, two products.

Builds the Bronze partition with Spark (records in the exact Coinbase format, 1% snapshot
re-sends, a few bad prices), then times `build_silver` (Arrow, no Spark) for trades and ticker:
one pass over both products, and once per product (how the Dagster asset runs), in a fresh Python
process of its own, whose peak RSS is reported.
Goal: under 60 s on 2 cores. Prints figures, peak memory, and a RESULT line.

    .venv/bin/python benchmarks/bench_silver.py [--trades 2000000] [--tickers 2000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date

from _common import bench_settings, machine_info, machine_line, print_result, reset_dir, write_result

DAY = date(2026, 11, 20)
PRODUCTS = ["BTC-USD", "ETH-USD"]


def make_bronze(spark, lake, n_trades: int, n_tickers: int) -> None:
    from pyspark.sql import functions as F

    from crypto_assets.bronze.transforms import kafka_to_bronze

    day_start = f"{DAY.isoformat()} 00:00:00"

    def kafka_frame(n: int, kind: str):
        df = spark.range(n).withColumn("i", F.col("id"))
        df = df.withColumn("pid", F.when(F.col("i") % 2 == 0, "BTC-USD").otherwise("ETH-USD"))
        df = df.withColumn("secs", F.col("i") * F.lit(86_000.0 / n))
        df = df.withColumn("t", F.to_timestamp(F.lit(day_start)) + F.make_interval(secs=F.col("secs")))
        df = df.withColumn("tstr", F.date_format("t", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"))
        base = F.when(F.col("pid") == "BTC-USD", 95000.0).otherwise(3500.0)
        df = df.withColumn("price", base * (1 + 0.01 * F.sin(F.col("i") / 5000.0)) + F.rand(7) * 2)
        if kind == "trades":
            price = F.when(F.col("i") % 2000 == 1, F.lit("-1")).otherwise(F.format_string("%.2f", "price"))
            value = F.concat(
                F.lit('{"channel":"market_trades","client_id":"","timestamp":"'), F.col("tstr"),
                F.lit('","sequence_num":'), F.col("i").cast("string"),
                F.lit(',"events":[{"type":"update","trades":[{"product_id":"'), F.col("pid"),
                F.lit('","trade_id":"'), (F.lit(1_000_000_000) + F.col("i") / 2).cast("long").cast("string"),
                F.lit('","price":"'), price, F.lit('","size":"'), F.format_string("%.8f", F.rand(3) * 0.5 + 1e-8),
                F.lit('","time":"'), F.col("tstr"), F.lit('","side":"'),
                F.when(F.rand(5) > 0.5, "BUY").otherwise("SELL"), F.lit('"}]}]}'),
            )
        else:
            value = F.concat(
                F.lit('{"channel":"ticker","client_id":"","timestamp":"'), F.col("tstr"),
                F.lit('","sequence_num":'), F.col("i").cast("string"),
                F.lit(',"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"'), F.col("pid"),
                F.lit('","price":"'), F.format_string("%.2f", "price"),
                F.lit('","volume_24_h":"3974.98800786","low_24_h":"63454","high_24_h":"99727.27","low_52_w":"59073.01",'
                      '"high_52_w":"126296","price_percent_chg_24_h":"1.21471769193719","best_bid":"'),
                F.format_string("%.2f", F.col("price") - 0.01), F.lit('","best_ask":"'),
                F.format_string("%.2f", F.col("price") + 0.01),
                F.lit('","best_bid_quantity":"0.21558849","best_ask_quantity":"0.02287045"}]}]}'),
            )
        out = df.select(
            F.col("pid").cast("binary").alias("key"), value.cast("binary").alias("value"),
            F.lit(f"crypto.{kind}.raw").alias("topic"), F.pmod(F.hash("pid"), F.lit(3)).alias("partition"),
            F.col("i").alias("offset"), (F.col("t") + F.expr("INTERVAL 50 MILLISECONDS")).alias("timestamp"),
            F.lit(0).alias("timestampType"),
            F.array(F.struct(F.lit("source").alias("key"), F.lit("bench").cast("binary").alias("value"))).alias("headers"),
        )
        if kind == "trades":
            # 1% re-sent later as snapshot trades (what Coinbase does after a reconnect): duplicates.
            resent = out.where(F.col("offset") % 100 == 3).select(
                "key", F.expr("cast(replace(cast(value as string), '\"update\"', '\"snapshot\"') as binary)").alias("value"),
                "topic", "partition", (F.col("offset") + n).alias("offset"),
                (F.col("timestamp") + F.expr("INTERVAL 30 SECONDS")).alias("timestamp"), "timestampType", "headers",
            )
            out = out.unionByName(resent)
        return out

    for kind, n in (("trades", n_trades), ("ticker", n_tickers)):
        bronze = kafka_to_bronze(kafka_frame(n, kind), kind).where(F.col("ingest_date") == F.lit(DAY))
        scratch = f"{lake.root}/_scratch/bronze/{kind}"
        bronze.sortWithinPartitions("partition", "offset").write.mode("overwrite").parquet(scratch)
        load_bronze(lake, kind, scratch)


def load_bronze(lake, kind: str, folder: str) -> None:
    """The Bronze rows Spark wrote to a scratch folder become Bronze of DAY, in one commit."""
    import pyarrow.dataset as ds

    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake import snapshots

    t = bronze_table(kind)
    rows = ds.dataset(folder).to_table().select(t.schema.names).cast(t.schema)
    snapshots.replace(lake.catalog_config, t, rows, {"ingest_date": DAY}, snapshots.Provenance(asset=f"bronze_{kind}"))


def time_silver(lake, groups: list[list[str]]) -> float:
    """Seconds for trades + ticker over the product groups; every partition must reconcile."""
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.silver.build import build_silver

    total = 0.0
    for kind in ("trades", "ticker"):
        for products in groups:
            clock = time.perf_counter()
            stats = build_silver(lake, kind, DAY, products, SilverRules())
            took = time.perf_counter() - clock
            total += took
            for p, s in stats.items():
                assert s.reconciles, f"{kind} {p} does not reconcile: {s}"
                print(f"    {kind:<6} {p}: {s.rows:>9,} rows, {s.duplicates:>7,} duplicates, "
                      f"{s.quarantined:>5,} quarantined  ({took:.1f} s for {','.join(products)})", flush=True)
    return round(total, 1)


def arrow_phase(settings) -> None:
    """Run in a process of its own (no JVM), so its peak RSS is Silver's alone."""
    import resource

    from crypto_assets.orchestration.resources.lake import LakeResource

    lake = LakeResource.from_settings(settings)
    figures = {"one_pass": time_silver(lake, [PRODUCTS]),
               "per_product": time_silver(lake, [[p] for p in PRODUCTS])}
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("ARROW " + json.dumps(figures), flush=True)


def bronze_phase(settings, n_trades: int, n_tickers: int) -> None:
    from crypto_assets.lake.spark import build_spark_session
    from crypto_assets.orchestration.resources.lake import LakeResource

    spark = build_spark_session(shuffle_partitions=4, driver_memory="6g", state_dir=settings.state_dir,
                                jvm_dir=settings.jvm_dir)
    clock = time.perf_counter()
    make_bronze(spark, LakeResource.from_settings(settings), n_trades, n_tickers)
    print(f"Bronze built: {n_trades:,} trade and {n_tickers:,} ticker records (+1% re-sent trades) "
          f"in {time.perf_counter() - clock:.1f} s", flush=True)
    spark.stop()


def phase(name: str, *extra: str) -> str:
    """Runs one phase in a fresh process (so no JVM of another phase competes), echoing its output."""
    out = subprocess.run([sys.executable, __file__, "--phase", name, *extra], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    print("".join(line + "\n" for line in out.splitlines() if not line.startswith("ARROW ")), end="", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--tickers", type=int, default=2_000_000)
    ap.add_argument("--phase", choices=["all", "bronze", "arrow"], default="all", help=argparse.SUPPRESS)
    args = ap.parse_args()
    settings = bench_settings("bench_silver")
    if args.phase == "bronze":
        bronze_phase(settings, args.trades, args.tickers)
        return
    if args.phase == "arrow":
        arrow_phase(settings)
        return

    reset_dir(settings.lake_root)
    info = machine_info()
    print(machine_line(info))
    phase("bronze", "--trades", str(args.trades), "--tickers", str(args.tickers))
    print("silver (Arrow, a fresh process, no Spark):", flush=True)
    out = phase("arrow")
    arrow = json.loads(next(line for line in out.splitlines() if line.startswith("ARROW "))[6:])

    goal = 60.0
    records = args.trades * 1.01 + args.tickers
    summary = {
        "benchmark": "bench_silver", "machine": info, "trades": args.trades, "tickers": args.tickers,
        "arrow_one_pass_seconds": arrow["one_pass"], "arrow_per_product_seconds": arrow["per_product"],
        "arrow_peak_rss_mib": arrow["peak_rss_mib"],
        "arrow_records_per_second": round(records / arrow["one_pass"]),
        "goal_seconds": goal,
        "goal_met": max(arrow["one_pass"], arrow["per_product"]) < goal,
    }
    print(f"goal: under {goal:.0f} s on 2 cores -> one pass {arrow['one_pass']} s, per product "
          f"{arrow['per_product']} s ({'PASS' if summary['goal_met'] else 'MISS'}), peak RSS {arrow['peak_rss_mib']} MiB")
    write_result("bench_silver", summary)
    print_result(summary)


if __name__ == "__main__":
    main()
