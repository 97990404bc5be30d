"""What the Glue entry scripts may import: Glue's Python has dagster-pipes (installed by deploy) but no Dagster."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crypto_assets_tests.support.local_glue import glue_script_env


@pytest.mark.parametrize("module", ["crypto_assets.bronze.build", "crypto_assets.bronze.stream",
                                    "crypto_assets.silver.build", "crypto_assets.gold.build",
                                    "crypto_assets.bronze.report", "crypto_assets.silver.report",
                                    "crypto_assets.gold.report", "crypto_assets.glue_jobs.jobs"])
def test_the_steps_glue_jobs_run_import_without_dagster(base_settings, module):
    """Glue has dagster-pipes but no Dagster: the steps its jobs call, and what they report, must not need it."""
    code = f"import {module}, dagster_pipes\ntry:\n    import dagster\nexcept ModuleNotFoundError:\n    print('no dagster')"
    proc = subprocess.run([sys.executable, "-c", code], env=glue_script_env(base_settings), capture_output=True,
                          text=True, cwd=os.sep)
    assert proc.returncode == 0 and proc.stdout.strip() == "no dagster", proc.stderr[-2000:]
