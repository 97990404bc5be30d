"""The Iceberg catalog of the lake, one per environment, and the table handles every step uses.

Locally a pyiceberg `SqlCatalog` on a SQLite file (by default inside the lake folder, so a lake
carries its own catalog), which Spark opens too through Iceberg's JDBC catalog; in AWS the Glue
Data Catalog (one database, tables named `<layer>_<table>` as Athena shows them). Which one is
a setting (`catalog`); `CatalogConfig` is everything a process needs to open it, and
`spark_conf` gives Spark the same catalog under the name `lake`.

Tables are created on first use from their declaration (`contracts.tables`), partitioned by
identity on the declared columns, at `<lake root>/<layer>/<table>`. A table whose schema
differs from the declaration is refused with one line.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from crypto_assets.contracts.tables import TABLES, TableDef

SPARK_CATALOG = "lake"  # the catalog's name in Spark SQL: lake.bronze.kafka_trades
BUSY_TIMEOUT_S = 30  # how long a writer waits for the SQLite catalog's lock

# Every table's properties: format v2, commit retries under concurrent writers, metadata files that
# do not pile up (each commit writes one), snapshot isolation checked by the writers themselves.
# Columns whose exact lowest and highest value every data file records (Iceberg truncates strings to 16
# characters by default): Silver tells the Bronze files it has read from their Kafka topic and offsets.
FULL_BOUNDS = ("topic",)
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
    "commit.retry.min-wait-ms": "20",
    "commit.retry.max-wait-ms": "2000",
    # Snappy, and dictionaries of at most 4 KiB: low-cardinality columns (side, product, topic) still get
    # one, while the high-cardinality doubles of Gold and the raw Bronze values fall back to plain encoding
    # at once instead of building a 2 MiB dictionary first. A 1M-row Gold partition commits in 2.4 s this
    # way, 9.8 s with Iceberg's defaults (zstd, 2 MiB), 3.1 s by the plain-Parquet writer this replaced.
    "write.parquet.compression-codec": "snappy",
    "write.parquet.dict-size-bytes": "4096",
    # Appends merge small manifests (Spark always does; pyiceberg only with this), so a day of stream
    # commits does not leave every snapshot's manifest list naming thousands of manifests.
    "commit.manifest-merge.enabled": "true",
}


class CatalogError(RuntimeError):
    """The catalog cannot be used as it is; the message says what happened and what to do."""


@dataclass(frozen=True)
class CatalogConfig:
    kind: str  # sql | glue
    uri: str  # sql: SQLAlchemy URL of the catalog database
    root: str  # the warehouse: a local folder or s3://bucket/prefix
    glue_database: str = ""
    aws_region: str = "us-east-1"
    endpoint_url: str = ""  # a local S3/Glue endpoint (moto), empty for AWS
    commit_retries: int = 8

    @classmethod
    def from_settings(cls, settings) -> CatalogConfig:
        return cls(kind=settings.catalog_kind, uri=settings.catalog_url, root=settings.lake_root,
                   glue_database=settings.glue_database, aws_region=settings.aws_region,
                   endpoint_url=settings.s3_endpoint_url, commit_retries=settings.commit_retries)

    # ---- names ---------------------------------------------------------------------------------

    @property
    def on_s3(self) -> bool:
        return self.root.startswith(("s3://", "s3a://"))

    @property
    def warehouse(self) -> str:
        """The root as Iceberg writes it in metadata: `file:///abs/path` or `s3://bucket/prefix`."""
        if self.on_s3:
            return "s3://" + self.root.split("://", 1)[1].rstrip("/")
        return Path(self.root).resolve().as_uri()

    def namespace(self, t: TableDef) -> str:
        return self.glue_database if self.kind == "glue" else t.layer

    def identifier(self, t: TableDef) -> tuple[str, str]:
        return (self.glue_database, t.flat_name) if self.kind == "glue" else (t.layer, t.name)

    def location(self, t: TableDef) -> str:
        return f"{self.warehouse}/{t.layer}/{t.name}"

    @property
    def sqlite_path(self) -> Path | None:
        if self.kind == "sql" and self.uri.startswith("sqlite:///"):
            return Path(self.uri[len("sqlite:///"):].split("?", 1)[0])
        return None

    def describe(self) -> str:
        return f"the SQLite catalog {self.sqlite_path}" if self.sqlite_path else (
            f"the Glue catalog database {self.glue_database!r}" if self.kind == "glue" else f"the catalog {self.uri}")

    # ---- properties for pyiceberg and Spark ----------------------------------------------------

    def io_properties(self) -> dict[str, str]:
        props = {}
        if self.on_s3 or self.kind == "glue":
            props["s3.region"] = self.aws_region
            if self.endpoint_url:
                props["s3.endpoint"] = self.endpoint_url
                props["s3.force-virtual-addressing"] = "false"
            props["s3.connect-timeout"] = "5"
            props["s3.request-timeout"] = "30"
        return props

    def catalog_properties(self) -> dict[str, str]:
        props = {"warehouse": self.warehouse, **self.io_properties()}
        if self.kind == "glue":
            props["glue.region"] = self.aws_region
            if self.endpoint_url:
                props["glue.endpoint"] = self.endpoint_url
            return props
        uri = self.uri
        if uri.startswith("sqlite:") and "timeout=" not in uri:
            uri += ("&" if "?" in uri else "?") + f"timeout={BUSY_TIMEOUT_S}"
        return {**props, "uri": uri}

    def spark_conf(self) -> dict[str, str]:
        """Spark settings that open the same catalog as `lake` (jars: `lake.jars.spark_iceberg_jars`)."""
        prefix = f"spark.sql.catalog.{SPARK_CATALOG}"
        conf = {
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.warehouse": self.warehouse,
            # pyiceberg commits to the same tables: Spark must not answer from a stale cached snapshot.
            f"{prefix}.cache-enabled": "false",
        }
        if self.kind == "glue":
            conf[f"{prefix}.type"] = "glue"
            conf[f"{prefix}.io-impl"] = "org.apache.iceberg.aws.s3.S3FileIO"
            conf[f"{prefix}.client.region"] = self.aws_region
            if self.endpoint_url:
                conf[f"{prefix}.glue.endpoint"] = self.endpoint_url
                conf[f"{prefix}.s3.endpoint"] = self.endpoint_url
                conf[f"{prefix}.s3.path-style-access"] = "true"
            return conf
        conf[f"{prefix}.type"] = "jdbc"
        path = self.sqlite_path
        if path is None:
            raise CatalogError(f"Spark opens the sql catalog only on SQLite; {self.uri} is not a sqlite:/// URL")
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{path}?busy_timeout={BUSY_TIMEOUT_S * 1000}"
        # Iceberg's check for its own catalog tables leaves a result set open, which pins the JDBC
        # connection to the database as it was then: Spark would never see pyiceberg's later commits
        # (and its own would fail with SQLITE_BUSY_SNAPSHOT). pyiceberg creates those tables
        # (`open_catalog`, which `lake.spark.lake_session` calls first).
        conf[f"{prefix}.jdbc.init-catalog-tables"] = "false"
        if self.on_s3:
            conf[f"{prefix}.io-impl"] = "org.apache.iceberg.hadoop.HadoopFileIO"
        return conf


# ---- opening ------------------------------------------------------------------------------------


def _sqlite_error(config: CatalogConfig, exc: Exception) -> CatalogError:
    text = str(getattr(exc, "orig", exc) or exc)
    path = config.sqlite_path
    if "locked" in text or "busy" in text:
        return CatalogError(f"{config.describe()} stayed locked for more than {BUSY_TIMEOUT_S} s (another process "
                            f"holds a write lock): stop the stuck process and run again")
    if "not a database" in text or "malformed" in text:
        return CatalogError(f"{config.describe()} is corrupt ({text}): restore it, or move it away and run "
                            f"`crypto-pipeline lake migrate` to register the tables again from their metadata")
    if "unable to open" in text:
        return CatalogError(f"{config.describe()} cannot be opened ({text}): check that {path.parent if path else ''} "
                            f"exists and is writable, or set CRYPTO_CATALOG_URI")
    return CatalogError(f"{config.describe()} failed: {text.splitlines()[0] if text else type(exc).__name__}")


def catalog_failure(config: CatalogConfig, exc: Exception) -> CatalogError:
    """One line for a failure of the catalog itself (lock, corruption, unreachable endpoint)."""
    if isinstance(exc, CatalogError):
        return exc
    if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("sqlalchemy"):
        return _sqlite_error(config, exc)
    name = type(exc).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "NoCredentialsError"):
        return CatalogError(f"{config.describe()} is not reachable ({exc}): check the network, the AWS credentials "
                            f"and CRYPTO_AWS_REGION / CRYPTO_S3_ENDPOINT_URL")
    return CatalogError(f"{config.describe()}: {name}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))


_OPENING = threading.Lock()


@functools.lru_cache(maxsize=16)
def _open(config: CatalogConfig):
    try:
        if config.kind == "glue":
            from pyiceberg.catalog.glue import GlueCatalog

            return GlueCatalog(SPARK_CATALOG, **config.catalog_properties())
        from pyiceberg.catalog.sql import SqlCatalog

        path = config.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(path, timeout=BUSY_TIMEOUT_S) as db:
                # Readers never wait for a writer; the mode is stored in the file, so Spark gets it too.
                db.execute("PRAGMA journal_mode=WAL")
        for attempt in range(3):
            try:
                return SqlCatalog(SPARK_CATALOG, **config.catalog_properties())
            except Exception as exc:  # noqa: BLE001
                # Another process created the catalog's own tables between pyiceberg's check and its create.
                if "already exists" not in str(exc) or attempt == 2:
                    raise
    except Exception as exc:  # noqa: BLE001 - every failure of the catalog becomes one line
        raise catalog_failure(config, exc) from None


def open_catalog(config: CatalogConfig):
    """The pyiceberg catalog (one per configuration and process; threads opening a new one wait)."""
    with _OPENING:
        return _open(config)


def forget_catalogs() -> None:
    """Drops the opened catalogs, so the next use opens them again (after a catalog file was replaced)."""
    _open.cache_clear()


def _type_name(t: pa.DataType) -> str:
    """A type's description that ignores what Iceberg and Arrow name differently (list element names,
    large offsets, nullability)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{_type_name(f.type)}" for f in t) + ">"
    return str(t).replace("large_", "")


