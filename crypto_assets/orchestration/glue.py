"""The Dagster side of the Glue engine: launch a partition's Glue job run through Dagster Pipes.

With `CRYPTO_COMPUTE=glue` the Bronze (batch), Silver and Gold assets call `bronze_on_glue`,
`silver_on_glue` and `gold_on_glue` instead of the local steps. The job run (an entry script in `glue/`) calls the same steps and reports the
materialization and check results through Pipes (context in S3, messages in the run's
CloudWatch log stream), so the UI shows the same metadata and checks as a local run. Any
failure ends the Dagster step with one line naming the Glue run and where its logs are.
"""

from __future__ import annotations

import functools
import time

from dagster import ConfigurableResource, Failure, MaterializeResult, MetadataValue

from crypto_assets.contracts.glue_jobs import bronze_batch_job, job_name
from crypto_assets.contracts.names import GOLD_ASSET, silver_asset
from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.store import LakeUnavailableError, split_s3, to_s3

GLUE_LOG_GROUP = "/aws-glue/jobs"  # Glue's default: `<group>/output` (stdout), `<group>/error` (stderr)
FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")


class GlueRunError(RuntimeError):
    """A Glue job run did not succeed; the message names the run and its logs."""


class _RecordingGlueClient:
    """The boto3 Glue client, remembering the last run id and job-run response for error messages."""

    def __init__(self, client):
        self._client = client
        self.meta = client.meta
        self.run_id: str | None = None
        self.last_run: dict = {}

    def start_job_run(self, **kwargs):
        response = self._client.start_job_run(**kwargs)
        self.run_id = response["JobRunId"]
        return response

    def get_job_run(self, **kwargs):
        response = self._client.get_job_run(**kwargs)
        self.last_run = response.get("JobRun", {})
        return response

    def __getattr__(self, name):
        return getattr(self._client, name)


@functools.cache
def _pipes_glue_client_class():
    """Defined on first use: dagster-aws costs every run process ~0.4 s to import, and only the Glue
    engine needs it."""
    from dagster_aws.pipes import PipesGlueClient

    class _PipesGlueClient(PipesGlueClient):
        """PipesGlueClient that polls at our interval and stops waiting (and the run) at a deadline:
        Glue ends a run at its own timeout, but a Dagster run must not hang if it never says so."""

        def __init__(self, *args, poll_seconds: float, deadline_seconds: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.poll_seconds = poll_seconds
            self.deadline_seconds = deadline_seconds

        def _wait_for_job_run_completion(self, job_name: str, run_id: str):
            deadline = time.monotonic() + self.deadline_seconds
            while True:
                response = self._client.get_job_run(JobName=job_name, RunId=run_id)
                if response["JobRun"]["JobRunState"] in FINAL_STATES:
                    return response
                if time.monotonic() > deadline:
                    try:
                        self._client.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id])
                        stopping = "asked Glue to stop it"
                    except Exception as exc:  # noqa: BLE001 - the failure below must name the run either way
                        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                        stopping = f"could not ask Glue to stop it ({first})"
                    raise GlueRunError(
                        f"no final state after {self.deadline_seconds:.0f} s (still "
                        f"{response['JobRun']['JobRunState']}); {stopping}"
                    )
                time.sleep(self.poll_seconds)

    return _PipesGlueClient


class GlueEngineResource(ConfigurableResource):
    """Where the Glue jobs are and how long to wait for them (the `glue` engine's resource)."""

    job_prefix: str = "crypto-lakehouse"
    aws_region: str = "us-east-1"
    endpoint_url: str = ""
    artifacts_root: str = ""
    timeout_minutes: int = 60
    poll_seconds: float = 10.0
    # How long past Glue's own timeout we keep waiting for a final state before giving up.
    wait_margin_seconds: float = 600.0
    deadline_seconds: float = 0.0  # 0 = timeout_minutes * 60 + wait_margin_seconds
    glue_database: str = "crypto_lakehouse"
    # Secrets Manager secret the Bronze jobs read SASL credentials from (the password is never an argument).
    kafka_sasl_secret_id: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> GlueEngineResource:
        return cls(
            job_prefix=settings.glue_job_prefix, aws_region=settings.aws_region, endpoint_url=settings.s3_endpoint_url,
            artifacts_root=settings.glue_artifacts_root, timeout_minutes=settings.glue_timeout_minutes,
            glue_database=settings.glue_database, kafka_sasl_secret_id=settings.kafka_sasl_secret_id,
        )

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.aws_region, endpoint_url=self.endpoint_url or None)

    def glue_client(self):
        """The Glue API client job runs are started with (tests hand in one that runs the script locally)."""
        return self.client("glue")


