"""Time to first chart of `crypto-pipeline dashboard`: from opening the page in headless Chromium (Playwright)
until the candle chart shows every candle of the product-day, on a demo-like lake and on a 2M-trade day.

Lakes (under .state/bench/bench_dashboard/):
- demo: the demo's session as the dashboard tests write it (crypto_assets_tests/support/demo_lake.py: 2 x
  1,500 trades of Silver, then the real Gold and candle builds);
- 2M-trade day: 2,000,000 BTC-USD trades and 86,400 tickers in Silver (one commit), the real candle builds
  (1m from Silver, 1h from 1m), and Gold written directly with the table's schema (the trade columns and a
  few features filled, the others null), since the Gold build of 2M trades needs ~10 GiB and many minutes.

Each lake: the dashboard is started; the first page load (Streamlit just started, nothing cached: the
queries run) is timed, then the median of 5 more loads, each in a new browser context (the cached query
results of the same snapshots are reused, the page and its charts are rendered again). The same for the
features view (the chosen feature averaged per minute and binned over the day's Gold rows, in DuckDB).

    .venv/bin/python benchmarks/bench_dashboard.py [--trades 2000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from _common import REPO, bench_settings, free_port, machine_info, machine_line, print_result, reset_dir, write_result

DAY = date(2026, 11, 20)
CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPEATS = 5
CHART = '[data-testid="stVegaLiteChart"]'


def big_day(root: str, n: int) -> tuple[str, date, int]:
    """Silver (n trades, a ticker a second), candles by the real builds, Gold written directly."""
    from crypto_assets.contracts.names import CANDLE_INTERVALS
    from crypto_assets.contracts.tables import gold_table_def
    from crypto_assets.gold.candles_build import build_candles
    from crypto_assets.lake import snapshots
    from crypto_assets.lake.store import Lake
    from crypto_assets_tests.gold.silver_writer import write_silver

    rng = np.random.default_rng(11)
    start = pd.Timestamp(DAY)
    times = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400_000_000, n)), unit="us")
    price = np.round(95_000 * np.exp(np.cumsum(rng.normal(0, 2e-5, n))), 2)
    trades = pd.DataFrame({"product_id": "BTC-USD", "trade_id": np.arange(n, dtype=np.int64) + 10_000_000,
                           "trade_time": times, "price": price, "size": np.round(rng.exponential(0.02, n), 8) + 1e-8,
                           "side": np.where(rng.random(n) < 0.5, "BUY", "SELL")})
    seconds = start + pd.to_timedelta(np.arange(86_400), unit="s")
    mid = np.interp(seconds.asi8, times.asi8, price)
    half = np.round(rng.uniform(0.5, 6.0, len(seconds)), 2)
    tickers = pd.DataFrame({"product_id": "BTC-USD", "event_time": seconds, "best_bid": mid - half,
                            "best_ask": mid + half, "best_bid_quantity": 0.5, "best_ask_quantity": 0.5,
                            "ticker_seq": np.arange(len(seconds))})
    write_silver(None, root, trades, tickers)
    lake = Lake(root)
    for interval in CANDLE_INTERVALS:
        build_candles(lake, interval, DAY, ["BTC-USD"])

    t = gold_table_def()
    filled = {"product_id": pa.array(["BTC-USD"] * n), "event_date": pa.array([DAY] * n, pa.date32()),
              "trade_id": pa.array(trades["trade_id"]), "price": pa.array(price), "size": pa.array(trades["size"]),
              "trade_time": pa.array(times.tz_localize("UTC")), "side": pa.array(trades["side"]),
              "rsi_14": pa.array(rng.uniform(0, 100, n)), "spread_bps": pa.array(rng.uniform(0.1, 2.0, n)),
              "is_training_ready": pa.array(np.ones(n, dtype=bool))}
    cols = [filled[f.name].cast(f.type) if f.name in filled else pa.nulls(n, f.type) for f in t.schema]
    snapshots.replace(lake.catalog_config, t, pa.Table.from_arrays(cols, schema=t.schema),
                      {"product_id": "BTC-USD", "event_date": DAY}, snapshots.Provenance(asset="bench"))
    return "BTC-USD", DAY, n


def candle_count(root: str, product: str, day: date) -> int:
    from crypto_assets.lake.catalog import CatalogConfig
    from crypto_assets.lake.sql import LakeSql

    sql = LakeSql(CatalogConfig("sql", f"sqlite:///{root}/catalog.db", root))
    return sql.arrow(f"SELECT count(*) AS n FROM gold_candles_1m WHERE product_id = '{product}' "
                     f"AND event_date = DATE '{day.isoformat()}'").column("n")[0].as_py()


class Dashboard:
    """`crypto-pipeline dashboard` on a free port, on the lake at `root`."""

    def __init__(self, root: str, state: str):
        self.port = free_port()
        env = {**os.environ, "CRYPTO_LAKE_ROOT": root, "CRYPTO_STATE_DIR": state}
        self.proc = subprocess.Popen([sys.executable, "-m", "crypto_assets.tools.cli", "dashboard", "--port",
                                      str(self.port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the dashboard did not start")

    def stop(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def time_to_chart(browser, url: str, locator: str, count: int | None) -> float:
    """Seconds from navigation until `locator` (the chart's marks) is drawn (`count` of them, if given)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    clock = time.perf_counter()
    page.goto(url)
    marks = page.locator(locator)
    if count is None:
        marks.first.wait_for(state="visible", timeout=300_000)
    else:
        page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[locator, count],
                               timeout=300_000)
    seconds = time.perf_counter() - clock
    context.close()
    return seconds