def _comparable(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, _type_name(f.type)) for f in schema]


def check_schema(config: CatalogConfig, t: TableDef, table) -> None:
    """Refuses a table whose columns or types differ from the declaration."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    have = _comparable(schema_to_pyarrow(table.schema(), include_field_ids=False))
    want = _comparable(t.schema)
    if have != want:
        missing = [n for n, _ in want if n not in dict(have)]
        extra = [n for n, _ in have if n not in dict(want)]
        changed = [n for n, typ in want if n in dict(have) and dict(have)[n] != typ]
        what = "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "", f"unexpected {', '.join(extra)}" if extra else "",
            f"different types of {', '.join(changed)}" if changed else "",
            "columns in another order" if not (missing or extra or changed) else "") if part)
        raise CatalogError(f"table {t.identifier} in {config.describe()} does not match this version's schema ({what}): "
                           f"run `crypto-pipeline lake migrate`, or point CRYPTO_LAKE_ROOT at a new lake")


def load_table(config: CatalogConfig, t: TableDef, create: bool = True, legacy_ok: bool = False):
    """The table, created from its declaration when missing (`create=False`: None when missing). A
    missing table whose location holds the earlier version's Parquet folders is refused (unless
    `legacy_ok`, for the migration itself): `crypto-pipeline lake migrate` adopts them."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = open_catalog(config)
    try:
        try:
            table = catalog.load_table(config.identifier(t))
        except NoSuchTableError:
            if not create:
                return None
            if not legacy_ok:
                _refuse_legacy(config, t)
            table = _create(config, catalog, t)
    except CatalogError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise catalog_failure(config, exc) from None
    check_schema(config, t, table)
    return table


