"""What a Silver and a Gold Glue job use, measured on local Spark: the basis of the worker sizing `aws deploy` sets.

Each job is run the way the tests run Glue jobs (`crypto_assets_tests/support/local_glue.py`): the real entry
script in `glue/`, with the wheel `aws deploy` ships as its only code, started through moto's Glue API
with the job's deployed default arguments, in a process of its own. The data is a busy generated day:
Bronze of 2,000,000 trade and 2,000,000 ticker records over two products (1% of the trades re-sent) for
the Silver jobs, and Silver of three such days (D-1, D, D+1) for Gold D (lookback and targets across
midnight). The lake is on local disk; moto's S3 holds the script, the wheel and the Pipes context.

Per job run: wall time; peak RSS of the driver (the script's Python process, any Spark JVM it starts, and
both together, sampled every 0.1 s, per-process peaks from the kernel's high-water mark); CPU seconds of
each; and the work Spark ran as tasks (from Spark's event log: tasks, executor run time, executor CPU
time), which is the only work executors on other Glue workers could take over. Also the resident size
of an idle Spark driver JVM as the entry scripts start it, which a Glue driver holds beside the script
whether or not the script uses Spark. Prints the figures, the worker sizing they support, and a RESULT line.

    .venv/bin/python benchmarks/bench_glue_sizing.py [--trades 2000000] [--tickers 2000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

from _common import (
    REPO,
    CpuWindow,
    bench_settings,
    contention_note,
    machine_info,
    machine_line,
    print_result,
    reset_dir,
    write_result,
)

PRODUCT = "BTC-USD"
# Glue's worker types for Spark jobs (4 vCPU and 16 GB per DPU); a job run has at least 2 workers, one
# of which is the driver.
WORKER_TYPES = [("G.1X", 4, 16), ("G.2X", 8, 32), ("G.4X", 16, 64), ("G.8X", 32, 128)]
MIN_WORKERS = 2
MEMORY_MARGIN = 2.0  # the driver's measured peak, doubled, must fit the worker's memory
_CLK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- the data (a phase in a process of its own: its Spark JVM must not count as a job's) --------------


def data_phase(settings, n_trades: int, n_tickers: int) -> None:
    import pyarrow.compute as pc
    from bench_gold import write_silver_day
    from bench_silver import DAY, make_bronze

    from crypto_assets.contracts.tables import silver_table_def
    from crypto_assets.lake import snapshots
    from crypto_assets.lake.spark import build_spark_session
    from crypto_assets.lake.store import Lake
    from crypto_assets.orchestration.resources.lake import LakeResource

    spark = build_spark_session(shuffle_partitions=4, driver_memory="6g", state_dir=settings.state_dir,
                                jvm_dir=settings.jvm_dir)
    clock = time.perf_counter()
    lake = LakeResource.from_settings(settings)
    make_bronze(spark, lake, n_trades, n_tickers)
    for shift, day in ((-1, DAY - timedelta(days=1)), (1, DAY + timedelta(days=1))):
        # The same generator as Day D's, its trade ids and offsets moved out of D's (they rise day by day).
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        # Written to a staging lake of its own (its Silver tables hold that day only), then moved into the
        # lake's Silver tables as the whole content of that day, in one commit per table.
        staging = tempfile.mkdtemp(prefix="staging-silver-", dir=settings.state_dir)
        write_silver_day(spark, staging, n_trades, n_tickers, day)
        for table in ("trades", "ticker"):
            t = silver_table_def(table)
            rows = snapshots.read(Lake(staging).table(t))
            moved = {"kafka_offset": shift * 10 * (n_trades + n_tickers)}
            if table == "trades":
                moved["trade_id"] = shift * 10 * n_trades
            for column, by in moved.items():
                i = rows.schema.get_field_index(column)
                rows = rows.set_column(i, column, pc.add(rows.column(column), by).cast(rows.schema.field(i).type))
            snapshots.replace(lake.catalog_config, t, rows, {"event_date": day},
                              snapshots.Provenance(asset=f"silver_{table}", partition=day.isoformat(), run_id="bench"))
        shutil.rmtree(staging)
    print(f"data: Bronze {DAY} ({n_trades:,} trade records + 1% re-sent, {n_tickers:,} ticker records, two "
          f"products) and Silver {DAY - timedelta(days=1)} and {DAY + timedelta(days=1)} (as many trades and "
          f"tickers each) in {time.perf_counter() - clock:.0f} s", flush=True)
    spark.stop()


# ---- measuring a process tree ----------------------------------------------------------------------


def _stat(pid: int):
    """(ppid, start time, cpu seconds incl. reaped children, rss bytes) of a process, or None if gone."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    cpu = sum(int(rest[i]) for i in (11, 12, 13, 14)) / _CLK
    return int(rest[1]), int(rest[19]), cpu, int(rest[21]) * _PAGE


