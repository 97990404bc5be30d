"""compute = glue: each Bronze (batch), Silver and Gold partition is one AWS Glue job run, through Dagster Pipes.

`GlueCompute` is the `compute` resource bound with `CRYPTO_COMPUTE=glue` (the interface is in
`resources/compute.py`). It starts `<prefix>-<job>` with dagster-aws's `PipesGlueClient`, using its
public API only (constructor and `run`): the context goes to S3, messages come back from the run's
CloudWatch log stream, and the Glue client it is given records the run for error messages and ends
the wait at a deadline. The run (an entry script in `glue/`) calls the same steps as the local
compute and reports the materialization and check results through Pipes, so the UI shows the same
metadata and checks. Every job argument is a setting. Any failure ends the Dagster step with one
line naming the Glue run and where its logs are.
"""

from __future__ import annotations

import time
from datetime import date

from dagster import MaterializeResult, MetadataValue

from crypto_assets.contracts.glue_jobs import (
    MAINTENANCE_JOB,
    bronze_batch_job,
    bronze_run_arguments,
    gold_run_arguments,
    job_name,
    kafka_arguments,
    lake_arguments,
    maintenance_arguments,
    maintenance_run_arguments,
    silver_run_arguments,
)
from crypto_assets.contracts.names import GOLD_ASSET, candles_asset, silver_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import TableDef
from crypto_assets.lake.maintenance import MaintenanceStats
from crypto_assets.lake.store import LakeUnavailableError, split_s3
from crypto_assets.orchestration.resources.compute import ComputeResource, step_failure
from crypto_assets.orchestration.resources.kafka import KafkaResource
from crypto_assets.orchestration.resources.lake import LakeResource

GLUE_LOG_GROUP = "/aws-glue/jobs"  # Glue's default: `<group>/output` (stdout), `<group>/error` (stderr)
FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")
# The final states PipesGlueClient stops polling at (it raises RuntimeError for all but SUCCEEDED).
PIPES_FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR")
# How long past Glue's own timeout Dagster keeps waiting for a final state before giving up.
WAIT_MARGIN_SECONDS = 600.0


class GlueRunError(RuntimeError):
    """Dagster stopped waiting for a Glue job run that reported no final state by the deadline."""


class GlueRunEnded(RuntimeError):
    """A Glue job run ended in a final state PipesGlueClient does not wait for (EXPIRED)."""


class ObservedGlueClient:
    """The boto3 Glue client handed to `PipesGlueClient(client=...)`: every call goes to boto3's client;
    it remembers the run id and the last job-run description (for the failure line) and ends the wait.

    PipesGlueClient polls `get_job_run` until the run reports a final state. Glue ends a run at its own
    timeout, but a Dagster run must not hang should Glue never say so: once the deadline has passed, the
    next poll asks Glue to stop the run and raises GlueRunError."""

    def __init__(self, client, deadline_seconds: float):
        self._client = client
        self.meta = client.meta
        self.deadline_seconds = deadline_seconds
        self.run_id: str | None = None
        self.last_run: dict = {}
        self._deadline: float | None = None

    def start_job_run(self, **kwargs):
        response = self._client.start_job_run(**kwargs)
        self.run_id = response["JobRunId"]
        self._deadline = time.monotonic() + self.deadline_seconds
        return response

    def get_job_run(self, **kwargs):
        response = self._client.get_job_run(**kwargs)
        self.last_run = response.get("JobRun", {})
        state = self.last_run.get("JobRunState", "")
        if state in FINAL_STATES and state not in PIPES_FINAL_STATES:
            raise GlueRunEnded(state)
        if state not in FINAL_STATES and self._deadline is not None and time.monotonic() > self._deadline:
            try:
                self._client.batch_stop_job_run(JobName=kwargs["JobName"], JobRunIds=[kwargs["RunId"]])
                stopping = "asked Glue to stop it"
            except Exception as exc:  # noqa: BLE001 - the failure below must name the run either way
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                stopping = f"could not ask Glue to stop it ({first})"
            raise GlueRunError(f"no final state after {self.deadline_seconds:.0f} s (still {state}); {stopping}")
        return response

    def __getattr__(self, name):
        return getattr(self._client, name)


def glue_logs(glue: ObservedGlueClient, output_only: bool = False) -> str:
    """Where a run's logs are: its stream in Glue's CloudWatch groups (stdout, and stderr unless `output_only`)."""
    group = glue.last_run.get("LogGroupName") or GLUE_LOG_GROUP
    run_id = glue.run_id or "(not started)"
    return f"{group}/output, stream {run_id}" if output_only else (
        f"{group}/error and {group}/output, stream {run_id}")


