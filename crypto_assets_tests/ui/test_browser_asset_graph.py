"""The whole asset graph in the Dagster UI, seen by a real browser.

Bronze, Silver and Gold are materialized for one small (day, product) partition into a Dagster
instance of the test's own (temporary DAGSTER_HOME); then the test starts `dagster dev` on that
instance, with the same `CRYPTO_*` settings so the code location builds the same definitions,
and headless Chromium (Debian's package, driven by Playwright; no browser is downloaded) checks
the lineage graph and the check results. A screenshot of each page (and `dagster dev`'s log) is
kept as a test artifact in `test-artifacts/ui/` (git-ignored), or in $TEST_ARTIFACTS_DIR/ui.
Chromium is /usr/bin/chromium (`make browser` installs it), or $CHROMIUM_PATH; when it is
missing the test fails and says how to install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.settings import Settings, environment
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets_tests.conftest import REPO, free_port
from crypto_assets_tests.support.records import send_records, ticker_frame, trades_frame, ts

CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
INSTALL_HINT = "install it with `make browser` (apt-get install -y --no-install-recommends chromium)"
# What this machine's closed network and a root user need: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
DAY, PRODUCT = "2026-04-01", "BTC-USD"
START_TIMEOUT_S = 120
UI_TIMEOUT_MS = 60_000
ASSETS = ["crypto_trades_raw", "crypto_ticker_raw", "bronze_trades", "bronze_ticker",
          "silver_trades", "silver_ticker", "gold_features", "gold_candles_1m", "gold_candles_1h"]
SILVER_TRADES_CHECKS = ["keys_not_null", "reconciliation", "unique_trade_id", "price_size_positive", "trade_id_gaps"]


def artifacts_dir() -> Path:
    root = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / "test-artifacts")
    out = root / "ui"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")  # set up before the session's broker and Spark: fails in a second
def chromium():
    """Fails (never skips) with one line when the browser or Playwright is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: the UI test needs Debian's Chromium; {INSTALL_HINT}", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'", pytrace=False)
    return CHROMIUM