def _high_water_mark(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _kind(pid: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if comm == "java":
        return "jvm"
    if comm.startswith("python"):
        return "python workers" if "pyspark" in cmdline and ("daemon" in cmdline or "worker" in cmdline) else "python"
    return "other"


class TreeMeter:
    """RSS and CPU of every process started below this one while it runs, and of those processes until they
    exit (Spark's JVM outlives the Python driver that started it and is then no longer our descendant)."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.procs: dict[tuple[int, int], dict] = {}  # (pid, start time) -> kind, peak, cpu
        self.peak_together = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        table = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (st := _stat(int(entry))) is not None:
                table[int(entry)] = st
        ours = {pid for pid, start in self.procs if pid in table and table[pid][1] == start}  # seen before
        stack = [pid for pid, st in table.items() if st[0] == me]
        while stack:
            pid = stack.pop()
            ours.add(pid)
            stack.extend(p for p, st in table.items() if st[0] == pid and p not in ours)
        together = 0
        for pid in ours:
            _, start, cpu, rss = table[pid]
            entry = self.procs.setdefault((pid, start), {"kind": "other", "peak": 0, "cpu": 0.0})
            if entry["kind"] == "other":  # Spark's launcher script becomes the JVM (exec) under the same pid
                entry["kind"] = _kind(pid)
            entry["peak"] = max(entry["peak"], rss, _high_water_mark(pid))
            entry["cpu"] = max(entry["cpu"], cpu)
            together += rss
        self.peak_together = max(self.peak_together, together)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the processes it saw have exited
            self._sample()
            alive = [pid for pid, start in self.procs if (st := _stat(pid)) is not None and st[1] == start]
            if not alive:
                break
            time.sleep(self.interval_s)
        self._stop.set()
        self._thread.join()

    def by_kind(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for entry in self.procs.values():
            k = out.setdefault(entry["kind"], {"peak_mib": 0.0, "cpu_s": 0.0})
            k["peak_mib"] = max(k["peak_mib"], entry["peak"] / 1024**2)
            k["cpu_s"] += entry["cpu"]
        return out


def spark_tasks(event_dir: Path) -> dict[str, float]:
    """Tasks and their executor time from the Spark event logs in `event_dir` (none if Spark never started)."""
    tasks, run_ms, cpu_ns = 0, 0, 0
    for log in event_dir.glob("*"):
        for line in log.read_text(errors="replace").splitlines():
            if '"SparkListenerTaskEnd"' not in line:
                continue
            metrics = json.loads(line).get("Task Metrics") or {}
            tasks += 1
            run_ms += metrics.get("Executor Run Time", 0)
            cpu_ns += metrics.get("Executor CPU Time", 0)
    return {"spark_apps": len(list(event_dir.glob("*"))), "tasks": tasks,
            "executor_run_s": round(run_ms / 1000, 2), "executor_cpu_s": round(cpu_ns / 1e9, 2)}


# ---- the job runs ----------------------------------------------------------------------------------


def _rows(settings, t, where: dict) -> int:
    """Rows of a table's partitions in its current snapshot (from the data files' records in the metadata)."""
    from crypto_assets.lake.snapshots import snapshot_files
    from crypto_assets.orchestration.resources.lake import LakeResource

    _, files = snapshot_files(LakeResource.from_settings(settings).table(t), where)
    return sum(f.records for f in files)


def _local_glue():
    """The tests' local Glue runner module (it imports the Dagster definitions: their beta warnings are noise here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crypto_assets_tests.support import local_glue
    return local_glue


def run_job(runner_args, job: str, arguments: dict[str, str], scratch: Path) -> dict:
    """One run of `job` through the local Glue runner, measured."""
    LocalGlueRunner = _local_glue().LocalGlueRunner  # noqa: N806 - a class

    glue, endpoint, settings = runner_args
    events = scratch / f"events-{job}"
    events.mkdir(parents=True)
    runner = LocalGlueRunner(glue, endpoint, settings, extra_conf={
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri()})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    with CpuWindow() as machine, TreeMeter() as meter:
        run_id = runner.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
    wall = time.perf_counter() - clock
    if note := contention_note(machine.others_cores):
        print(f"{job}: {note}", flush=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = runner.runs[run_id]
    if run["state"] != "SUCCEEDED":
        raise SystemExit(f"{job} ended {run['state']}: {run.get('error')}\n{run.get('stderr', '')[-3000:]}")
    kinds = meter.by_kind()
    python = kinds.get("python", {"peak_mib": 0.0, "cpu_s": 0.0})
    # The script's process was waited for: its CPU time is exact (the sampled one may miss its last 0.1 s).
    python["cpu_s"] = max(python["cpu_s"], (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    jvm = kinds.get("jvm", {"peak_mib": 0.0, "cpu_s": 0.0})
    workers = kinds.get("python workers", {"peak_mib": 0.0, "cpu_s": 0.0})
    return {
        "wall_s": round(wall, 1),
        "python_peak_mib": round(python["peak_mib"]), "jvm_peak_mib": round(jvm["peak_mib"]),
        "python_workers_peak_mib": round(workers["peak_mib"]), "together_peak_mib": round(meter.peak_together / 1024**2),
        "python_cpu_s": round(python["cpu_s"], 1), "jvm_cpu_s": round(jvm["cpu_s"], 1),
        "python_workers_cpu_s": round(workers["cpu_s"], 1),
        **spark_tasks(events), "others_avg_cores": round(machine.others_cores, 2),
    }


def idle_driver_jvm(settings) -> dict:
    """An idle Spark driver JVM as the entry scripts start one (`glue_session`, local[1], 1 GB heap), after
    a trivial job: what a Glue driver holds beside the script in any case."""
    local_glue = _local_glue()
    code = ("from crypto_assets.glue_jobs.jobs import glue_session\n"
            "spark = glue_session({'aws_region': 'us-east-1'})\n"
            "spark.range(1000).count()\n"
            "import time; time.sleep(3)\n")
    with TreeMeter() as meter:
        subprocess.run([sys.executable, "-c", code], env=local_glue.glue_script_env(settings, local_glue.REPO),
                       check=True, capture_output=True, cwd=os.sep)
    kinds = meter.by_kind()
    return {"jvm_peak_mib": round(kinds.get("jvm", {}).get("peak_mib", 0)),
            "python_peak_mib": round(kinds.get("python", {}).get("peak_mib", 0))}


def sizing(jobs: dict[str, dict], idle_jvm_mib: float) -> dict:
    """The smallest worker type whose memory holds the driver's peak (with the idle Spark JVM a Glue driver
    runs anyway, unless the job started one itself) times the margin; the minimum of workers unless
    Spark ran tasks that executors could take."""
    need_mib = max(j["python_peak_mib"] + j["python_workers_peak_mib"] + max(j["jvm_peak_mib"], idle_jvm_mib)
                   for j in jobs.values())
    worker, vcpus, gib = next(w for w in WORKER_TYPES if w[2] * 1024 >= need_mib * MEMORY_MARGIN)
    task_share = max(j["executor_run_s"] / max(j["wall_s"], 1e-9) for j in jobs.values())
    return {"worker_type": worker, "workers": MIN_WORKERS, "worker_memory_gib": gib, "worker_vcpus": vcpus,
            "driver_need_mib": round(need_mib), "memory_margin": round(gib * 1024 / need_mib, 1),
            "spark_task_share_of_wall": round(task_share, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--tickers", type=int, default=2_000_000)
    ap.add_argument("--phase", choices=["all", "data"], default="all", help=argparse.SUPPRESS)
    args = ap.parse_args()
    settings = bench_settings("bench_glue_sizing")
    if args.phase == "data":
        data_phase(settings, args.trades, args.tickers)
        return

    import boto3
    from bench_silver import DAY
    from moto.server import ThreadedMotoServer

    from crypto_assets.contracts.glue_jobs import job_name
    from crypto_assets.contracts.tables import gold_table_def, silver_table_def
    from crypto_assets.tools.aws_deploy import build_wheel, deploy
    from crypto_assets_tests.conftest import free_port
    from crypto_assets_tests.support.aws import DUMMY_AWS_ENV

    info = machine_info()
    print(machine_line(info), flush=True)
    reset_dir(settings.lake_root)
    subprocess.run([sys.executable, __file__, "--phase", "data", "--trades", str(args.trades), "--tickers",
                    str(args.tickers)], check=True)

    os.environ.update(DUMMY_AWS_ENV)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: one line per request otherwise
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"sizing-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    aws = settings.replace(lake_root=f"s3://{bucket}/lake", s3_endpoint_url=endpoint, aws_region="us-east-1",
                           compute="glue", glue_artifacts_root=f"s3://{bucket}/glue-artifacts",
                           glue_role_arn="arn:aws:iam::123456789012:role/sizing", glue_job_prefix="sizing")
    scratch = Path(tempfile.mkdtemp(prefix="bench-glue-sizing-", dir=Path(settings.state_dir)))
    deploy(aws, build_wheel(scratch / "wheel"))
    glue = boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1")
    runner_args = (glue, endpoint, settings)

    # The deployed jobs' default arguments, with the lake on local disk instead of moto's S3.
    partition = {"--lake_root": settings.lake_root, "--event_date": DAY.isoformat(), "--product_id": PRODUCT}
    figures: dict[str, dict] = {}
    written = {"product_id": PRODUCT, "event_date": DAY}
    for job, extra, table in (
            ("silver_trades", {"--require_bronze_day": "true"}, silver_table_def("trades")),
            ("silver_ticker", {"--require_bronze_day": "true"}, silver_table_def("ticker")),
            ("gold_features", {}, gold_table_def())):
        f = run_job(runner_args, job_name(aws.glue_job_prefix, job), {**partition, **extra}, scratch)
        f["rows_written"] = _rows(settings, table, written)
        figures[job] = f
        print(f"{job} {PRODUCT} {DAY}: {f['rows_written']:,} rows written in {f['wall_s']} s; driver peak RSS: "
              f"Python {f['python_peak_mib']:,} MiB, Spark JVM {f['jvm_peak_mib']:,} MiB, Spark's Python workers "
              f"{f['python_workers_peak_mib']:,} MiB, all at once {f['together_peak_mib']:,} MiB; CPU: Python "
              f"{f['python_cpu_s']} s, JVM {f['jvm_cpu_s']} s, Python workers {f['python_workers_cpu_s']} s; "
              f"Spark: {f['spark_apps']} application(s), {f['tasks']} tasks, executor run time "
              f"{f['executor_run_s']} s (CPU {f['executor_cpu_s']} s)", flush=True)
    idle = idle_driver_jvm(settings)
    print(f"an idle Spark driver JVM as the entry scripts start it: {idle['jvm_peak_mib']:,} MiB", flush=True)
    chosen = sizing(figures, idle["jvm_peak_mib"])
    print(f"sizing: Silver and Gold need the driver only (Spark tasks: {chosen['spark_task_share_of_wall']:.1%} of the "
          f"wall time at most): {chosen['workers']} x {chosen['worker_type']} (Glue's minimum of workers; "
          f"{chosen['worker_memory_gib']} GiB per worker, {chosen['memory_margin']}x the driver's largest need of "
          f"{chosen['driver_need_mib']:,} MiB including an idle Spark JVM)", flush=True)
    configured = (settings.glue_silver_gold_worker_type, settings.glue_silver_gold_workers)
    deployed = f"{configured[1]} x {configured[0]}"
    same = (chosen["worker_type"], chosen["workers"]) == configured
    print(f"`crypto-pipeline aws deploy` sizes the Silver and Gold jobs {deployed} by default: "
          f"{'the same' if same else 'DIFFERENT: update the defaults of CRYPTO_GLUE_SILVER_GOLD_WORKER_TYPE / _WORKERS and the README'}", flush=True)
    moto.stop()
    summary = {"benchmark": "bench_glue_sizing", "machine": info, "trades": args.trades, "tickers": args.tickers,
               "product": PRODUCT, "jobs": figures, "idle_driver_jvm_mib": idle["jvm_peak_mib"], "sizing": chosen}
    write_result("bench_glue_sizing", summary)
    print_result(summary)


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    main()
