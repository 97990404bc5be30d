"""What a command prints: the project's own lines on the terminal, everything else in a log file.

Libraries (kafka-python, py4j, Dagster, alembic) narrate connections, retries and deprecations
that the project's own lines already say in a user's words. In normal runs their records, and
Python warnings such as Dagster's BetaWarning, go only to `<state>/logs/crypto-pipeline.log`;
`--verbose` shows everything on the terminal too. The Spark JVM logs to `<state>/logs/spark.log`
(`lake/spark.py`).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from crypto_assets.lake.spark import log_dir

OWN_LOGGERS = ("crypto_assets", "producer", "__main__")
# Inside a run the layers' steps log their details (timings, counts) for the run's log; on the
# terminal, commands print one line per run themselves, so only the steps' warnings show there.
STEP_LOGGERS = tuple(f"crypto_assets.{layer}." for layer in ("bronze", "silver", "gold", "lake"))
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every connection at INFO: the log file keeps their warnings and errors.
CHATTY = ("kafka", "alembic", "py4j", "urllib3", "botocore")


class _OwnRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(STEP_LOGGERS):
            return record.levelno >= logging.WARNING
        return record.name.split(".", 1)[0] in OWN_LOGGERS


# Handlers installed here are of these types, so a second setup (tests call `main` many times)
# replaces them and leaves any other handler (pytest's) alone.
class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (as logging's last-resort handler
    does), so a thread that outlives a replaced stderr (a test's capture) never writes to a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


class _FileHandler(logging.handlers.RotatingFileHandler):
    pass


def setup_logging(verbose: bool, state_dir: str | None = None) -> Path | None:
    """Terminal: the project's records at INFO (all records at DEBUG with `verbose`). Log file, when
    `state_dir` is given: every record at INFO or above (DEBUG with `verbose`). Returns the file."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, (_ConsoleHandler, _FileHandler))]:
        root.removeHandler(handler)
        handler.close()
    level = logging.DEBUG if verbose else logging.INFO
    root.setLevel(level)
    formatter = logging.Formatter(LOG_FORMAT)

    console = _ConsoleHandler()
    console.setFormatter(formatter)
    if not verbose:
        console.addFilter(_OwnRecords())
    root.addHandler(console)

    path = None
    if state_dir:
        path = log_dir(state_dir) / "crypto-pipeline.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file = _FileHandler(path, maxBytes=20 * 1024**2, backupCount=3, encoding="utf-8")
        except OSError:
            path = None  # a read-only state folder: the terminal still gets our lines
        else:
            file.setFormatter(formatter)
            root.addHandler(file)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # Warnings become records of "py.warnings": in the file, not on the terminal. Installed afresh (off,
    # then on), so a `warnings.showwarning` replaced since an earlier setup does not print them.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    return path