def _refuse_legacy(config: CatalogConfig, t: TableDef) -> None:
    from crypto_assets.lake.migrate import has_legacy_data

    if has_legacy_data(config, t):
        raise CatalogError(f"{config.root} holds {t.identifier} as plain Parquet folders written by an earlier version: "
                           f"run `crypto-pipeline lake migrate` to adopt them into the Iceberg tables")


def _create(config: CatalogConfig, catalog, t: TableDef):
    from pyiceberg.exceptions import TableAlreadyExistsError

    catalog.create_namespace_if_not_exists(config.namespace(t))
    properties = {**TABLE_PROPERTIES, "commit.retry.num-retries": str(config.commit_retries),
                  **{f"write.metadata.metrics.column.{c}": "full" for c in FULL_BOUNDS if c in t.schema.names}}
    try:
        # Schema and partition spec in one commit: no reader ever sees the table unpartitioned.
        with catalog.create_table_transaction(config.identifier(t), schema=t.schema, location=config.location(t),
                                              properties=properties) as txn:
            with txn.update_spec() as spec:
                for column in t.partition_by:
                    spec.add_identity(column)
    except TableAlreadyExistsError:  # another process created it first
        pass
    return catalog.load_table(config.identifier(t))


def create_tables(config: CatalogConfig, tables: list[TableDef] | None = None) -> list[str]:
    """Creates every declared table that is missing; returns the identifiers created."""
    created = []
    for t in tables or list(TABLES.values()):
        if load_table(config, t, create=False) is None:
            load_table(config, t)
            created.append(t.identifier)
    return created
