"""`make demo` end to end (on the test session's broker, with a lake and Dagster instance of its own)."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

from dagster import AssetKey

from crypto_assets.orchestration.definitions import build_definitions
from crypto_assets.tools.demo import run_demo


def _written_table(out: str) -> list[tuple[str, str]]:
    lines = out.split("\nWritten:\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [tuple(line.split()[:2]) for line in lines]


def test_demo_runs_the_pipeline_through_its_sensors_and_every_check_passes(fresh_settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings = fresh_settings.replace(first_date="")  # as `make demo`: the partitions follow the lake
    assert run_demo(settings) == 0
    out = capsys.readouterr().out
    written = _written_table(out)
    assert len(written) == len(set(written)), written  # each partition once, with its last write
    assert ("gold_features", "2026-11-24|BTC-USD") in written
    # The candles of every partition, in the Bronze sensor's runs after Silver and Gold.
    for candles in ("gold_candles_1m", "gold_candles_1h"):
        assert {p for a, p in written if a == candles} == {p for a, p in written if a == "silver_trades"}
    # The partitions start at the lake's first day (the demo's), not years of empty days before it.
    days = build_definitions(settings).resolve_asset_graph().get(AssetKey("bronze_trades")).partitions_def
    keys = days.get_partition_keys()
    assert keys[0] == "2026-11-24" and keys[-1] == datetime.now(timezone.utc).date().isoformat()
    assert len(keys) == (date.fromisoformat(keys[-1]) - date(2026, 11, 24)).days + 1
    assert "the `bronze_to_silver` sensor requested 4 runs" in out  # 2 event days x 2 products, Gold in each
    # Gold of the first day again, for each product: its last trades' targets read the second day.
    assert "the `silver_to_gold` sensor requested 2 runs" in out
    assert re.search(r"Asset checks: 114 passed, 0 failed", out), out[-2000:]  # 32 candles (4 runs x 8), 42 Gold (6 x 7)
    for asset in ("bronze_trades", "bronze_ticker", "silver_trades", "silver_ticker", "gold_features"):
        assert asset in out
    assert "A few Gold rows" in out

    # A second run publishes nothing again, and lands the same result.
    assert run_demo(settings) == 0
    again = capsys.readouterr().out
    assert "already in Kafka from an earlier run" in again
    # This time Gold of the first day ran when the second day's Silver already existed: nothing left to redo.
    assert "the `silver_to_gold` sensor requested 0 runs" in again
    assert re.search(r"Asset checks: 100 passed, 0 failed", again)