def measure(browser, root: str, state: str, product: str, day: date) -> dict:
    n = candle_count(root, product, day)
    candles = f'{CHART}[aria-label="candles of {product} on {day.isoformat()}"] g.mark-rule.role-mark line'
    feature = f'{CHART}[aria-label="distribution of rsi_14"] g.mark-rect.role-mark path'
    dash = Dashboard(root, state)
    try:
        base = f"http://127.0.0.1:{dash.port}"
        out = {"candles": n}
        for view, locator, count in (("market", candles, n), ("features", feature, None)):
            first = time_to_chart(browser, f"{base}/?view={view}", locator, count)
            warm = statistics.median(time_to_chart(browser, f"{base}/?view={view}", locator, count)
                                     for _ in range(REPEATS))
            out[view] = {"first_s": round(first, 2), "warm_median_s": round(warm, 2)}
    finally:
        dash.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=2_000_000)
    args = ap.parse_args()
    settings = bench_settings("bench_dashboard")
    root = settings.lake_root
    info = machine_info()
    print(machine_line(info))

    from playwright.sync_api import sync_playwright

    from crypto_assets_tests.support.demo_lake import write_demo_lake

    results = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            reset_dir(root)
            demo = write_demo_lake(root)
            results["demo"] = measure(browser, root, settings.state_dir, demo.products[0], demo.days[-1])
            results["demo"]["trades"] = demo.trades
            print(f"demo lake ({demo.trades:,} trades): {results['demo']}", flush=True)

            reset_dir(root)
            clock = time.perf_counter()
            product, day, n = big_day(root, args.trades)
            print(f"{n:,}-trade day written in {time.perf_counter() - clock:.0f} s", flush=True)
            results["big_day"] = measure(browser, root, settings.state_dir, product, day)
            results["big_day"]["trades"] = n
            print(f"{n:,}-trade day: {results['big_day']}", flush=True)
        finally:
            browser.close()
    for name, r in results.items():
        print(f"{name}: {r['trades']:,} trades, {r['candles']} candles on the day shown; time to first candle chart "
              f"{r['market']['first_s']:.2f} s (server just started), {r['market']['warm_median_s']:.2f} s (median of "
              f"{REPEATS} reloads); feature view {r['features']['first_s']:.2f} s / {r['features']['warm_median_s']:.2f} s")
    summary = {"benchmark": "bench_dashboard", "machine": info, "generated_at": datetime.now(timezone.utc).isoformat(),
               **results}
    write_result("bench_dashboard", summary)
    print_result(summary)


if __name__ == "__main__":
    sys.exit(main())
