"""Glue's Python, played locally: Dagster is not installed there (only `dagster-pipes`, from the jobs'
`--additional-python-modules`), so importing it fails here too. A Glue script that would die on
`import dagster` in AWS then fails its local run in the tests instead of passing. Our own code comes
only from PYTHONPATH (in a job run: the wheel deploy shipped, as `--extra-py-files` in Glue): the
development checkout's editable install, which would serve any module of the repository, is taken out.

Python imports this module at start-up because its folder is on PYTHONPATH (`local_glue.glue_script_env`).
"""

import importlib.abc
import sys


class _NotOnGlue(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".", 1)[0]
        if top == "dagster" or (top.startswith("dagster_") and top != "dagster_pipes"):
            raise ModuleNotFoundError(f"No module named {top!r} (AWS Glue has only dagster-pipes)", name=top)
        return None


sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.meta_path.insert(0, _NotOnGlue())