def _write_instance_config(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(textwrap.dedent(f"""\
        storage:
          sqlite:
            base_dir: {home / "storage"}
        local_artifact_storage:
          module: dagster._core.storage.root
          class: LocalArtifactStorage
          config:
            base_dir: {home / "artifacts"}
        compute_logs:
          module: dagster._core.storage.local_compute_log_manager
          class: LocalComputeLogManager
          config:
            base_dir: {home / "compute_logs"}
        telemetry:
          enabled: false
        """))


def _materialize_one_partition(settings: Settings, instance: DagsterInstance) -> None:
    """Bronze for DAY, then Silver and Gold for (DAY, PRODUCT), every check passing, recorded in `instance`."""
    # 600 trades over 10 minutes (Gold needs 500 trades and 5 minutes of lookback before it writes a row)
    # in frames of 10, and a few tickers.
    records = []
    for frame in range(60):
        ids = list(range(frame * 10 + 1, frame * 10 + 11))
        when = f"{DAY}T10:{frame // 6:02d}:{frame % 6 * 10:02d}Z"
        frame_json = trades_frame(PRODUCT, ids, when, seq=frame, price=f"{64000 + frame * 3 % 7}.5")
        records.append((settings.trades_topic, PRODUCT, frame_json, ts(when)))
    for minute in range(0, 10, 3):
        when = f"{DAY}T10:{minute:02d}:00Z"
        records.append((settings.ticker_topic, PRODUCT, ticker_frame(PRODUCT, when, seq=minute), ts(when)))
    send_records(settings.kafka_bootstrap, records)
    resources = build_resources(settings)
    key = MultiPartitionKey({"event_date": DAY, "product_id": PRODUCT})
    assert materialize(bronze_assets(settings), partition_key=DAY, resources=resources, instance=instance).success
    for assets in (silver_assets(settings), [build_gold_asset(settings)]):
        result = materialize(assets, partition_key=key, resources=resources, instance=instance)
        failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
        assert result.success and not failed, failed
        rows = [m.materialization.metadata["rows"].value for m in result.get_asset_materialization_events()]
        assert all(rows), rows


def _wait_for_server(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}", pytrace=False)


def _stop(proc: subprocess.Popen) -> None:
    """Ends dagster dev and every process it started (webserver, daemon, code server): its whole group."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children may still be finishing: wait for the group to empty.
        end = time.monotonic() + grace
        while time.monotonic() < end:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.fixture
def dagster_ui(chromium, fresh_settings, spark, tmp_path):
    """The base URL of a `dagster dev` serving an instance that holds one materialized partition."""
    home = tmp_path / "dagster_home"
    _write_instance_config(home)
    port = free_port()
    env = {**os.environ, **environment(fresh_settings), "DAGSTER_HOME": str(home)}
    log = tmp_path / "dagster_dev.log"
    # The instance's databases exist before `dagster dev` opens them; it then starts while Spark
    # materializes (the UI reads the instance on every query, so it sees the runs as they land).
    with DagsterInstance.from_config(str(home)) as instance, open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended as a whole in teardown
        )
        try:
            _materialize_one_partition(fresh_settings, instance)
            _wait_for_server(proc, port, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)
            shutil.copyfile(log, artifacts_dir() / "dagster_dev.log")


def _expected_checks(settings: Settings) -> dict[str, list[str]]:
    """Check names per asset, from the definitions themselves, so the test follows new checks."""
    out: dict[str, list[str]] = {}
    for assets_def in [*silver_assets(settings), build_gold_asset(settings)]:
        for spec in assets_def.check_specs:
            out.setdefault(spec.asset_key.to_user_string(), []).append(spec.name)
    return out


def _screenshot_quietly(page, path: Path) -> None:
    try:
        page.screenshot(path=str(path))
    except Exception as exc:  # the test's own failure is the one to report
        print(f"no failure screenshot: {exc}")


def test_asset_graph_shows_every_layer_and_its_passed_checks(dagster_ui, fresh_settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    checks = _expected_checks(fresh_settings)
    assert sorted(checks) == ["gold_features", "silver_ticker", "silver_trades"]
    assert set(SILVER_TRADES_CHECKS) <= set(checks["silver_trades"]), checks
    out = artifacts_dir()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        # A new, empty profile; a wide window, so that the whole graph fits at a zoom where the
        # nodes show their status rows.
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 2560, "height": 1440},
        )
        try:
            # Dagster asks local users once to join its community; answer as a returning user would.
            context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
            page = context.new_page()
            try:
                # The global lineage: one graph of every group (kafka, bronze, silver, gold, ml), collapsed at first.
                page.goto(f"{dagster_ui}/asset-groups")
                graph = page.locator("foreignObject")
                for group in ("kafka", "bronze", "silver", "gold", "ml"):
                    expect(graph.get_by_text(group, exact=True).first).to_be_visible()
                page.keyboard.press("Alt+e")  # the graph's "Expand all groups"
                for name in ASSETS:
                    expect(graph.get_by_text(name, exact=True)).to_be_visible()
                # Each node's "Asset checks" row links to its checks and sums up their latest results.
                for asset_key, names in checks.items():
                    summary = page.locator(f'a[href="/assets/{asset_key}?view=checks"]')
                    expect(summary).to_have_text(f"{len(names)} / {len(names)} Passed")
                page.screenshot(path=str(out / "asset_graph.png"))

                # Each checked asset's Checks tab: every check listed, its latest evaluation succeeded.
                for asset_key, names in checks.items():
                    page.goto(f"{dagster_ui}/assets/{asset_key}?view=checks")
                    expect(page.get_by_text(f"Checks ({len(names)})", exact=True)).to_be_visible()
                    for name in names:
                        row = page.locator("span", has=page.locator(f'[title="{name}"]'))
                        expect(row).to_contain_text("Succeeded")
                    expect(page.get_by_text("Evaluation result", exact=True)).to_be_visible()
                    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
                    page.screenshot(path=str(out / f"checks_{asset_key}.png"))
            except BaseException:
                _screenshot_quietly(page, out / "failure.png")
                raise
        finally:
            context.close()
