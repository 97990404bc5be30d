"""What commands print: the project's own lines on the terminal, library records and warnings in the log file."""

from __future__ import annotations

import logging
import warnings

import pytest

from crypto_assets.tools.console import setup_logging


@pytest.fixture
def project_logging():
    """`setup_logging` for one test; its handlers are removed afterwards (pytest's stay)."""
    yield setup_logging
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__module__ == "crypto_assets.tools.console"]:
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(False)


def test_library_records_and_warnings_go_to_the_log_file_only(tmp_path, capfd, project_logging):
    path = project_logging(verbose=False, state_dir=str(tmp_path))
    logging.getLogger("kafka.conn").error("Connect attempt to <BrokerConnection> returned error 111")
    logging.getLogger("kafka.client").warning("Node 1 connection failed -- refreshing metadata")
    logging.getLogger("producer.kafka_sink").warning("Kafka unreachable: buffering (12 records)")
    logging.getLogger("crypto_assets.silver.build").info("silver trades timings (s): {}")
    logging.getLogger("crypto_assets.silver.build").warning("a step's warning")
    warnings.warn("Class `X` is currently in beta", UserWarning, stacklevel=1)
    err = capfd.readouterr().err
    assert "Kafka unreachable: buffering" in err and "a step's warning" in err
    for noise in ("BrokerConnection", "refreshing metadata", "timings", "currently in beta"):
        assert noise not in err, err
    for handler in logging.getLogger().handlers:
        handler.flush()
    logged = path.read_text()
    for line in ("BrokerConnection", "refreshing metadata", "Kafka unreachable", "timings", "currently in beta"):
        assert line in logged


def test_verbose_shows_library_records_too(tmp_path, capfd, project_logging):
    project_logging(verbose=True, state_dir=str(tmp_path))
    logging.getLogger("kafka.conn").error("Connect attempt returned error 111")
    assert "Connect attempt returned error 111" in capfd.readouterr().err


def test_a_second_setup_routes_warnings_again_after_showwarning_was_replaced(tmp_path, project_logging):
    """As between two commands in one process (tests call `main` many times): something (pytest,
    `warnings.catch_warnings`) puts its own `showwarning` back; the next setup must still capture."""
    project_logging(verbose=False, state_dir=str(tmp_path))
    warnings.showwarning = warnings._showwarning_orig  # what catch_warnings() does on entry
    path = project_logging(verbose=False, state_dir=str(tmp_path))
    warnings.warn("Class `Y` is currently in beta", UserWarning, stacklevel=1)
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "Class `Y` is currently in beta" in path.read_text()


def test_records_after_stderr_was_replaced_and_closed_go_to_the_new_stderr(monkeypatch, project_logging):
    """A producer thread that outlives a command's stderr (a test's capture, closed after the test)
    logs to the stderr of the moment, never "Logging error ... I/O operation on closed file"."""
    import io
    import sys

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    project_logging(verbose=False)
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("producer.connection").warning("connected after the command returned")
    assert "connected after the command returned" in second.getvalue()
    assert "Logging error" not in second.getvalue()
