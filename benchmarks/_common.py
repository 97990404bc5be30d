"""Shared helpers of the benchmark scripts: machine line, free ports, settings, results, RSS sampling.

Not a test module and not part of the package: the scripts in this folder import it by name
(Python puts the script's folder first on sys.path).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the package is installed editable, but be safe
    sys.path.insert(0, str(REPO))

BENCH_STATE = REPO / ".state" / "bench"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def free_port(avoid: tuple[int, ...] = ()) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def bench_settings(name: str, **overrides):
    """Settings of one benchmark: own state dir and lake under .state/bench/<name>/, free ports."""
    from crypto_assets.contracts.settings import Settings

    kafka_port = free_port()
    controller_port = free_port(avoid=(kafka_port,))
    root = BENCH_STATE / name
    return Settings.from_env(
        environ={},
        home=str(REPO),
        state_dir=str(root / "state"),
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        lake_root=str(root / "lake"),
        **overrides,
    )


def reset_dir(path: str | Path) -> None:
    path = Path(path)
    # Guard: only ever delete inside .state/bench.
    if BENCH_STATE.resolve() not in path.resolve().parents:
        raise RuntimeError(f"refusing to delete {path}: not under {BENCH_STATE}")
    shutil.rmtree(path, ignore_errors=True)
    # A lake's catalog lives in its folder: forget catalogs this process opened there.
    from crypto_assets.lake.catalog import forget_catalogs

    forget_catalogs()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def _java_version() -> str:
    java = shutil.which("java")
    if not java:
        return "none"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except Exception:
        return "unknown"
    first = out.strip().splitlines()[0] if out.strip() else ""
    m = re.search(r'version "([^"]+)"', first)
    vendor = first.split()[0] if first else ""
    return f"{vendor} {m.group(1)}" if m else first


def machine_info() -> dict:
    return {
        "nproc": os.cpu_count(),
        "mem_gib": round(_mem_gib(), 1),
        "cpu": _cpu_model(),
        "java": _java_version(),
        "python": platform.python_version(),
    }


def machine_line(info: dict) -> str:
    return (
        f"machine: nproc={info['nproc']}, RAM {info['mem_gib']:.1f} GiB, CPU {info['cpu']}, "
        f"Java {info['java']}, Python {info['python']}"
    )


def write_result(name: str, summary: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return path


def print_result(summary: dict) -> None:
    print("RESULT " + json.dumps(summary, separators=(",", ":")), flush=True)


# ---- memory ------------------------------------------------------------------------------


def rusage_max_rss_mib() -> dict[str, float]:
    """ru_maxrss (KiB on Linux) of this process and of its largest *reaped* child."""
    return {
        "self_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, rss bytes) for all processes we can read."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[-1].split()
        # rest[0]=state, rest[1]=ppid, ..., rest[21]=rss (pages)
        try:
            table[int(entry)] = (int(rest[1]), int(rest[21]) * page)
        except (IndexError, ValueError):
            continue
    return table


class TreeRssSampler:
    """Samples the RSS of this process and its descendants, optionally excluding some subtrees.

    ru_maxrss of RUSAGE_CHILDREN only counts children that have exited and been waited for,
    and Spark's JVM lives until the interpreter exits, so we poll /proc instead.
    """

    def __init__(self, interval_s: float = 0.25, exclude_pids: tuple[int, ...] = ()):
        self.interval_s = interval_s
        self.exclude = set(exclude_pids)
        self.peak_total = 0
        self.peak_self = 0
        self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        own = table.get(me, (0, 0))[1]
        kids = 0
        stack = [p for p in children.get(me, []) if p not in self.exclude]
        while stack:
            pid = stack.pop()
            kids += table.get(pid, (0, 0))[1]
            stack.extend(p for p in children.get(pid, []) if p not in self.exclude)
        self.peak_self = max(self.peak_self, own)
        self.peak_children = max(self.peak_children, kids)
        self.peak_total = max(self.peak_total, own + kids)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._sample()
        except Exception:
            pass

    def summary_mib(self) -> dict[str, float]:
        return {
            "tree_peak_mib": round(self.peak_total / 1024**2, 1),
            "python_peak_mib": round(self.peak_self / 1024**2, 1),
            "children_peak_mib": round(self.peak_children / 1024**2, 1),
        }


def rss_of(pid: int) -> float:
    """Current RSS of one process in MiB (0 if gone)."""
    table = _proc_table()
    return round(table.get(pid, (0, 0))[1] / 1024**2, 1)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


# ---- CPU accounting (the machine may be shared: say how much CPU others took) ---------------

_CLK = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    total = sum(v[:8])  # guest time is already counted in user
    return total - idle, total


def _tree_cpu(root: int, groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds of `root` (with its reaped children) and of its live descendants.

    `groups` names subtrees (name -> pid) to account separately; the rest of the descendants
    is "children".
    """
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()
            stats[int(entry)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / _CLK,
                                 (int(rest[13]) + int(rest[14])) / _CLK)
        except (OSError, IndexError, ValueError):
            continue
    kids: dict[int, list[int]] = {}
    for pid, (ppid, *_x) in stats.items():
        kids.setdefault(ppid, []).append(pid)

    def subtree(pid: int) -> float:
        total, stack = 0.0, [pid]
        while stack:
            p = stack.pop()
            if p not in stats:
                continue
            total += stats[p][1] + stats[p][2]
            stack.extend(kids.get(p, []))
        return total

    out = {name: subtree(pid) if pid in stats else 0.0 for name, pid in groups.items()}
    own = stats.get(root, (0, 0.0, 0.0))
    grouped = set(groups.values())
    rest = 0.0
    for child in kids.get(root, []):
        if child not in grouped:
            rest += subtree(child)
    out["python"] = own[1]
    out["children"] = rest + own[2]  # own[2]: children already reaped
    return out


