"""What `crypto-pipeline aws deploy` ships to Glue: the packages the Glue jobs import, no local tools, no
Dagster code; and the real entry scripts import from that wheel alone (as Glue runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from crypto_assets.tools.aws_deploy import GLUE_PACKAGES
from crypto_assets_tests.support.local_glue import REPO, glue_script_env


def test_the_wheel_holds_the_glue_packages_and_no_tools(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = [n for n in names if n.endswith(".py")]
    packages = {n.split("/")[1] for n in modules if n.startswith("crypto_assets/") and n.count("/") >= 2}
    assert packages == set(GLUE_PACKAGES)
    assert "crypto_assets/__init__.py" in modules
    assert not [n for n in names if n.startswith(("crypto_assets/tools/", "crypto_assets/orchestration/", "producer/"))]
    assert "crypto_assets/glue_jobs/jobs.py" in modules and "crypto_assets/silver/build.py" in modules


def test_the_entry_scripts_import_from_the_wheel_alone(base_settings, wheel):
    """Each script in glue/ loads (its module body, not its job) with only the wheel as our code, and the
    modules Glue must not have stay out of reach."""
    scripts = sorted(str(p) for p in (REPO / "glue").glob("*.py"))
    code = (
        "import importlib, runpy\n"
        f"for script in {scripts!r}:\n"
        "    runpy.run_path(script, run_name='glue_entry')\n"
        "import crypto_assets\n"
        "print(crypto_assets.__file__)\n"
        "unreachable = []\n"
        "for name in ('crypto_assets.tools', 'crypto_assets.orchestration', 'producer', 'dagster'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        unreachable.append(name)\n"
        "print(sorted(unreachable))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=glue_script_env(base_settings, wheel), capture_output=True,
                          text=True, cwd=os.sep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, unreachable = proc.stdout.strip().splitlines()
    assert where == f"{wheel}/crypto_assets/__init__.py"
    assert unreachable == str(sorted(["crypto_assets.tools", "crypto_assets.orchestration", "producer", "dagster"]))