def _lake_args(lake) -> dict[str, str]:
    args = {"--lake_root": to_s3(lake.root), "--aws_region": lake.aws_region}
    if lake.s3_endpoint_url:
        args["--s3_endpoint_url"] = lake.s3_endpoint_url
    return args


def _failure(message: str) -> Failure:
    return Failure(description=message, allow_retries=False)


def run_glue_job(context, glue: GlueEngineResource, lake, job: str, arguments: dict[str, str]) -> MaterializeResult:
    """Starts `<prefix>-<job>` with the arguments, waits, and returns what the run reported through Pipes."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if not lake.on_s3:
        raise _failure(f"CRYPTO_COMPUTE=glue needs the lake in S3, but CRYPTO_LAKE_ROOT={lake.root}: set it to "
                       f"s3://bucket/prefix (or use CRYPTO_COMPUTE=local)")
    try:
        lake.check()
    except LakeUnavailableError as exc:
        raise _failure(str(exc)) from None
    if not glue.artifacts_root:
        raise _failure("CRYPTO_GLUE_ARTIFACTS_ROOT is not set (an s3:// folder for the Pipes context): set it, or use an "
                       "s3:// CRYPTO_LAKE_ROOT so it defaults to the lake's bucket")
    name = job_name(glue.job_prefix, job)
    bucket, prefix = split_s3(glue.artifacts_root)
    from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesS3ContextInjector

    recorder = _RecordingGlueClient(glue.glue_client())
    pipes = _pipes_glue_client_class()(
        client=recorder,
        context_injector=PipesS3ContextInjector(bucket=bucket, client=glue.client("s3"),
                                                key_prefix=f"{prefix}/pipes".strip("/")),
        message_reader=PipesCloudWatchMessageReader(client=glue.client("logs")),
        forward_termination=True,
        poll_seconds=glue.poll_seconds,
        deadline_seconds=glue.deadline_seconds or glue.timeout_minutes * 60 + glue.wait_margin_seconds,
    )
    params = {"JobName": name, "Arguments": {**_lake_args(lake), **arguments}, "Timeout": glue.timeout_minutes}

    def describe() -> tuple[str, str]:
        run = recorder.last_run
        group = run.get("LogGroupName") or GLUE_LOG_GROUP
        run_id = recorder.run_id or "(not started)"
        return f"Glue job {name} run {run_id}", f"logs: CloudWatch {group}/error and {group}/output, stream {run_id}"

    try:
        invocation = pipes.run(context=context, start_job_run_params=params)
    except NoCredentialsError:
        raise _failure(f"no AWS credentials to start Glue job {name}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                       f"AWS_PROFILE (or run where an IAM role is attached)") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "EntityNotFoundException":
            raise _failure(f"Glue job {name} does not exist in {glue.aws_region}: run `crypto-pipeline aws deploy` "
                           f"(or check CRYPTO_GLUE_JOB_PREFIX)") from None
        if code in ("NoSuchBucket", "404"):
            raise _failure(f"S3 bucket {bucket!r} for the Glue artifacts/Pipes context does not exist: create it or "
                           f"fix CRYPTO_GLUE_ARTIFACTS_ROOT") from None
        run, logs = describe()
        raise _failure(f"{run}: AWS refused {exc.operation_name} ({code}: {exc.response['Error'].get('Message', '')}); "
                       f"{logs}") from None
    except GlueRunError as exc:
        run, logs = describe()
        raise _failure(f"{run}: {exc}; {logs}") from None
    except RuntimeError:  # PipesGlueClient: the run ended in a state other than SUCCEEDED
        state = recorder.last_run.get("JobRunState", "")
        if state in ("", "SUCCEEDED"):
            raise
        run, logs = describe()
        if state == "TIMEOUT":
            what = f"timed out after {glue.timeout_minutes} min (CRYPTO_GLUE_TIMEOUT_MINUTES)"
        else:
            what = f"ended {state}: {(recorder.last_run.get('ErrorMessage') or 'no error message').strip().splitlines()[-1]}"
        raise _failure(f"{run} {what}; {logs}") from None
    except BotoCoreError as exc:
        raise _failure(f"AWS not reachable to start Glue job {name}: {exc}") from None
    run, logs = describe()
    results = invocation.get_results(implicit_materializations=False)
    if not any(isinstance(r, MaterializeResult) for r in results):
        raise _failure(f"{run} succeeded but reported nothing through Dagster Pipes; {logs}")
    result = invocation.get_materialize_result(implicit_materialization=False)
    group = recorder.last_run.get("LogGroupName") or GLUE_LOG_GROUP
    metadata = {**(result.metadata or {}), "glue_logs": MetadataValue.text(f"{group}/output, stream {recorder.run_id}")}
    return MaterializeResult(asset_key=result.asset_key, metadata=metadata, check_results=result.check_results,
                             data_version=result.data_version)


def register_catalog_partitions(context, glue: GlueEngineResource, lake, tables: list[tuple[str, str]],
                                values: dict[str, str]) -> None:
    """After a materialization on an S3 lake: the written partitions into the Glue Data Catalog (idempotent).

    A catalog that was never deployed is not an error for the materialization: it says so once."""
    if not lake.on_s3:
        return
    from botocore.exceptions import ClientError

    from crypto_assets.lake.glue_catalog import register_partitions, table_for

    client = glue.client("glue")
    for layer, table in tables:
        t = table_for(layer, table)
        if not lake.data_files(lake.partition_path(layer, table, **values)):
            continue
        try:
            added = register_partitions(client, glue.glue_database, t, lake, [values])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                context.log.warning(f"Glue catalog table {glue.glue_database}.{t.name} not found, partition not "
                                    f"registered: run `crypto-pipeline aws deploy` to create the catalog")
                return
            raise
        if added:
            context.log.info(f"registered partition {values} of {glue.glue_database}.{t.name} in the Glue catalog")


def silver_on_glue(context, glue: GlueEngineResource, lake, kind: str, day: str, product: str,
                   allowed_lateness_days: int, bronze_materialized: bool) -> MaterializeResult:
    arguments = {
        "--event_date": day, "--product_id": product, "--allowed_lateness_days": str(allowed_lateness_days),
        # The local asset's rule: a Bronze day that ran and found nothing gives an empty Silver, not an error.
        "--require_bronze_day": "false" if bronze_materialized else "true",
    }
    return run_glue_job(context, glue, lake, silver_asset(kind), arguments)


def gold_on_glue(context, glue: GlueEngineResource, lake, day: str, product: str) -> MaterializeResult:
    return run_glue_job(context, glue, lake, GOLD_ASSET, {"--event_date": day, "--product_id": product})


def _kafka_args(kafka, kind: str, secret_id: str) -> dict[str, str]:
    """The Dagster Kafka resource's cluster, topic and security settings as Bronze job arguments."""
    args = {
        "--kafka_bootstrap": kafka.bootstrap_servers, "--topic": kafka.topic_for(kind),
        "--kafka_timestamp_skew_minutes": str(kafka.timestamp_skew_minutes),
        "--kafka_security_protocol": kafka.security_protocol, "--kafka_sasl_mechanism": kafka.sasl_mechanism,
    }
    if secret_id:
        args["--kafka_sasl_secret_id"] = secret_id
    return args


def bronze_on_glue(context, glue: GlueEngineResource, lake, kafka, kind: str, day: str,
                   allowed_lateness_days: int) -> MaterializeResult:
    """One Bronze ingest day on Glue; the job computes the day's Kafka offset window itself, as the local asset does."""
    arguments = {"--ingest_date": day, "--allowed_lateness_days": str(allowed_lateness_days),
                 **_kafka_args(kafka, kind, glue.kafka_sasl_secret_id)}
    return run_glue_job(context, glue, lake, bronze_batch_job(kind), arguments)


def reported_products(result: MaterializeResult) -> list[str]:
    """The products a Bronze job run saw, from the metadata it reported."""
    entry = (result.metadata or {}).get("products")
    return list(entry.value) if entry is not None else []
