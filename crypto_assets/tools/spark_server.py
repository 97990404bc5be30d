"""A warm, shared Spark for every run: the project's local Spark Connect server.

Each Dagster run is its own process; with a local session each would start its own Spark JVM
(seconds of CPU before any work, on every run). With `crypto-pipeline spark up` one Spark
Connect server (PySpark's own Spark plus the Connect plugin and the Kafka source, resolved from
Maven Central) stays up, and runs given `CRYPTO_SPARK_CONNECT_URL` attach to it in well under a
second. Pid file and log under `<state_dir>/spark-connect/`; it listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.spark_conf import ICEBERG_EXTENSIONS, LOCAL_CONF, RUNTIME_CONF, s3a_conf
from crypto_assets.tools.broker import _alive, _port_free, _port_open, _signal_group, _tail_text

CONNECT_MAIN = "org.apache.spark.sql.connect.service.SparkConnectServer"


class SparkServerError(RuntimeError):
    """The Spark Connect server could not be started or stopped; the message says why and what to do."""


@dataclass
class SparkServerStatus:
    running: bool
    pid: int | None
    url: str
    log_file: str

    def describe(self) -> str:
        if not self.running:
            return f"Spark Connect server: not running (would serve {self.url})"
        return f"Spark Connect server: running, pid {self.pid}, at {self.url}\n  log: {self.log_file}"


class LocalSparkServer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = Path(settings.state_dir) / "spark-connect"
        self.pid_file = self.dir / "server.pid"
        self.log_file = self.dir / "server.log"
        self.port = settings.spark_connect_port

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def status(self) -> SparkServerStatus:
        pid = self._live_pid()
        return SparkServerStatus(pid is not None and _port_open(self.port), pid, self.url, str(self.log_file))

    def up(self, timeout_s: float = 120.0) -> SparkServerStatus:
        if self._live_pid() is not None:
            return self.status()
        if not _port_free(self.port):
            raise SparkServerError(
                f"port {self.port} on 127.0.0.1 is already in use by another process: stop it, or pick another "
                f"port with CRYPTO_SPARK_CONNECT_PORT=<port>"
            )
        from crypto_assets.lake.jars import require_java, spark_iceberg_jars, spark_kafka_jars, spark_s3_jars
        from crypto_assets.tools.jvm import spark_connect_jars

        require_java()
        jars = [*spark_connect_jars(self.settings), *spark_kafka_jars(self.settings), *spark_s3_jars(self.settings),
                *spark_iceberg_jars(self.settings)]
        import pyspark

        submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
        warehouse = Path(self.settings.state_dir) / "spark-warehouse"
        conf = {
            **RUNTIME_CONF,
            **LOCAL_CONF,
            **ICEBERG_EXTENSIONS,
            "spark.sql.shuffle.partitions": str(self.settings.spark_shuffle_partitions),
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.system.home={warehouse}",
            "spark.pyspark.python": sys.executable,
            # An s3:// lake works through the server as through a local session.
            **{f"spark.hadoop.{k}": v for k, v in s3a_conf(self.settings.s3_endpoint_url, self.settings.aws_region).items()},
        }
        cmd = [str(submit), "--class", CONNECT_MAIN, "--master", self.settings.spark_master,
               "--driver-memory", self.settings.spark_driver_memory, "--jars", ",".join(str(j) for j in jars)]
        for k, v in conf.items():
            cmd += ["--conf", f"{k}={v}"]
        cmd.append("spark-internal")
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
        with self.log_file.open("w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise SparkServerError(
                    f"the Spark Connect server exited while starting (code {proc.returncode}); log {self.log_file}:\n"
                    + _tail_text(self.log_file.read_text())
                )
            if time.monotonic() > deadline:
                self.down()
                raise SparkServerError(f"the Spark Connect server did not listen on {self.port} within {timeout_s:.0f} s; "
                                       f"see {self.log_file}")
            time.sleep(0.5)
        return self.status()

    def down(self, timeout_s: float = 60.0) -> bool:
        pid = self._live_pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _live_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None
