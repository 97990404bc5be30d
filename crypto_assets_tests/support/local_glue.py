"""Plays AWS Glue's job runner on this machine, in front of moto's Glue API.

moto stores jobs and job runs but runs nothing. `LocalGlueRunner` wraps a boto3 Glue client
(talking to moto's server): `start_job_run` registers the run with moto, fetches the job's
script and its `--extra-py-files` (the wheel deploy shipped) from (moto's) S3 as Glue would, runs
the script in a subprocess on local Spark with the merged default + run arguments and only that
wheel as our code, and ships the run's stdout/stderr to CloudWatch Logs (`/aws-glue/jobs/output|error`,
stream = run id) as Glue does, where Dagster Pipes reads the messages. `get_job_run` then reports the
run's final state. Only `awsglue` is a stand-in; Dagster, and the development checkout, are kept out
of the subprocess as Glue keeps them out (`awsglue_stub/sitecustomize.py`). What Glue does with a
job's special arguments is played too: `--datalake-formats iceberg` puts Iceberg's jars (Spark runtime
and AWS bundle) on the classpath, and `--conf k=v --conf ...` goes into the session's settings before it
starts. `local_glue_resources` hands the Dagster assets a Glue compute whose runs go through it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.jars import spark_iceberg_jars, spark_kafka_jars, spark_s3_jars
from crypto_assets.lake.store import split_s3
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.glue import GlueCompute

STUB = Path(__file__).resolve().parent / "awsglue_stub"
REPO = Path(__file__).resolve().parents[2]
LOG_GROUP = "/aws-glue/jobs"


def glue_conf(value: str) -> dict[str, str]:
    """The Spark settings of Glue's `--conf` argument (`k=v --conf k=v ...`)."""
    pairs = (item.strip().partition("=") for item in value.split(" --conf ") if item.strip())
    return {k: v for k, _, v in pairs}


def spark_conf_dir(settings, extra_conf: dict[str, str] | None = None, datalake_formats: str = "") -> str:
    """Glue hands its scripts a ready SparkContext; locally a spark-defaults.conf plays that part
    (`extra_conf`: more Spark settings, such as a job's `--conf` or an event log for the sizing benchmark;
    `datalake_formats`: a job's `--datalake-formats`, `iceberg` adds Iceberg's jars as Glue does)."""
    conf_dir = Path(tempfile.mkdtemp(prefix="glue-spark-conf-"))
    iceberg = spark_iceberg_jars(settings) if "iceberg" in datalake_formats.split(",") else []
    jars = ",".join(str(j) for j in [*spark_kafka_jars(settings), *spark_s3_jars(settings), *iceberg])
    scratch = Path(settings.state_dir) / "glue-local"
    scratch.mkdir(parents=True, exist_ok=True)
    conf = {
        "spark.master": "local[1]",
        "spark.jars": jars,
        "spark.driver.memory": "1g",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.system.home={scratch}",
        "spark.pyspark.python": sys.executable,
        **(extra_conf or {}),
    }
    (conf_dir / "spark-defaults.conf").write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    (conf_dir / "log4j2.properties").write_text(
        "rootLogger.level = warn\nrootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = %d %p %c: %m%n\n")
    return str(conf_dir)


