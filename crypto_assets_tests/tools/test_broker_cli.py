"""`crypto-pipeline kafka up | status | down` run as a user would, on a broker of their own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_assets_tests.conftest import REPO, free_port

CLI = [sys.executable, "-m", "crypto_assets.tools.cli"]


@pytest.fixture
def cli_env(tmp_path, base_settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTO_")}
    env.update(
        CRYPTO_STATE_DIR=str(tmp_path / "state"),
        CRYPTO_JVM_DIR=base_settings.jvm_dir,
        CRYPTO_KAFKA_PORT=str(free_port()),
        CRYPTO_KAFKA_CONTROLLER_PORT=str(free_port()),
    )
    yield env
    subprocess.run([*CLI, "kafka", "down"], env=env, cwd=REPO, capture_output=True, timeout=120)


def run(env, *args, timeout=180):
    return subprocess.run([*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_up_status_down_lifecycle(cli_env):
    port = cli_env["CRYPTO_KAFKA_PORT"]
    st = run(cli_env, "kafka", "status")
    assert st.returncode == 3 and "not running" in st.stdout

    up = run(cli_env, "kafka", "up")
    assert up.returncode == 0, up.stderr
    assert "running" in up.stdout and f"127.0.0.1:{port}" in up.stdout
    for topic in ("crypto.ticker.raw (3 partitions)", "crypto.trades.raw (3 partitions)", "crypto.deadletter.raw"):
        assert topic in up.stdout
    pid = int((Path(cli_env["CRYPTO_STATE_DIR"]) / "kafka" / "broker.pid").read_text())

    st = run(cli_env, "kafka", "status")
    assert st.returncode == 0 and f"pid {pid}" in st.stdout and "crypto.trades.raw" in st.stdout
    again = run(cli_env, "kafka", "up")  # idempotent: the same broker, not a second one
    assert again.returncode == 0 and f"pid {pid}" in again.stdout

    down = run(cli_env, "kafka", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not _alive(pid), "down must leave no JVM behind"
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(port)))  # the port is free again
    assert "not running" in run(cli_env, "kafka", "status").stdout
    assert "was not running" in run(cli_env, "kafka", "down").stdout


def test_data_survives_restart(cli_env):
    from kafka import KafkaConsumer, TopicPartition

    from crypto_assets_tests.support.records import send_records, ts

    assert run(cli_env, "kafka", "up").returncode == 0
    bootstrap = f"127.0.0.1:{cli_env['CRYPTO_KAFKA_PORT']}"
    written = send_records(bootstrap, [("crypto.trades.raw", "BTC-USD", "x", ts("2026-01-01T00:00:00Z"))])
    assert run(cli_env, "kafka", "down").returncode == 0
    assert run(cli_env, "kafka", "up").returncode == 0
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    partition, offset = written[0]
    assert consumer.end_offsets([TopicPartition("crypto.trades.raw", partition)])[TopicPartition("crypto.trades.raw", partition)] == offset + 1
    consumer.close()


def test_port_in_use_is_one_clear_line(cli_env):
    port = int(cli_env["CRYPTO_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        res = run(cli_env, "kafka", "up")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0] and "CRYPTO_KAFKA_PORT" in lines[0]


def test_broker_dying_at_start_shows_log_tail(cli_env):
    cli_env["CRYPTO_KAFKA_HEAP"] = "notasize"
    res = run(cli_env, "kafka", "up")
    assert res.returncode == 2
    first = res.stderr.splitlines()[0]
    assert "exited during start-up" in first
    assert "Invalid maximum heap size" in res.stderr  # the JVM's own words, from the log tail


def test_missing_java_says_what_to_install(cli_env):
    cli_env["PATH"] = str(Path(sys.executable).parent)  # the venv only: no java, no mvn
    res = run(cli_env, "kafka", "up")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "error: Java not found: install a Java 17 runtime (Debian: apt-get install openjdk-17-jdk-headless)"
    )


def test_cluster_ids_never_look_like_an_option():
    from crypto_assets.tools.broker import new_cluster_id

    # With plain random ids about 1 in 64 starts with '-' and the storage format fails.
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)
