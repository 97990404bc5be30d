"""`crypto-pipeline aws deploy | destroy`: the Glue jobs, their code in S3, and the Glue Data Catalog.

deploy: build the package wheel, upload it and the entry scripts in `glue/` to the artifacts
folder, create or replace one Glue job per entry script (Iceberg enabled), create the catalog
database and the lake's Iceberg tables in it (`lake.catalog.create_tables`: the Glue Data Catalog is
the tables' Iceberg catalog, so every commit updates what Athena reads; no partitions to register),
save the README's example queries as Athena named queries (`<prefix>-<example>`, kept when they exist;
destroy leaves them: text only, and moto has no DeleteNamedQuery to test a removal against), and print the
Athena query that reads Gold. The jobs and the database carry the job prefix or a
`created_by` marker, the tables are the declared ones at this lake's locations, and the uploaded
keys are listed in a manifest, so destroy removes exactly that and nothing else (never the lake's
data). Running deploy again updates in place (idempotent).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from crypto_assets.contracts.glue_jobs import (
    GLUE_JOBS,
    STREAM_JOBS,
    job_arguments,
    job_name,
    kafka_kind,
    runs_spark_work,
)
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import TABLES, TableDef
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, create_tables
from crypto_assets.lake.store import Lake, LakeUnavailableError, is_s3, split_s3

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent.parent
GLUE_SCRIPTS = REPO / "glue"
MADE_BY = "crypto-pipeline aws deploy"
MANIFEST = "deploy-manifest.json"
# Inside Glue only these are installed from PyPI; our wheel goes on the path without its dependencies
# (pulling dagster and pyspark into Glue would replace Glue's own Spark). The Bronze batch jobs also
# need kafka-python, for the offset lookup by time. Pinned to the versions the tests run. Every job
# reads its settings' declaration (contracts.settings), so pydantic-settings goes too, at the version
# installed here (the one the tests ran). Every job opens the Iceberg tables with pyiceberg (Silver and Gold
# commit with it; Bronze reads its snapshots), with the Glue catalog's extra (boto3), not its pyarrow extra:
# Glue's own pyarrow stays.
PIPES_MODULE = "dagster-pipes==1.13.27"
KAFKA_CLIENT_MODULE = "kafka-python==3.0.12"
SETTINGS_MODULES = tuple(f"{name}=={metadata.version(name)}" for name in ("pydantic", "pydantic-settings"))
ICEBERG_MODULE = f"pyiceberg[glue]=={metadata.version('pyiceberg')}"
# Glue's own Iceberg (the runtime and AWS jars of its version): `--datalake-formats iceberg`.
DATALAKE_FORMATS = "iceberg"
# The sub-packages of crypto_assets the Glue jobs import (DESIGN.md: glue jobs use contracts, lake and the
# layers); only these are shipped. Tools, the Dagster orchestration and the producer run only locally.
GLUE_PACKAGES = ("contracts", "lake", "bronze", "silver", "gold", "glue_jobs")
ATHENA_WORKGROUP = "primary"  # Athena's default workgroup: the README's example queries are saved there


class DeployError(RuntimeError):
    """Deploy/destroy cannot go on; the message says what to fix."""


@dataclass
class DeployResult:
    jobs: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    athena_query: str = ""
    named_queries: list[str] = field(default_factory=list)  # the README's examples, as Athena named queries
    named_queries_kept: list[str] = field(default_factory=list)  # of those, the ones that existed already


def _client(settings: Settings, service: str):
    import boto3

    return boto3.client(service, region_name=settings.aws_region, endpoint_url=settings.s3_endpoint_url or None)


def _require(settings: Settings, for_deploy: bool = True) -> Lake:
    if not is_s3(settings.lake_root):
        raise DeployError(f"CRYPTO_LAKE_ROOT={settings.lake_root} is not in S3: set it to s3://bucket/prefix for AWS mode")
    if not is_s3(settings.glue_artifacts_root):
        raise DeployError("CRYPTO_GLUE_ARTIFACTS_ROOT must be an s3:// folder")
    if settings.catalog_kind != "glue":
        raise DeployError(f"CRYPTO_CATALOG={settings.catalog_kind}: the Glue jobs and Athena use the Glue Data Catalog; "
                          f"leave CRYPTO_CATALOG empty (or set it to glue) for AWS mode")
    if for_deploy and not settings.glue_role_arn:
        raise DeployError("CRYPTO_GLUE_ROLE_ARN is not set: the Glue jobs need an IAM role to run as (see README, AWS mode)")
    lake = Lake.from_settings(settings)
    try:
        lake.check()
        Lake(settings.glue_artifacts_root, settings.s3_endpoint_url, settings.aws_region).check()
    except LakeUnavailableError as exc:
        raise DeployError(str(exc)) from None
    return lake


def build_wheel(out_dir: Path) -> Path:
    """The wheel shipped to Glue (no dependencies): the packages the Glue jobs import (`GLUE_PACKAGES`),
    built from a copy of this checkout's sources (setuptools would otherwise leave a build/ folder in the
    repository). The tools, the Dagster orchestration and the producer are not in it."""
    import shutil

    src = out_dir / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    (src / "crypto_assets").mkdir(parents=True)
    shutil.copy2(REPO / "crypto_assets" / "__init__.py", src / "crypto_assets" / "__init__.py")
    for package in GLUE_PACKAGES:
        shutil.copytree(REPO / "crypto_assets" / package, src / "crypto_assets" / package, ignore=ignore)
    shutil.copy2(REPO / "setup.py", src / "setup.py")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out_dir), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise DeployError(f"could not build the package wheel ({' '.join(cmd)}):\n{tail}")
    wheels = sorted(out_dir.glob("crypto_lakehouse-*.whl"))
    if not wheels:
        raise DeployError(f"pip wheel wrote no crypto_lakehouse wheel into {out_dir}")
    return wheels[-1]


def spark_conf_argument(settings: Settings) -> str:
    """Glue's `--conf` value: the Spark settings that open the lake's Iceberg catalog as `lake` (the same as
    `lake_session` sets locally), chained the way Glue reads them (`k=v --conf k=v ...`). Static settings
    such as the Iceberg SQL extensions can only be given there, before the session starts."""
    conf = CatalogConfig.from_settings(settings).spark_conf()
    return " --conf ".join(f"{k}={v}" for k, v in conf.items())


# Silver and Gold jobs compute with Arrow on the driver and run no Spark tasks: by default Glue's minimum of 2
# workers, of the smallest type whose memory holds the driver's measured peak with margin (benchmarks/
# bench_glue_sizing.py, README "AWS mode": 5.5 GB for Gold on a busy product-day; a G.1X worker has 16 GB).
def job_sizing(settings: Settings, job: str) -> tuple[str, int]:
    """(worker type, number of workers) of `job`: the Bronze jobs (batch and streaming) and maintenance run Spark
    work and get CRYPTO_GLUE_WORKER_TYPE x CRYPTO_GLUE_WORKERS; Silver and Gold only need the driver."""
    if runs_spark_work(job):
        return settings.glue_worker_type, settings.glue_workers
    return settings.glue_silver_gold_worker_type, settings.glue_silver_gold_workers


def job_definitions(settings: Settings, wheel_uri: str, script_uris: dict[str, str]) -> dict[str, dict]:
    """Glue job name -> create_job arguments (without Name/Tags)."""
    artifacts = settings.glue_artifacts_root.rstrip("/")
    jobs = {}
    for job in GLUE_JOBS:
        streaming = job in STREAM_JOBS
        modules = [PIPES_MODULE, *SETTINGS_MODULES, ICEBERG_MODULE] + (
            [KAFKA_CLIENT_MODULE] if kafka_kind(job) and not streaming else [])
        args = {
            "--job-language": "python",
            "--extra-py-files": wheel_uri,
            "--additional-python-modules": ",".join(modules),  # the Bronze batch jobs: kafka-python too
            "--datalake-formats": DATALAKE_FORMATS,
            "--TempDir": f"{artifacts}/tmp/",
            "--enable-metrics": "true",
            **job_arguments(settings, job),
        }
        if runs_spark_work(job):  # Bronze and maintenance work through Spark's Iceberg catalog
            args["--conf"] = spark_conf_argument(settings)
        worker_type, workers = job_sizing(settings, job)
        jobs[job_name(settings.glue_job_prefix, job)] = {
            "Description": f"{job}: created by {MADE_BY}",
            "Role": settings.glue_role_arn,
            "Command": {"Name": "gluestreaming" if streaming else "glueetl",
                        "ScriptLocation": script_uris[job], "PythonVersion": "3"},
            "DefaultArguments": args,
            # Batch jobs: one run per partition, so a backfill runs several at once.
            "ExecutionProperty": {"MaxConcurrentRuns": 1 if streaming else 20},
            "MaxRetries": 0,
            "GlueVersion": settings.glue_version,
            "WorkerType": worker_type,
            "NumberOfWorkers": workers,
            **({} if streaming else {"Timeout": settings.glue_timeout_minutes}),
        }
    return jobs


def _tags(settings: Settings) -> dict[str, str]:
    return {"created_by": MADE_BY, "crypto-lakehouse:prefix": settings.glue_job_prefix}


def athena_query(settings: Settings) -> str:
    return (
        f'SELECT product_id, event_date, trade_time, trade_id, price, ma_10_trades, rsi_14, target_return_10\n'
        f'FROM "{settings.glue_database}"."gold_features"\n'
        f"WHERE event_date = DATE '2026-11-24' AND product_id = 'BTC-USD'\n"
        f"ORDER BY trade_time, trade_id\nLIMIT 100;"
    )


def deploy(settings: Settings, wheel: Path | None = None) -> DeployResult:
    _require(settings)
    from botocore.exceptions import ClientError

    result = DeployResult()
    s3, glue = _client(settings, "s3"), _client(settings, "glue")
    bucket, prefix = split_s3(settings.glue_artifacts_root)

    def upload(local: Path, key: str) -> str:
        s3.upload_file(str(local), bucket, key)
        result.uploaded.append(key)
        return f"s3://{bucket}/{key}"

    with tempfile.TemporaryDirectory() as tmp:
        wheel = wheel or build_wheel(Path(tmp))
        wheel_uri = upload(wheel, f"{prefix}/dist/{wheel.name}".lstrip("/"))
        scripts = {job: upload(GLUE_SCRIPTS / script, f"{prefix}/scripts/{script}".lstrip("/"))
                   for job, script in GLUE_JOBS.items()}

    for name, definition in job_definitions(settings, wheel_uri, scripts).items():
        try:
            glue.get_job(JobName=name)
            exists = True
        except glue.exceptions.EntityNotFoundException:
            exists = False
        if exists:
            try:
                glue.update_job(JobName=name, JobUpdate=definition)
            except ClientError as exc:  # an API without UpdateJob (local emulators): replace the job
                log.debug("update_job %s failed (%s); replacing it", name, exc)
                glue.delete_job(JobName=name)
                glue.create_job(Name=name, Tags=_tags(settings), **definition)
        else:
            glue.create_job(Name=name, Tags=_tags(settings), **definition)
        result.jobs.append(name)

    try:
        glue.get_database(Name=settings.glue_database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput={
            "Name": settings.glue_database, "Description": f"Crypto lakehouse tables: created by {MADE_BY}",
            "Parameters": {"created_by": MADE_BY, "crypto-lakehouse:prefix": settings.glue_job_prefix},
        })
    config = CatalogConfig.from_settings(settings)
    for t in TABLES.values():
        try:
            found = glue.get_table(DatabaseName=settings.glue_database, Name=t.flat_name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            continue
        if not is_lake_table(config, t, found):
            where = found.get("Parameters", {}).get("metadata_location") or found.get("StorageDescriptor", {}).get(
                "Location", "no location")
            raise DeployError(f"Glue database {settings.glue_database!r} already holds a table {t.flat_name} that is not "
                              f"this lake's Iceberg table ({where}, expected {config.location(t)}): set "
                              f"CRYPTO_GLUE_DATABASE to another database, or drop that table")
    try:
        create_tables(config)  # the missing ones; existing tables are checked
    except CatalogError as exc:
        raise DeployError(str(exc)) from None
    result.tables = [t.flat_name for t in TABLES.values()]

    manifest = {"jobs": result.jobs, "database": settings.glue_database, "tables": result.tables,
                "keys": result.uploaded}
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{MANIFEST}".lstrip("/"), Body=json.dumps(manifest, indent=1).encode())
    result.athena_query = athena_query(settings)
    result.named_queries, result.named_queries_kept = deploy_named_queries(settings)
    return result


def named_query_name(settings: Settings, query) -> str:
    return f"{settings.glue_job_prefix}-{query.name}"


def _named_queries(athena, settings: Settings) -> dict[str, dict]:
    """The workgroup's named queries in the Glue database, by name."""
    ids, token = [], None
    while True:
        page = athena.list_named_queries(WorkGroup=ATHENA_WORKGROUP, **({"NextToken": token} if token else {}))
        ids += page.get("NamedQueryIds", [])
        token = page.get("NextToken")
        if not token:
            break
    found = (athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids)
    return {q["Name"]: q for q in found if q.get("Database") == settings.glue_database}


