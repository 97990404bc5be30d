"""`crypto-pipeline dashboard`: a port in use is refused in one line naming the flag and the setting, before
Streamlit starts, and so is a port that is no port; the app on an empty lake says what to run, and on a lake
without candles which asset to materialize (the app run by Streamlit's own script runner, AppTest, on a real
lake)."""

from __future__ import annotations

import socket
from datetime import date, datetime, timedelta, timezone

import pytest

from crypto_assets.contracts.tables import gold_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import CatalogConfig
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.tools.cli import main
from crypto_assets.tools.dashboard import APP
from crypto_assets_tests.support.demo_lake import _partition_rows

APP_TIMEOUT_S = 60


@pytest.fixture
def listening():
    """A port something listens on (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_in_use_is_one_line_naming_the_flag_and_the_setting(listening, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_STATE_DIR", str(tmp_path / "state"))
    assert main(["dashboard", "--port", str(listening)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"error: port {listening} on 127.0.0.1 is in use: choose another with --port N or "
                            f"CRYPTO_DASHBOARD_PORT\n")
    monkeypatch.setenv("CRYPTO_DASHBOARD_PORT", str(listening))  # the setting, without the flag: the same line
    assert main(["dashboard"]) == 2
    assert capsys.readouterr().err.startswith(f"error: port {listening} on 127.0.0.1 is in use")
    assert not (tmp_path / "state" / "logs" / "dashboard.log").exists()  # Streamlit never started


def test_a_bad_port_is_one_line(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--port", "70000"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "crypto-pipeline dashboard: error: argument --port: '70000' is not a port; expected a number from 1 to 65535")
    monkeypatch.setenv("CRYPTO_DASHBOARD_PORT", "0")
    assert main(["dashboard"]) == 2
    assert capsys.readouterr().err == (
        "error: CRYPTO_DASHBOARD_PORT='0' is not valid; input should be greater than or equal to 1\n")


def _app(lake_root, monkeypatch, view: str):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CRYPTO_LAKE_ROOT", str(lake_root))
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)
    at.query_params["view"] = view
    return at.run()


@pytest.mark.parametrize("view", ["market", "features", "health"])
def test_an_empty_lake_says_to_run_make_demo(tmp_path, monkeypatch, view):
    at = _app(tmp_path / "empty", monkeypatch, view)
    assert not at.exception
    assert [i.value for i in at.info] == [
        f"The lake at `{tmp_path / 'empty'}` holds no data yet. Run `make demo` (a 20-minute synthetic session "
        f"through every layer, offline) or `make live`; this page refreshes by itself every 15 s."]
    assert not at.get("vega_lite_chart")


def test_a_lake_without_candles_names_the_asset_to_materialize(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    config = CatalogConfig("sql", f"sqlite:///{root}/catalog.db", str(root))
    t = gold_table_def()
    start = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    rows = _partition_rows(t, 30, {"product_id": "BTC-USD", "event_date": date(2026, 11, 24),
                                   "trade_id": list(range(30)), "price": [100.0 + i for i in range(30)],
                                   "trade_time": [start + timedelta(seconds=20 * i) for i in range(30)],
                                   "rsi_14": [float(i) for i in range(30)]})
    snapshots.append(config, t, rows, Provenance(asset="gold_features"))
    at = _app(root, monkeypatch, "market")
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "`gold_candles_1m` holds no rows yet: materialize the asset `gold_candles_1m` (Dagster UI, `make ui`; "
        "with `make live` the sensors do it after Silver)."]
    # The other views work from the tables that hold rows: Gold's feature over time and its distribution.
    at = _app(root, monkeypatch, "features")
    assert not at.exception and not at.warning
    assert [s.value for s in at.subheader] == ["BTC-USD 2026-11-24: rsi_14"]
    assert len(at.get("vega_lite_chart")) == 2
