"""The lake handle (root, catalog, S3 access) and the file reads beside the Iceberg tables; no Dagster here.

The Dagster `LakeResource` and the Glue entry scripts share `LakeStore`, so Silver and Gold run
unchanged in both places. The tables are opened through `catalog_config` / `table`; the readers
here take the data files a pinned snapshot lists (`lake.snapshots.snapshot_files`) and read only
the row groups a step needs, through `pyarrow.fs` (a local path or `s3://bucket/key`).
"""

from __future__ import annotations

import functools
from pathlib import Path

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


class LakeUnavailableError(RuntimeError):
    """The lake cannot be used (no credentials, missing bucket); the message says what to do."""


def is_s3(path: str) -> bool:
    return path.startswith(S3_SCHEMES)


def split_s3(uri: str) -> tuple[str, str]:
    """`s3a://bucket/a/b` -> ("bucket", "a/b")."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


def to_s3(uri: str) -> str:
    """The `s3://` form of an S3 URI (what the Glue catalog, Athena and the AWS CLI use)."""
    bucket, key = split_s3(uri)
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


@functools.lru_cache(maxsize=8)
def _s3_filesystem(region: str, endpoint_url: str):
    from pyarrow import fs

    kwargs: dict = {"region": region or "us-east-1"}
    if endpoint_url:
        scheme, _, host = endpoint_url.rpartition("://")
        kwargs["endpoint_override"] = host.rstrip("/")
        kwargs["scheme"] = scheme or "https"
    # Fail after a few seconds, not the SDK's default minutes, when S3 is unreachable.
    return fs.S3FileSystem(connect_timeout=5, request_timeout=30, retry_strategy=fs.AwsStandardS3RetryStrategy(3),
                           **kwargs)


def _may_hold(stats, values: list[str]) -> bool:
    """Whether a column chunk with these statistics may hold one of `values` (yes when unknown)."""
    if stats is None or not stats.has_min_max:
        return True
    lo, hi = stats.min, stats.max
    if isinstance(lo, bytes):  # a binary column, or statistics written without the string type
        values = [v.encode() for v in values]
    return any(lo <= v <= hi for v in values)


class LakeStore:
    """Operations on the lake below `root`. Subclasses provide `root`, `s3_endpoint_url`, `aws_region`
    and the catalog's fields (`catalog`, `catalog_uri`, `glue_database`, `commit_retries`)."""

    root: str
    s3_endpoint_url: str
    aws_region: str
    catalog: str
    catalog_uri: str
    glue_database: str
    commit_retries: int

    @property
    def catalog_config(self):
        """What opens the lake's Iceberg catalog (`crypto_assets.lake.catalog`)."""
        from crypto_assets.lake.catalog import CatalogConfig

        return CatalogConfig(kind=self.catalog, uri=self.catalog_uri, root=self.root, glue_database=self.glue_database,
                             aws_region=self.aws_region, endpoint_url=self.s3_endpoint_url,
                             commit_retries=self.commit_retries)

    def table(self, t):
        """The Iceberg table of a declaration (`contracts.tables`), created when missing."""
        from crypto_assets.lake.catalog import load_table

        return load_table(self.catalog_config, t)

    # ---- S3 ----------------------------------------------------------------------------------

    @property
    def on_s3(self) -> bool:
        return is_s3(self.root)

    def filesystem(self, path: str):
        """(pyarrow filesystem, path inside it) for a lake path."""
        if is_s3(path):
            bucket, key = split_s3(path)
            return _s3_filesystem(self.aws_region, self.s3_endpoint_url), f"{bucket}/{key}".rstrip("/")
        from pyarrow import fs

        return fs.LocalFileSystem(), str(Path(path).resolve())

    # ---- checks ------------------------------------------------------------------------------

    def boto3_client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.aws_region, endpoint_url=self.s3_endpoint_url or None)

    def check(self) -> None:
        """For an S3 root: credentials present and the bucket reachable, else one clear line."""
        if not self.on_s3:
            return
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        if boto3.Session().get_credentials() is None:
            raise LakeUnavailableError(
                f"no AWS credentials found for the S3 lake {self.root}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                f"or AWS_PROFILE (or run where an IAM role is attached)"
            )
        bucket, _ = split_s3(self.root)
        try:
            self.boto3_client("s3").head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise LakeUnavailableError(
                    f"S3 bucket {bucket!r} of the lake root {self.root} does not exist: create it "
                    f"(aws s3 mb s3://{bucket}) or point CRYPTO_LAKE_ROOT at an existing bucket"
                ) from None
            raise LakeUnavailableError(
                f"S3 bucket {bucket!r} of the lake root {self.root} is not accessible ({code}): check the IAM "
                f"permissions of the current AWS credentials"
            ) from None
        except BotoCoreError as exc:
            raise LakeUnavailableError(f"S3 not reachable for the lake root {self.root}: {exc}") from None

    # ---- file operations ---------------------------------------------------------------------

    def read_files(self, files: list[str], columns: list[str] | None = None):
        """Parquet files (as `data_files` names them) as one Arrow table, rows in the order given."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        filesystem, _ = self.filesystem(files[0])
        # partitioning=None: Iceberg's `col=value` folders must not add a second copy of a column the file holds.
        return pa.concat_tables([pq.read_table(self.filesystem(f)[1], columns=columns, filesystem=filesystem, partitioning=None)
                                 for f in files])

    def read_groups_holding(self, file: str, columns: list[str], values: list[str], in_columns: tuple[str, ...]):
        """The row groups of one Parquet file whose min/max statistics say one of `in_columns` may hold
        one of `values` (all of them where statistics are missing), as (table, their row numbers in the
        file). A file whose rows are clustered by those columns is read only where it matters."""
        import numpy as np
        import pyarrow.parquet as pq

        filesystem, inner = self.filesystem(file)
        with filesystem.open_input_file(inner) as f:
            pf = pq.ParquetFile(f)
            meta, names = pf.metadata, pf.schema_arrow.names
            wanted, starts = [], 0
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                if any(_may_hold(group.column(names.index(c)).statistics, values) for c in in_columns):
                    wanted.append((g, starts, group.num_rows))
                starts += group.num_rows
            table = pf.read_row_groups([g for g, _, _ in wanted], columns=columns)
        rows = np.concatenate([np.arange(s, s + n) for _, s, n in wanted]) if wanted else np.zeros(0, np.int64)
        return table, rows

    def read_rows(self, file: str, column: str, rows):
        """One column's values at the given row numbers of one Parquet file, reading only the row
        groups that hold them."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        filesystem, inner = self.filesystem(file)
        with filesystem.open_input_file(inner) as f:
            pf = pq.ParquetFile(f)
            sizes = np.array([pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)], np.int64)
            ends = np.cumsum(sizes)
            rows = np.asarray(rows, dtype=np.int64)
            group_of = np.searchsorted(ends, rows, side="right")
            groups = np.unique(group_of)
            values = pf.read_row_groups(groups.tolist(), columns=[column]).column(column)
        # Row r of the file sits at (r - start of its group) + rows of the chosen groups before it.
        before = np.concatenate([[0], np.cumsum(sizes[groups[:-1]])])
        at = rows - (ends - sizes)[group_of] + before[np.searchsorted(groups, group_of)]
        return values.take(pa.array(at))

    def read_text(self, path: str) -> str:
        if not is_s3(path):
            return Path(path).read_text()
        filesystem, inner = self.filesystem(path)
        with filesystem.open_input_stream(inner) as f:
            return f.read().decode()

class Lake(LakeStore):
    """A plain (non-Dagster) lake handle, for Glue scripts, the deploy command and tests."""

    def __init__(self, root: str, s3_endpoint_url: str = "", aws_region: str = "us-east-1", catalog: str = "",
                 catalog_uri: str = "", glue_database: str = "crypto_lakehouse", commit_retries: int = 8):
        self.root = root
        self.s3_endpoint_url = s3_endpoint_url
        self.aws_region = aws_region
        self.catalog = catalog or ("glue" if is_s3(root) else "sql")
        self.catalog_uri = catalog_uri or ("" if is_s3(root) else f"sqlite:///{Path(root).resolve()}/catalog.db")
        self.glue_database = glue_database
        self.commit_retries = commit_retries

    @classmethod
    def from_settings(cls, settings) -> Lake:
        return cls(settings.lake_root, settings.s3_endpoint_url, settings.aws_region, settings.catalog_kind,
                   settings.catalog_url, settings.glue_database, settings.commit_retries)
