"""`crypto-pipeline dashboard [--port N]`: the lake's Streamlit dashboard (`tools.dashboard_app`) on 127.0.0.1.

Streamlit runs headless in a child process with the same `CRYPTO_*` settings: it opens no browser, sends no
usage statistics and its own output goes to <state>/logs/dashboard.log; this command prints the address.
A port in use is refused before Streamlit starts, with the setting and the flag that change it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from crypto_assets.contracts.settings import Settings, environment

APP = Path(__file__).resolve().with_name("dashboard_app.py")
HOST = "127.0.0.1"


def port_in_use(port: int, host: str = HOST) -> bool:
    """Whether something listens on host:port (a port left in TIME_WAIT is free, as Streamlit's server sees it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def streamlit_command(port: int) -> list[str]:
    """`streamlit run` of the app: headless, local only, no usage statistics, no file watcher, quiet."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        f"--server.address={HOST}", f"--server.port={port}", "--server.headless=true",
        "--server.fileWatcherType=none", "--server.runOnSave=false", "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={HOST}", "--global.developmentMode=false", "--logger.level=error",
        "--client.toolbarMode=viewer", "--client.showErrorDetails=false", "--theme.base=light",
    ]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_dashboard(settings: Settings, port: int | None = None) -> int:
    port = settings.dashboard_port if port is None else port
    if port_in_use(port):
        print(f"error: port {port} on {HOST} is in use: choose another with --port N or "
              f"{Settings.env_name('dashboard_port')}", file=sys.stderr)
        return 2
    log = Path(settings.state_dir) / "logs" / "dashboard.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **environment(settings)}
    print(f"dashboard: http://{HOST}:{port} (lake {settings.lake_root}; Ctrl-C stops it; Streamlit's log: {log})",
          flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a stopped command stops Streamlit with it
    with open(log, "ab") as out:
        proc = subprocess.Popen(streamlit_command(port), env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        print(f"error: Streamlit stopped with exit code {code}: {tail[0]} (see {log})", file=sys.stderr)
        return 1
    return 0


def _port(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; expected a number from 1 to 65535")
    return port


def cmd_dashboard(args, settings: Settings) -> int:
    return run_dashboard(settings, args.port)


def add_parser(sub) -> None:
    d = sub.add_parser("dashboard", help="the lake's dashboard (Streamlit) on 127.0.0.1: market, features, health")
    d.add_argument("--port", type=_port, metavar="N",
                   help=f"port on 127.0.0.1 (default: {Settings.env_name('dashboard_port')}, 8501)")
    d.set_defaults(func=cmd_dashboard)
