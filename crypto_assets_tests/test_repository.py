"""The repository's own standards, checked with the tests: CI lints, and the code is lint-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ci_runs_the_linter_and_the_tests():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make lint || status=$?" in lines and "make test || status=$?" in lines


def test_the_code_is_ruff_clean():
    ruff = Path(sys.executable).parent / "ruff"
    res = subprocess.run([str(ruff), "check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]


def test_the_package_finds_the_repository_from_wherever_its_modules_sit(tmp_path, monkeypatch):
    """The default project folder and the POMs are found relative to the modules' own place."""
    from crypto_assets.contracts.settings import Settings
    from crypto_assets.lake.jars import POM_DIR

    monkeypatch.chdir(tmp_path)  # not the repository: the answer must not come from the working directory
    assert Settings.from_env(environ={}).home == str(REPO)
    assert all((POM_DIR / name / "pom.xml").exists() for name in ("kafka-broker", "spark-kafka", "spark-s3"))
