"""`crypto-pipeline live` / `make live`: the whole pipeline running continuously.

Starts the local broker, then three processes: the producer (live Coinbase, or a paced synthetic
market for machines without internet), the streaming Bronze job, and `dagster dev` with the
sensors on and Bronze in streaming mode. The sensor-driven Silver and Gold runs start no Spark
(both run with Arrow), so no shared Spark server is needed. Ctrl-C stops all three (the broker keeps running, like
after `make demo`; `crypto-pipeline kafka down` stops it). A process that exits on its own
stops the others, with one line naming it and its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crypto_assets.contracts.settings import Settings, environment


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes child processes resolve the same settings."""
    return {**os.environ, **environment(settings)}


def local_spark_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of the streaming job: it keeps its own local Spark (its micro-batch function
    runs in its own process), whatever server the runs attach to."""
    return {k: v for k, v in env.items() if k != "CRYPTO_SPARK_CONNECT_URL"}


def live_commands(settings: Settings, source: str, ui_port: int) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    cli = str(bin_dir / "crypto-pipeline")
    produce = [cli, "produce", "--source", source]
    if source == "synthetic":
        produce += ["--speed", "1", "--duration", str(7 * 24 * 3600)]
    return {
        "producer": produce,
        "stream": [cli, "stream"],
        "dagster": [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(ui_port)],
    }


def run_live(settings: Settings, source: str = "coinbase", ui_port: int = 3000) -> int:
    from crypto_assets.tools.broker import LocalBroker

    settings = settings.replace(automation="on", bronze_mode="stream", baseline_model="on")
    print(LocalBroker(settings).up().describe(), flush=True)
    logs = Path(settings.state_dir) / "live"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**settings_env(settings), "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", settings.home)}
    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in live_commands(settings, source, ui_port).items():
        child_env = local_spark_env(env) if name == "stream" else env
        log = (logs / f"{name}.log").open("a")
        procs[name] = subprocess.Popen(cmd, cwd=settings.home, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        print(f"started {name:<8} pid {procs[name].pid:<7} log {logs / f'{name}.log'}", flush=True)
    print(f"Dagster UI: http://127.0.0.1:{ui_port}  (sensors on; Bronze lands through the stream). Ctrl-C stops.",
          flush=True)
    status = 0
    try:
        while True:
            for name, p in procs.items():
                if p.poll() is not None:
                    print(f"error: the {name} process exited with code {p.returncode}; see {logs / f'{name}.log'}",
                          file=sys.stderr, flush=True)
                    status = 1
                    raise KeyboardInterrupt
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for p in procs.values():
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        print("stopped producer, stream and dagster (the broker keeps running: crypto-pipeline kafka down)")
    return status
