"""`make demo` end to end (on the test session's broker, with a lake and Dagster instance of its own)."""

from __future__ import annotations

import re

from crypto_assets.demo import run_demo


def test_demo_runs_the_pipeline_through_its_sensors_and_every_check_passes(fresh_settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert run_demo(fresh_settings) == 0
    out = capsys.readouterr().out
    assert "the `bronze_to_silver` sensor requested 4 runs" in out  # 2 event days x 2 products, Gold in each
    # Gold of the first day again, for each product: its last trades' targets read the second day.
    assert "the `silver_to_gold` sensor requested 2 runs" in out
    assert re.search(r"Asset checks: 76 passed, 0 failed", out), out[-2000:]
    for asset in ("bronze_trades", "bronze_ticker", "silver_trades", "silver_ticker", "gold_features"):
        assert asset in out
    assert "A few Gold rows" in out

    # A second run publishes nothing again, and lands the same result.
    assert run_demo(fresh_settings) == 0
    again = capsys.readouterr().out
    assert "already in Kafka from an earlier run" in again
    # This time Gold of the first day ran when the second day's Silver already existed: nothing left to redo.
    assert "the `silver_to_gold` sensor requested 0 runs" in again
    assert re.search(r"Asset checks: 64 passed, 0 failed", again)
