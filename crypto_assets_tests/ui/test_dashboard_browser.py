"""The dashboard (`crypto-pipeline dashboard`), seen by a real browser, on a lake like the demo's.

The lake holds the demo's session (2026-11-24 23:50 UTC + 20 minutes, BTC-USD and ETH-USD) written by
`support/demo_lake.py`: Silver from the Gold tests' seeded market, then the real Gold and candle builds.
The test starts the command as a subprocess on a free port and drives headless Chromium (Debian's package,
through Playwright, as the Dagster UI test does) through the three views: the candle chart holds one candle
per minute the lake has, the feature view its curve and histogram, the health view every table, product and
day; then a partition committed while the page is open appears without a reload (the page refreshes by
itself), and the page asks nothing of any other host. Screenshots go to `test-artifacts/ui/` (or
$TEST_ARTIFACTS_DIR/ui); the test prints where.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from datetime import date
from urllib.parse import urlparse

import pytest

from crypto_assets.contracts.tables import TABLES, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.sql import LakeSql
from crypto_assets_tests.conftest import REPO, free_port
from crypto_assets_tests.support.demo_lake import _partition_rows, write_demo_lake
from crypto_assets_tests.ui.test_browser_asset_graph import (  # noqa: F401  (chromium: a fixture)
    CHROMIUM,
    CHROMIUM_ARGS,
    _screenshot_quietly,
    _stop,
    artifacts_dir,
    chromium,
)

START_TIMEOUT_S = 90
UI_TIMEOUT_MS = 60_000
REFRESH_SECONDS = 2
CHART = '[data-testid="stVegaLiteChart"]'


def _wait_for_health(proc: subprocess.Popen, port: int, log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the dashboard did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}", pytrace=False)


@pytest.fixture
def demo_lake(tmp_path):
    lake = write_demo_lake(str(tmp_path / "lake"))
    return lake, CatalogConfig("sql", f"sqlite:///{lake.root}/catalog.db", lake.root)


@pytest.fixture
def dashboard(chromium, demo_lake, tmp_path):  # noqa: F811  (the imported fixture)
    """The base URL of `crypto-pipeline dashboard` serving the demo-like lake, and the command's output file."""
    lake, _ = demo_lake
    port = free_port()
    env = {**os.environ, "CRYPTO_LAKE_ROOT": lake.root, "CRYPTO_STATE_DIR": str(tmp_path / "state"),
           "CRYPTO_DASHBOARD_REFRESH_SECONDS": str(REFRESH_SECONDS)}
    out = tmp_path / "dashboard.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "crypto_assets.tools.cli", "dashboard", "--port", str(port)],
                                cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # its own process group: Streamlit ends with it
        try:
            _wait_for_health(proc, port, tmp_path / "state" / "logs" / "dashboard.log")
            yield f"http://127.0.0.1:{port}", out
        finally:
            _stop(proc)