def deploy_named_queries(settings: Settings) -> tuple[list[str], list[str]]:
    """The README's example queries (`tools.example_queries`) as Athena named queries on the Glue database, in
    the `primary` workgroup. A name that exists already is left as it is (Athena has no upsert, and an
    emulator may lack UpdateNamedQuery and DeleteNamedQuery): deploy runs again without duplicating them."""
    from crypto_assets.tools.example_queries import EXAMPLE_QUERIES

    athena = _client(settings, "athena")
    existing = _named_queries(athena, settings)
    names, kept = [], []
    for q in EXAMPLE_QUERIES:
        name = named_query_name(settings, q)
        names.append(name)
        if name in existing:
            kept.append(name)
            continue
        athena.create_named_query(Name=name, Description=f"{q.description}: created by {MADE_BY}",
                                  Database=settings.glue_database, QueryString=q.sql, WorkGroup=ATHENA_WORKGROUP)
    return names, kept


def is_lake_table(config: CatalogConfig, t: TableDef, glue_table: dict) -> bool:
    """Whether a Glue table is this lake's Iceberg table `t` (its metadata at the table's location)."""
    params = glue_table.get("Parameters", {})
    return (params.get("table_type", "").upper() == "ICEBERG"
            and params.get("metadata_location", "").startswith(config.location(t) + "/metadata/"))