class CpuWindow:
    """CPU used during a stretch of wall time: by us (per group), and by every other process."""

    def __init__(self, groups: dict[str, int] | None = None):
        self.groups = {k: v for k, v in (groups or {}).items() if v}

    def __enter__(self) -> CpuWindow:
        self.t0 = time.perf_counter()
        self.m0 = _machine_ticks()
        self.c0 = _tree_cpu(os.getpid(), self.groups)
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        m1 = _machine_ticks()
        c1 = _tree_cpu(os.getpid(), self.groups)
        self.ours = {k: max(0.0, c1.get(k, 0.0) - self.c0.get(k, 0.0)) for k in c1}
        busy = (m1[0] - self.m0[0]) / _CLK
        self.machine_busy_s = busy
        self.machine_capacity_s = (m1[1] - self.m0[1]) / _CLK
        self.others_s = max(0.0, busy - sum(self.ours.values()))

    @property
    def others_cores(self) -> float:
        return self.others_s / self.wall if self.wall > 0 else 0.0

    def cores(self, group: str) -> float:
        return self.ours.get(group, 0.0) / self.wall if self.wall > 0 else 0.0

    def summary(self) -> dict:
        return {
            "wall_s": round(self.wall, 2),
            "cpu_s": {k: round(v, 2) for k, v in self.ours.items()},
            "others_cpu_s": round(self.others_s, 2),
            "others_avg_cores": round(self.others_cores, 2),
            "machine_busy_pct": round(100 * self.machine_busy_s / self.machine_capacity_s, 1)
            if self.machine_capacity_s else None,
        }


def contention_note(others_cores: float, threshold: float = 0.15) -> str:
    if others_cores < threshold:
        return ""
    return (f"WARNING: other processes on this machine used {others_cores:.2f} cores on average meanwhile; "
            f"these figures are pessimistic (re-run on an idle machine)")


def quiet_spark_progress() -> None:
    """No console progress bars: set before the JVM starts (a static conf, so build_spark_session's
    extra_conf cannot carry it: it re-sets every entry as a runtime conf)."""
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