class GlueCompute(ComputeResource):
    """compute = glue: where the Glue jobs are and how long to wait for them; every field is a setting."""

    lake: LakeResource
    kafka: KafkaResource
    job_prefix: str
    aws_region: str
    endpoint_url: str
    artifacts_root: str
    timeout_minutes: int
    # Secrets Manager secret the Bronze jobs read SASL credentials from (the password is never an argument).
    kafka_sasl_secret_id: str

    @classmethod
    def from_settings(cls, settings: Settings, lake: LakeResource, kafka: KafkaResource) -> GlueCompute:
        return cls(
            lake=lake, kafka=kafka, job_prefix=settings.glue_job_prefix, aws_region=settings.aws_region,
            endpoint_url=settings.s3_endpoint_url, artifacts_root=settings.glue_artifacts_root,
            timeout_minutes=settings.glue_timeout_minutes, kafka_sasl_secret_id=settings.kafka_sasl_secret_id,
        )

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.aws_region, endpoint_url=self.endpoint_url or None)

    def glue_client(self):
        """The Glue API client job runs are started with (tests hand in one that runs the script locally)."""
        return self.client("glue")

    def wait_seconds(self) -> float:
        """How long Dagster waits for a run's final state: Glue's timeout plus a margin."""
        return self.timeout_minutes * 60 + WAIT_MARGIN_SECONDS

    # ---- the job arguments of one run: the lake's and the partition's (deploy sets the rest) ----------

    def _lake_arguments(self) -> dict[str, str]:
        lake = self.lake
        return lake_arguments(lake.root, self.aws_region, self.endpoint_url, lake.glue_database, lake.commit_retries)

    def bronze_arguments(self, kind: str, day: date, rules: SilverRules) -> dict[str, str]:
        """One Bronze ingest day; the Kafka settings of Dagster's Kafka resource (the job computes the day's
        offset window itself, as the local step does)."""
        kafka = self.kafka
        return {
            **self._lake_arguments(), **bronze_run_arguments(day, rules.allowed_lateness_days),
            **kafka_arguments(kafka.bootstrap_servers, kafka.topic_for(kind), kafka.timestamp_skew_minutes,
                              kafka.security_protocol, kafka.sasl_mechanism, self.kafka_sasl_secret_id),
        }

    def silver_arguments(self, day: date, product: str, rules: SilverRules, require_bronze_day: bool,
                         full: bool = False) -> dict[str, str]:
        return {**self._lake_arguments(),
                **silver_run_arguments(day, product, rules.allowed_lateness_days, require_bronze_day, full)}

    def gold_arguments(self, day: date, product: str, full: bool = False) -> dict[str, str]:
        return {**self._lake_arguments(), **gold_run_arguments(day, product, full)}

    def maintenance_arguments(self, t: TableDef, retention_hours: int, max_snapshots: int) -> dict[str, str]:
        return {**self._lake_arguments(), **maintenance_arguments(retention_hours, max_snapshots),
                **maintenance_run_arguments(t.identifier)}

    # ---- the compute interface -------------------------------------------------------------------------

    def bronze_day(self, context, kind, day, rules):
        self._check_lake()
        return self.run_job(context, bronze_batch_job(kind), self.bronze_arguments(kind, day, rules))

    def silver_partition(self, context, kind, day, product, rules, require_bronze_day, full=False):
        self._check_lake()
        return self.run_job(context, silver_asset(kind),
                            self.silver_arguments(day, product, rules, require_bronze_day, full))

    def gold_partition(self, context, day, product, full=False):
        self._check_lake()
        return self.run_job(context, GOLD_ASSET, self.gold_arguments(day, product, full))

    def candles_partition(self, context, interval, day, product, full=False):
        self._check_lake()  # the same per-run arguments as Gold: the partition, the lake, --full
        return self.run_job(context, candles_asset(interval), self.gold_arguments(day, product, full))

    def maintain_table(self, context, t, retention_hours, max_snapshots):
        """One run of the maintenance job for `t`; the run reports its statistics as a Pipes custom message."""
        self._check_lake()
        arguments = self.maintenance_arguments(t, retention_hours, max_snapshots)
        invocation, _, describe = self._run(context, MAINTENANCE_JOB, arguments)
        reports = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and m.get("table") == t.identifier]
        if not reports:
            run, logs = describe()
            raise step_failure(f"{run} succeeded but reported no maintenance statistics through Dagster Pipes; {logs}")
        return MaintenanceStats(**reports[-1])

    def _check_lake(self) -> None:
        """A Glue job needs the lake in an S3 bucket that exists, and an S3 folder for the Pipes context."""
        lake = self.lake
        if not lake.on_s3:
            raise step_failure(f"CRYPTO_COMPUTE=glue needs the lake in S3, but CRYPTO_LAKE_ROOT={lake.root}: set it to "
                               f"s3://bucket/prefix (or use CRYPTO_COMPUTE=local)")
        if lake.catalog != "glue":
            raise step_failure(f"CRYPTO_COMPUTE=glue needs the tables in the Glue Data Catalog, but CRYPTO_CATALOG="
                               f"{lake.catalog}: leave it empty (or set it to glue) for an S3 lake")
        try:
            lake.check()
        except LakeUnavailableError as exc:
            raise step_failure(str(exc)) from None
        if not self.artifacts_root:
            raise step_failure("CRYPTO_GLUE_ARTIFACTS_ROOT is not set (an s3:// folder for the Pipes context): set it, or "
                               "use an s3:// CRYPTO_LAKE_ROOT so it defaults to the lake's bucket")

    def run_job(self, context, job: str, arguments: dict[str, str]) -> MaterializeResult:
        """Starts `<prefix>-<job>` with the arguments, waits, and returns the materialization the run reported
        through Pipes."""
        invocation, glue, describe = self._run(context, job, arguments)
        run, logs = describe()
        results = invocation.get_results(implicit_materializations=False)
        if not any(isinstance(r, MaterializeResult) for r in results):
            raise step_failure(f"{run} succeeded but reported nothing through Dagster Pipes; {logs}")
        result = invocation.get_materialize_result(implicit_materialization=False)
        metadata = {**(result.metadata or {}), "glue_logs": MetadataValue.text(glue_logs(glue, output_only=True))}
        return MaterializeResult(asset_key=result.asset_key, metadata=metadata, check_results=result.check_results,
                                 data_version=result.data_version)

    def _run(self, context, job: str, arguments: dict[str, str]):
        """Starts `<prefix>-<job>` with the arguments and waits for it through Pipes: (the completed invocation,
        the observed Glue client, a function naming the run and its logs); any failure is the step's one line."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        name = job_name(self.job_prefix, job)
        bucket, prefix = split_s3(self.artifacts_root)
        # Imported on first use: dagster-aws costs every run process ~0.4 s to import, and only this compute needs it.
        from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesGlueClient, PipesS3ContextInjector

        glue = ObservedGlueClient(self.glue_client(), self.wait_seconds())
        pipes = PipesGlueClient(
            client=glue,
            context_injector=PipesS3ContextInjector(bucket=bucket, client=self.client("s3"),
                                                    key_prefix=f"{prefix}/pipes".strip("/")),
            message_reader=PipesCloudWatchMessageReader(client=self.client("logs")),
            forward_termination=True,
        )
        params = {"JobName": name, "Arguments": dict(arguments), "Timeout": self.timeout_minutes}

        def describe() -> tuple[str, str]:
            return f"Glue job {name} run {glue.run_id or '(not started)'}", f"logs: CloudWatch {glue_logs(glue)}"

        try:
            invocation = pipes.run(context=context, start_job_run_params=params)
        except NoCredentialsError:
            raise step_failure(f"no AWS credentials to start Glue job {name}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                               f"or AWS_PROFILE (or run where an IAM role is attached)") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "EntityNotFoundException":
                raise step_failure(f"Glue job {name} does not exist in {self.aws_region}: run `crypto-pipeline aws "
                                   f"deploy` (or check CRYPTO_GLUE_JOB_PREFIX)") from None
            if code in ("NoSuchBucket", "404"):
                raise step_failure(f"S3 bucket {bucket!r} for the Glue artifacts/Pipes context does not exist: create it "
                                   f"or fix CRYPTO_GLUE_ARTIFACTS_ROOT") from None
            run, logs = describe()
            raise step_failure(f"{run}: AWS refused {exc.operation_name} ({code}: "
                               f"{exc.response['Error'].get('Message', '')}); {logs}") from None
        except GlueRunError as exc:
            run, logs = describe()
            raise step_failure(f"{run}: {exc}; {logs}") from None
        except RuntimeError:  # PipesGlueClient (or GlueRunEnded): the run ended in a state other than SUCCEEDED
            state = glue.last_run.get("JobRunState", "")
            if state in ("", "SUCCEEDED"):
                raise
            run, logs = describe()
            if state == "TIMEOUT":
                what = f"timed out after {self.timeout_minutes} min (CRYPTO_GLUE_TIMEOUT_MINUTES)"
            else:
                message = (glue.last_run.get("ErrorMessage") or "no error message").strip().splitlines()[-1]
                what = f"ended {state}: {message}"
            raise step_failure(f"{run} {what}; {logs}") from None
        except BotoCoreError as exc:
            raise step_failure(f"AWS not reachable to start Glue job {name}: {exc}") from None
        return invocation, glue, describe