def destroy(settings: Settings) -> dict[str, list[str]]:
    """Removes the jobs, the lake's tables from the catalog (and the database if deploy made it and it is
    empty) and uploaded files that deploy made; anything else (the lake's data and the tables' Iceberg
    metadata in S3, other jobs or tables) stays."""
    _require(settings, for_deploy=False)
    s3, glue = _client(settings, "s3"), _client(settings, "glue")
    bucket, prefix = split_s3(settings.glue_artifacts_root)
    removed: dict[str, list[str]] = {"jobs": [], "tables": [], "database": [], "keys": []}

    for job in GLUE_JOBS:
        name = job_name(settings.glue_job_prefix, job)
        try:
            found = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            continue
        if MADE_BY not in found.get("Description", ""):
            log.warning("Glue job %s was not made by deploy: left alone", name)
            continue
        glue.delete_job(JobName=name)
        removed["jobs"].append(name)

    db = settings.glue_database
    try:
        database = glue.get_database(Name=db)["Database"]
    except glue.exceptions.EntityNotFoundException:
        database = None
    if database is not None:
        config = CatalogConfig.from_settings(settings)
        for t in TABLES.values():
            try:
                table = glue.get_table(DatabaseName=db, Name=t.flat_name)["Table"]
            except glue.exceptions.EntityNotFoundException:
                continue
            if is_lake_table(config, t, table):
                glue.delete_table(DatabaseName=db, Name=t.flat_name)  # the entry only: the data stays
                removed["tables"].append(t.flat_name)
        left = glue.get_tables(DatabaseName=db).get("TableList", [])
        if database.get("Parameters", {}).get("created_by") == MADE_BY and not left:
            glue.delete_database(Name=db)
            removed["database"].append(db)

    manifest_key = f"{prefix}/{MANIFEST}".lstrip("/")
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        manifest = {"keys": []}
    for key in manifest["keys"]:
        s3.delete_object(Bucket=bucket, Key=key)
        removed["keys"].append(key)
    s3.delete_object(Bucket=bucket, Key=manifest_key)
    return removed


