"""The project's Dagster instance (dagster.yaml) is the same from every folder for one DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_ADD = "from dagster import DagsterInstance; DagsterInstance.get().add_dynamic_partitions('product_id', ['SOL-USD'])"
_LIST = "from dagster import DagsterInstance; print(DagsterInstance.get().get_dynamic_partitions('product_id'))"


def _python(code: str, cwd: Path, home: Path) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def test_a_dagster_command_from_another_folder_opens_the_same_instance(tmp_path):
    home, here, there = tmp_path / "home", tmp_path / "here", tmp_path / "there"
    for d in (home, here, there):
        d.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    _python(_ADD, here, home)
    assert _python(_LIST, there, home) == "['SOL-USD']"
    # Everything the instance stores lives under DAGSTER_HOME, nothing in the folders the commands ran in.
    assert not any(here.iterdir()) and not any(there.iterdir())