def _pick(page, label: str, option: str) -> None:
    """Chooses `option` in the Streamlit selectbox labelled `label` (typed: long lists render only what is seen)."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()


def _options(page, label: str) -> list[str]:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return names


def test_dashboard_shows_candles_features_and_health_of_the_lake(dashboard, demo_lake, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, command_out = dashboard
    lake, config = demo_lake
    sql = LakeSql(config)
    candles = {(r["product_id"], r["event_date"]): r["n"] for r in sql.arrow(
        "SELECT product_id, event_date, count(*) AS n FROM gold_candles_1m GROUP BY product_id, event_date").to_pylist()}
    assert sorted({p for p, _ in candles}) == lake.products and sorted({d for _, d in candles}) == lake.days
    out = artifacts_dir()
    print(f"dashboard screenshots: {out}")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        requested: list[str] = []  # every URL the page asks for: nothing outside the dashboard (works offline)
        page.on("request", lambda request: requested.append(request.url))
        try:
            # Market: the newest day of the first product, then every product and day of the lake.
            page.goto(f"{url}/?view=market")
            newest = lake.days[-1].isoformat()
            for product in lake.products:
                for day in sorted(lake.days, reverse=True):
                    if (product, day) != (lake.products[0], lake.days[-1]):
                        _pick(page, "Product", product)
                        _pick(page, "Day (UTC)", day.isoformat())
                    expect(page.get_by_role("heading", name=f"{product} {day.isoformat()}: one-minute candles")).to_be_visible()
                    chart = page.locator(f'{CHART}[aria-label="candles of {product} on {day.isoformat()}"]')
                    # One wick (and one body, one volume bar) per minute with trades in the lake.
                    expect(chart.locator("g.mark-rule.role-mark line")).to_have_count(candles[(product, day)])
                    expect(chart.locator("g.mark-rect.role-mark path")).to_have_count(2 * candles[(product, day)])
            assert _options(page, "Product") == lake.products
            assert _options(page, "Day (UTC)") == [d.isoformat() for d in sorted(lake.days, reverse=True)]
            _pick(page, "Product", lake.products[0])
            _pick(page, "Day (UTC)", newest)
            expect(page.locator(f'{CHART}[aria-label="candles of {lake.products[0]} on {newest}"]')).to_be_visible()
            page.screenshot(path=str(out / "dashboard_market.png"), full_page=True)

            # Features: a feature over time beside the price, and its distribution; another feature on request.
            page.get_by_test_id("stSidebar").get_by_text("Features", exact=True).click()
            expect(page.get_by_role("heading", name=f"{lake.products[0]} {newest}: rsi_14")).to_be_visible()
            over_time = page.locator(f'{CHART}[aria-label="rsi_14 over time"]')
            expect(over_time.locator("g.mark-line.role-mark path")).to_have_count(2)  # price and the feature
            expect(over_time.get_by_text("rsi_14 (mean per minute)")).to_be_visible()
            histogram = page.locator(f'{CHART}[aria-label="distribution of rsi_14"]')
            expect(histogram.locator("g.mark-rect.role-mark path").first).to_be_visible()
            _pick(page, "Feature", "spread_bps")
            expect(page.locator(f'{CHART}[aria-label="distribution of spread_bps"]')).to_be_visible()
            page.screenshot(path=str(out / "dashboard_features.png"), full_page=True)

            # Health: every table, product and day; quarantine reasons; trade id gaps; the Gold commit lag.
            page.get_by_test_id("stSidebar").get_by_text("Pipeline health", exact=True).click()
            rows_chart = page.locator(f'{CHART}[aria-label="rows per table and day"]')
            for t in TABLES.values():
                expect(rows_chart.get_by_text(t.flat_name, exact=True)).to_be_visible()
            tables = page.locator('[data-testid="stTable"]')
            for product in lake.products:
                for day in lake.days:
                    expect(tables.first.locator("tr", has_text=day.isoformat()).filter(has_text=product)).to_have_count(1)
                    expect(tables.nth(1).locator("tr", has_text=product).filter(has_text=day.isoformat())).to_have_count(1)
            quarantine = page.locator(f'{CHART}[aria-label="quarantine by reason"]')
            for reason in ("trades: non_positive_price", "trades: bad_size", "ticker: bad_quote"):
                expect(quarantine.get_by_text(reason, exact=True)).to_be_visible()
            expect(page.locator(f'{CHART}[aria-label="trade to Gold lag"]')).to_be_visible()
            page.screenshot(path=str(out / "dashboard_health.png"), full_page=True)

            # A partition committed while the page is open shows up without a reload.
            t = silver_table_def("trades")
            snapshots.append(config, t, _partition_rows(t, 3, {"product_id": "SOL-USD", "event_date": date(2026, 11, 25),
                                                              "trade_id": [1, 2, 3]}), Provenance(asset="silver_trades"))
            expect(tables.nth(1).locator("tr", has_text="SOL-USD")).to_have_count(1)
            expect(tables.first.locator("tr", has_text="SOL-USD")).to_have_count(1)
        except BaseException:
            _screenshot_quietly(page, out / "dashboard_failure.png")
            raise
        finally:
            browser.close()
    outside = [u for u in requested if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).netloc != urlparse(url).netloc]
    assert requested and outside == []
    # The command's own output: one line with the address (Streamlit's goes to its log).
    lines = command_out.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dashboard: {url} (lake {lake.root}; Ctrl-C stops it"), lines
