"""The orchestration commands' argument handling and plumbing (no services needed)."""

from __future__ import annotations

from datetime import date

from crypto_assets.contracts.settings import Settings
from crypto_assets.tools.backfill import plan
from crypto_assets.tools.cli import main
from crypto_assets.tools.live import live_commands, settings_env


def test_backfill_rejects_a_reversed_range_and_unknown_layers_in_one_line(capsys):
    assert main(["backfill", "--from", "2026-01-05", "--to", "2026-01-01"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: backfill range ends (2026-01-01) before it starts (2026-01-05)"]
    assert main(["backfill", "--from", "2026-01-05", "--layers", "silver,platinum"]) == 2
    assert "unknown layer(s) platinum" in capsys.readouterr().err


def test_backfill_plan_is_one_run_per_partition_in_dependency_order():
    steps = plan(Settings.from_env(environ={}), date(2026, 1, 1), date(2026, 1, 2), ["BTC-USD", "ETH-USD"],
                 ("bronze", "silver", "gold"))
    layers = [layer for layer, _, _ in steps]
    assert layers == ["bronze"] * 2 + ["silver"] * 4 + ["gold"] * 4
    assert [str(k) for layer, _, k in steps if layer == "gold"] == [
        "2026-01-01|BTC-USD", "2026-01-01|ETH-USD", "2026-01-02|BTC-USD", "2026-01-02|ETH-USD"]


def test_live_children_resolve_the_same_settings():
    s = Settings.from_env(environ={}, kafka_port=19092, products=("SOL-USD",), automation="on", bronze_mode="stream")
    assert Settings.from_env(environ=settings_env(s)) == s
    cmds = live_commands(s, "synthetic", 3999)
    assert cmds["producer"][1:4] == ["produce", "--source", "synthetic"] and "--speed" in cmds["producer"]
    assert cmds["stream"][1:] == ["stream"] and cmds["dagster"][-1] == "3999"


def test_settings_copy_with_another_lake_gets_its_own_checkpoints():
    s = Settings.from_env(environ={}, lake_root="/a")
    assert s.checkpoint_root == "/a/_checkpoints"
    assert s.replace(lake_root="/b").checkpoint_root == "/b/_checkpoints"


def test_a_backfill_prints_only_its_own_lines_and_logs_the_rest(tmp_path):
    """No library warnings (Dagster's BetaWarning), run logs or tracebacks on the terminal: one line per run,
    and a failed run's reason in one line; the log file keeps what the libraries said."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "dagster.yaml", home)
    env = {**os.environ, "DAGSTER_HOME": str(home), "CRYPTO_STATE_DIR": str(state),
           "CRYPTO_LAKE_ROOT": str(tmp_path / "lake"), "CRYPTO_FIRST_DATE": "2026-10-01"}
    cli = Path(sys.executable).parent / "crypto-pipeline"
    res = subprocess.run([str(cli), "backfill", "--from", "2026-10-05", "--layers", "silver,gold", "--products", "BTC-USD"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 1
    lines = (res.stdout + res.stderr).strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("[1/2] silver 2026-10-05|BTC-USD") and "FAILED" in lines[0]
    assert lines[1].startswith("error: the silver run for 2026-10-05|BTC-USD failed: Bronze kafka_ticker "
                               "ingest_date=2026-10-05 has not been written yet: materialize bronze_ticker"), lines[1]
    # Library warnings would go to the log file (tools/test_console.py); loading the code location makes none
    # any more (the beta partition mappings silence theirs where they are made).
    assert "Warning" not in (state / "logs" / "crypto-pipeline.log").read_text()
