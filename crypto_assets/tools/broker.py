"""Starts, checks and stops the project's own Apache Kafka 4.x broker (single KRaft node).

The broker runs from jars resolved from Maven Central (see `jvm.py`), with its data, logs and
pid file under `<state_dir>/kafka/`. `up` returns only when the broker answers requests and
the topics exist; `down` waits until the JVM is gone.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.jars import SetupError, require_java
from crypto_assets.tools.jvm import kafka_broker_jars

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be started, reached or stopped; the message says why and what to do."""


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    topics: dict[str, int] = field(default_factory=dict)  # topic -> partition count
    data_dir: str = ""
    log_file: str = ""

    def describe(self) -> str:
        if not self.running:
            return f"Kafka broker: not running (would listen on {self.bootstrap}; data in {self.data_dir})"
        topics = ", ".join(f"{t} ({n} partitions)" for t, n in sorted(self.topics.items())) or "none"
        return (
            f"Kafka broker: running, pid {self.pid}, at {self.bootstrap}\n"
            f"  topics: {topics}\n  data: {self.data_dir}\n  log: {self.log_file}"
        )


class LocalBroker:
    """One local broker described by `Settings` (ports, state folder, topics)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.broker_dir
        self.data_dir = self.dir / "data"
        self.logs_dir = self.dir / "logs"
        self.pid_file = self.dir / "broker.pid"
        self.config_file = self.dir / "server.properties"
        self.log4j_file = self.dir / "log4j2.properties"
        self.console_log = self.logs_dir / "console.log"
        self.server_log = self.logs_dir / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    # ---- lifecycle -------------------------------------------------------------------------

    def up(self, timeout_s: float = 90.0) -> BrokerStatus:
        require_java()
        pid = self._live_pid()
        if pid is None:
            self._check_ports_free()
            jars = kafka_broker_jars(self.settings)
            self._write_config()
            if not (self.data_dir / "meta.properties").exists():
                self._format_storage(jars)
            pid = self._start(jars)
        self._wait_ready(pid, timeout_s)
        self.ensure_topics()
        return self.status()

    def down(self, timeout_s: float = 60.0) -> bool:
        """Stops the broker; returns False if it was not running."""
        pid = self._live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            log.warning("broker pid %s did not stop within %.0f s; killing it", pid, timeout_s)
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        st = BrokerStatus(
            running=False, pid=pid, bootstrap=self.bootstrap,
            data_dir=str(self.data_dir), log_file=str(self.server_log),
        )
        if pid is None or not _port_open(self.settings.kafka_port):
            return st
        try:
            st.topics = self._topic_partitions()
        except Exception as exc:  # a broker that is still starting or shutting down
            log.debug("topic listing failed: %s", exc)
        st.running = True
        return st

    # ---- topics ----------------------------------------------------------------------------

    def ensure_topics(self) -> list[str]:
        """Creates the project's topics that are missing; returns the names it created."""
        from kafka.admin import KafkaAdminClient, NewTopic

        s = self.settings
        wanted = [s.ticker_topic, s.trades_topic, s.deadletter_topic]
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="crypto-pipeline-admin")
        try:
            existing = set(admin.list_topics())
            missing = [t for t in wanted if t not in existing]
            if missing:
                configs = {
                    # Keep data by size only: replayed sessions carry old timestamps.
                    "retention.ms": "-1",
                    "retention.bytes": str(s.kafka_retention_bytes),
                    "message.timestamp.type": "CreateTime",
                }
                admin.create_topics(
                    [NewTopic(t, s.kafka_partitions, 1, topic_configs=configs) for t in missing],
                    timeout_ms=30_000,
                )
                admin.wait_for_topics(missing, timeout_ms=30_000)
            return missing
        finally:
            admin.close()

    def _topic_partitions(self) -> dict[str, int]:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap, client_id="crypto-pipeline-admin", request_timeout_ms=5000
        )
        try:
            names = [t for t in admin.list_topics() if not t.startswith("__")]
            if not names:
                return {}
            return {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
        finally:
            admin.close()

    # ---- internals -------------------------------------------------------------------------

    def _live_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is this broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return pid
        return pid if str(self.config_file) in cmdline else None

    def _check_ports_free(self) -> None:
        for name, port in (("KAFKA_PORT", self.settings.kafka_port), ("KAFKA_CONTROLLER_PORT", self.settings.kafka_controller_port)):
            if not _port_free(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is already in use by another process: stop it, "
                    f"or pick another port with CRYPTO_{name}=<port>"
                )

    def _write_config(self) -> None:
        s = self.settings
        for d in (self.data_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voters: the quorum does not record the controller address in its log,
            # so changing CRYPTO_KAFKA_CONTROLLER_PORT later needs no re-format.
            "controller.quorum.voters": f"1@127.0.0.1:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka_partitions),
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.ms": "-1",
            "log.retention.bytes": str(s.kafka_retention_bytes),
            "log.segment.bytes": str(128 * 1024**2),
        }
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.log4j_file.write_text(_LOG4J2.format(log=self.server_log))

    def _java_cmd(self, jars: list[Path], main: str, *args: str, heap: str = "256m") -> list[str]:
        java = require_java()
        classpath = os.pathsep.join(str(j) for j in jars)
        return [
            java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp", classpath, main, *args,
        ]

    def _format_storage(self, jars: list[Path]) -> None:
        cmd = self._java_cmd(jars, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(self.config_file))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{_tail_text(proc.stdout + proc.stderr)}"
            )

    def _start(self, jars: list[Path]) -> int:
        cmd = self._java_cmd(jars, "kafka.Kafka", str(self.config_file), heap=self.settings.kafka_heap)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.console_log, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.dir,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        self._proc = proc  # keeps the child reapable while we wait for it
        return proc.pid

    def _wait_ready(self, pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = getattr(self, "_proc", None)
            if proc is not None and proc.poll() is not None or not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker exited during start-up (see {self.server_log}):\n{self.log_tail()}"
                )
            if _port_open(self.settings.kafka_port) and self._answers():
                return
            time.sleep(0.2)
        self.down(timeout_s=10)
        raise BrokerError(
            f"the Kafka broker did not become ready within {timeout_s:.0f} s "
            f"(see {self.server_log}):\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        from kafka.admin import KafkaAdminClient

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=3000, client_id="crypto-pipeline-probe"
            )
        except Exception:
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            admin.close()

    def log_tail(self, lines: int = 20) -> str:
        chunks = []
        for f in (self.console_log, self.server_log):
            if f.exists():
                text = _tail_text(f.read_text(errors="replace"), lines)
                if text:
                    chunks.append(f"--- {f.name} ---\n{text}")
        return "\n".join(chunks) or "(no broker log written)"


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 url-safe base64 characters, as Kafka makes them).

    About one in 64 random ids starts with '-', which Kafka's command line parser would read
    as an option ("--cluster-id: expected one argument"); draw again until it does not."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail_text(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        if state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return False
    except OSError:
        pass
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""

__all__ = ["BrokerError", "BrokerStatus", "LocalBroker", "SetupError"]