def cmd_aws(args, settings: Settings) -> int:
    """`crypto-pipeline aws deploy|destroy` (registered in cli.py)."""
    try:
        if args.action == "deploy":
            result = deploy(settings, Path(args.wheel) if args.wheel else None)
            sizes = {}
            for job in GLUE_JOBS:
                worker_type, workers = job_sizing(settings, job)
                sizes[job_name(settings.glue_job_prefix, job)] = f"{workers} x {worker_type}"
            print(f"Glue jobs (Glue {settings.glue_version}): {', '.join(f'{n} ({sizes[n]})' for n in result.jobs)}")
            print(f"Iceberg tables in the Glue Data Catalog database {settings.glue_database}: {', '.join(result.tables)}")
            print(f"uploaded to {settings.glue_artifacts_root}: {len(result.uploaded)} files")
            print(f"Athena named queries (workgroup {ATHENA_WORKGROUP}, database {settings.glue_database}): "
                  f"{', '.join(result.named_queries)}"
                  + (f" ({len(result.named_queries_kept)} existed already: left as they were)"
                     if result.named_queries_kept else ""))
            print("Athena query that reads Gold:\n" + result.athena_query)
        else:
            removed = destroy(settings)
            print(f"removed Glue jobs: {', '.join(removed['jobs']) or '-'}; catalog tables: "
                  f"{', '.join(removed['tables']) or '-'}; database: {', '.join(removed['database']) or '-'}; "
                  f"uploaded files: {len(removed['keys'])}")
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # botocore errors: one line, not a stack trace
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, (BotoCoreError, ClientError)):
            print(f"error: AWS refused the {args.action}: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


def add_parser(sub) -> None:
    a = sub.add_parser("aws", help="deploy or destroy the AWS Glue jobs, their code in S3 and the Glue Data Catalog")
    a.add_argument("action", choices=["deploy", "destroy"])
    a.add_argument("--wheel", help="deploy: use this package wheel instead of building one")
    a.set_defaults(func=cmd_aws)