def glue_script_env(settings, code: str | Path = REPO, extra_conf: dict[str, str] | None = None,
                    datalake_formats: str = "") -> dict[str, str]:
    """The environment a Glue entry script runs in locally: the awsglue stand-in (and the import guard beside
    it) and our code on the path: the shipped wheel, as in Glue, or the repository. The AWS credentials and
    region of the environment (the moto fixtures' dummy ones) reach the JVM too, for Iceberg's S3 and Glue
    clients."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(STUB), str(code)]),
        "SPARK_CONF_DIR": spark_conf_dir(settings, extra_conf, datalake_formats),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }


class LocalGlueRunner:
    def __init__(self, glue_client, endpoint_url: str, settings, seconds_per_timeout_minute: float = 60.0,
                 stay_running: bool = False, extra_conf: dict[str, str] | None = None):
        self._client = glue_client
        self.meta = glue_client.meta
        self.endpoint_url = endpoint_url
        self.settings = settings
        self.seconds_per_timeout_minute = seconds_per_timeout_minute
        self.stay_running = stay_running  # a run that never reaches a final state (for the client's deadline)
        self.extra_conf = extra_conf
        self.runs: dict[str, dict] = {}
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1")
        self.logs = boto3.client("logs", endpoint_url=endpoint_url, region_name="us-east-1")
        self.exceptions = glue_client.exceptions

    def __getattr__(self, name):
        return getattr(self._client, name)

    def start_job_run(self, **params):
        run_id = self._client.start_job_run(**params)["JobRunId"]
        job = self._client.get_job(JobName=params["JobName"])["Job"]
        arguments = {**job.get("DefaultArguments", {}), **(params.get("Arguments") or {})}
        timeout_min = params.get("Timeout") or job.get("Timeout") or 2880
        self.runs[run_id] = {"state": "RUNNING", "arguments": arguments}
        if self.stay_running:
            return {"JobRunId": run_id}
        folder = Path(tempfile.mkdtemp(prefix="glue-run-"))
        script = self._fetch(job["Command"]["ScriptLocation"], folder)
        wheel = self._fetch(arguments["--extra-py-files"], folder)  # our code: only what deploy shipped
        special = {"--conf", "--datalake-formats"}  # Glue applies these itself; the script never sees them
        argv = [sys.executable, str(script), *(a for k, v in arguments.items() if k not in special for a in (k, v))]
        conf = {**glue_conf(arguments.get("--conf", "")), **(self.extra_conf or {})}
        env = glue_script_env(self.settings, wheel, conf, arguments.get("--datalake-formats", ""))
        started = time.time()
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=timeout_min * self.seconds_per_timeout_minute)
            state = "SUCCEEDED" if proc.returncode == 0 else "FAILED"
            stdout, stderr = proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            state = "TIMEOUT"
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        error_lines = [line for line in stderr.splitlines() if line.strip()]
        self.runs[run_id].update(
            state=state, seconds=time.time() - started, stdout=stdout, stderr=stderr,
            error=error_lines[-1] if state == "FAILED" and error_lines else "",
        )
        self._ship_logs(run_id, stdout, stderr)
        return {"JobRunId": run_id}

    def _fetch(self, uri: str, folder: Path) -> Path:
        bucket, key = split_s3(uri)
        path = folder / Path(key).name
        self.s3.download_file(bucket, key, str(path))
        return path

    def _ship_logs(self, run_id: str, stdout: str, stderr: str) -> None:
        for suffix, text in (("output", stdout), ("error", stderr)):
            group = f"{LOG_GROUP}/{suffix}"
            try:
                self.logs.create_log_group(logGroupName=group)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            self.logs.create_log_stream(logGroupName=group, logStreamName=run_id)
            now = int(time.time() * 1000)
            lines = [line for line in text.splitlines() if line.strip()] or ["(no output)"]
            for start in range(0, len(lines), 5000):
                self.logs.put_log_events(
                    logGroupName=group, logStreamName=run_id,
                    logEvents=[{"timestamp": now, "message": line} for line in lines[start:start + 5000]],
                )

    def batch_stop_job_run(self, JobName: str, JobRunIds: list[str]):  # noqa: N803 - boto3's names
        """Glue stops the runs it was asked to (moto's server has no BatchStopJobRun)."""
        done = []
        for run_id in JobRunIds:
            if run_id in self.runs:
                self.runs[run_id]["state"] = "STOPPED"
                done.append({"JobName": JobName, "JobRunId": run_id})
        return {"SuccessfulSubmissions": done, "Errors": []}

    def get_job_run(self, **params):
        response = self._client.get_job_run(**params)
        run = self.runs.get(params["RunId"])
        if run is not None:
            response["JobRun"]["JobRunState"] = run["state"]
            response["JobRun"]["LogGroupName"] = LOG_GROUP
            if run.get("error"):
                response["JobRun"]["ErrorMessage"] = run["error"]
        return response


# ---- the Dagster side: the glue compute with its runs played by LocalGlueRunner -------------------------

# Metadata Pipes adds to what a Glue run reports (the local compute has no such entries).
GLUE_ONLY_METADATA = {"AWS Glue Job Run ID", "AWS Glue Job Name", "AWS Glue Job Run URL", "glue_logs"}


def assert_glue_failure_line(message: str, job_name: str, cause: str) -> None:
    """A failed Glue run fails the Dagster step with one line: the job, its run id, the cause and its logs."""
    assert "\n" not in message, message
    assert message.startswith(f"Glue job {job_name} run jr_") and " ended FAILED: " in message
    assert cause in message
    assert message.endswith(f"logs: CloudWatch /aws-glue/jobs/error and /aws-glue/jobs/output, stream "
                            f"{message.split(' run ')[1].split()[0]}")


def assert_reports_like_local(local_md: dict, glue_md: dict, job_name: str, may_differ: tuple[str, ...]) -> None:
    """A Glue run's materialization metadata: the local compute's entries with the same values (except
    `may_differ`, such as paths on another lake), plus the job name, its run id and where its logs are."""
    assert glue_md["AWS Glue Job Name"] == job_name
    assert glue_md["AWS Glue Job Run ID"].startswith("jr_") and "/aws-glue/jobs/output" in glue_md["glue_logs"]
    assert set(glue_md) - GLUE_ONLY_METADATA == set(local_md)
    for k in local_md:
        if k not in may_differ:
            assert glue_md[k] == local_md[k], k


class LocalGlueCompute(GlueCompute):
    """The Glue compute with job runs played locally (moto stores runs but does not execute them)."""

    state_dir: str
    jvm_dir: str
    seconds_per_timeout_minute: float = 60.0
    stay_running: bool = False
    deadline_seconds: float = 0.0  # 0: GlueCompute's (Glue's timeout plus the margin)

    def glue_client(self):
        return LocalGlueRunner(super().glue_client(), self.endpoint_url,
                               Settings(state_dir=self.state_dir, jvm_dir=self.jvm_dir),
                               self.seconds_per_timeout_minute, self.stay_running)

    def wait_seconds(self) -> float:
        return self.deadline_seconds or super().wait_seconds()


def local_glue_resources(settings, **runner):
    """The definitions' resources for `settings` (compute = glue), with `compute` running its jobs through
    LocalGlueRunner; `runner` sets LocalGlueCompute's own fields."""
    resources = build_resources(settings)
    glue = resources["compute"]
    assert isinstance(glue, GlueCompute), f"CRYPTO_COMPUTE={settings.compute} binds {type(glue).__name__}"
    fields = {k: getattr(glue, k) for k in GlueCompute.model_fields}
    return {**resources, "compute": LocalGlueCompute(**fields, state_dir=settings.state_dir,
                                                     jvm_dir=settings.jvm_dir, **runner)}


def materialization_metadata(result) -> dict:
    """name -> value of the first materialization of a `materialize` result."""
    mat = result.get_asset_materialization_events()[0].materialization
    return {k: v.value for k, v in mat.metadata.items()}


def step_failure(result) -> str:
    """The description of a failed run's step failure (what the UI shows as the error)."""
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return event.step_failure_data.user_failure_data.description
