"""Lake file operations beside Spark's writes, for a local folder or an S3 prefix; no Dagster here.

The Dagster `LakeResource` and the Glue entry scripts share these through `LakeStore`, so
Silver and Gold steps run unchanged in both places. Paths handed out are the ones Spark
reads and writes: a local path, or `s3a://bucket/key` for an S3 root (`s3://` and `s3a://`
roots are both accepted). The file operations themselves go through `pyarrow.fs`.
"""

from __future__ import annotations

import functools
import posixpath
import shutil
import uuid
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

    # ---- paths -------------------------------------------------------------------------------

    @property
    def on_s3(self) -> bool:
        return is_s3(self.root)

    def table_path(self, layer: str, table: str) -> str:
        if self.on_s3:
            bucket, prefix = split_s3(self.root)
            return "s3a://" + posixpath.join(bucket, prefix, layer, table)
        return str(Path(self.root) / layer / table)

    def partition_path(self, layer: str, table: str, **parts: str) -> str:
        path = self.table_path(layer, table)
        for col, value in parts.items():
            path = f"{path}/{col}={value}" if self.on_s3 else str(Path(path) / f"{col}={value}")
        return path

    def _fs(self, path: str):
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

    def exists(self, path: str) -> bool:
        from pyarrow import fs

        filesystem, inner = self._fs(path)
        if is_s3(path):
            if filesystem.get_file_info(inner).type != fs.FileType.NotFound:
                return True
            # S3 has no folders: a partition "exists" when any key lies below it.
            return bool(filesystem.get_file_info(fs.FileSelector(inner, recursive=False, allow_not_found=True)))
        return Path(path).exists()

    def delete(self, path: str) -> None:
        if not is_s3(path):
            shutil.rmtree(path, ignore_errors=True)
            return
        filesystem, inner = self._fs(path)
        try:
            filesystem.delete_dir(inner)
        except (FileNotFoundError, OSError) as exc:
            if "does not exist" not in str(exc) and "NotFound" not in str(exc) and "not found" not in str(exc).lower():
                raise

    def read_table(self, path: str, columns: list[str] | None = None):
        """A partition folder's Parquet files as one Arrow table (small reads beside Spark: checks, previews)."""
        import pyarrow.parquet as pq

        files = [f for f, _ in self.data_files(path)]
        if not files:
            return None
        filesystem, _ = self._fs(path)
        inner = [self._fs(f)[1] for f in files]
        return pq.ParquetDataset(inner, filesystem=filesystem).read(columns=columns)

    def read_files(self, files: list[str], columns: list[str] | None = None):
        """Parquet files (as `data_files` names them) as one Arrow table, rows in the order given."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        filesystem, _ = self._fs(files[0])
        # partitioning=None: Iceberg's `col=value` folders must not add a second copy of a column the file holds.
        return pa.concat_tables([pq.read_table(self._fs(f)[1], columns=columns, filesystem=filesystem, partitioning=None)
                                 for f in files])

    def read_groups_holding(self, file: str, columns: list[str], values: list[str], in_columns: tuple[str, ...]):
        """The row groups of one Parquet file whose min/max statistics say one of `in_columns` may hold
        one of `values` (all of them where statistics are missing), as (table, their row numbers in the
        file). A file whose rows are clustered by those columns is read only where it matters."""
        import numpy as np
        import pyarrow.parquet as pq

        filesystem, inner = self._fs(file)
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

        filesystem, inner = self._fs(file)
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

    def row_groups(self, file: str):
        """The row groups of one Parquet file, as tables, one at a time."""
        import pyarrow.parquet as pq

        filesystem, inner = self._fs(file)
        with filesystem.open_input_file(inner) as f:
            pf = pq.ParquetFile(f)
            for g in range(pf.metadata.num_row_groups):
                yield pf.read_row_group(g)

    def write_row_groups(self, groups, dst: str) -> int:
        """Writes tables (all of one schema, the first's) as one Parquet file, each table its own row
        group, visible only once complete: renamed into place locally, a single upload on S3. Returns
        the rows written."""
        import pyarrow.parquet as pq

        filesystem, inner = self._fs(dst)
        tmp = inner if is_s3(dst) else str(Path(inner).with_name(f".{Path(inner).name}.tmp-{uuid.uuid4().hex[:8]}"))
        writer, rows = None, 0
        try:
            for table in groups:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, filesystem=filesystem, compression="snappy")
                writer.write_table(table.cast(writer.schema), row_group_size=max(1, table.num_rows))
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if not is_s3(dst) and writer is not None:
            Path(tmp).replace(inner)
        return rows

    def replace_partition(self, table, path: str, plain: tuple[str, ...] = ()) -> None:
        """Writes an Arrow table as the whole content of a partition folder (`plain`: string columns
        of unique values, such as hashes, written without dictionary pages).

        Local: written beside it, then swapped in by renames, so readers never see half a partition.
        S3 has no rename: the new file is written first under a new name, then the old files are
        deleted, so a reader in between may see both, never neither (as with Spark's own overwrite)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Dictionary pages only for strings: on high-cardinality doubles (every Gold feature) they cost
        # 4x the write time and make larger files than plain encoding.
        options = {"compression": "snappy",
                   "use_dictionary": [f.name for f in table.schema if pa.types.is_string(f.type) and f.name not in plain]}
        if is_s3(path):
            filesystem, inner = self._fs(path)
            old = [self._fs(f)[1] for f, _ in self.data_files(path)]
            pq.write_table(table, f"{inner}/part-00000-{uuid.uuid4().hex[:12]}.snappy.parquet", filesystem=filesystem,
                           **options)
            for o in old:
                filesystem.delete_file(o)
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        pq.write_table(table, tmp / "part-00000.snappy.parquet", **options)
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(trash)
        tmp.rename(target)
        shutil.rmtree(trash, ignore_errors=True)

    def delete_file(self, path: str) -> None:
        if not is_s3(path):
            Path(path).unlink(missing_ok=True)
            return
        filesystem, inner = self._fs(path)
        try:
            filesystem.delete_file(inner)
        except FileNotFoundError:
            pass

    def write_text(self, path: str, text: str) -> None:
        """Writes a small file so readers see all or nothing: beside it then renamed locally; one PUT on S3."""
        if is_s3(path):
            filesystem, inner = self._fs(path)
            with filesystem.open_output_stream(inner) as out:
                out.write(text.encode())
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_text(text)
        tmp.replace(target)

    def read_text(self, path: str) -> str:
        if not is_s3(path):
            return Path(path).read_text()
        filesystem, inner = self._fs(path)
        with filesystem.open_input_stream(inner) as f:
            return f.read().decode()

    def list_names(self, path: str) -> list[str]:
        """Names directly inside a folder, sorted (hidden and temporary names excluded); [] if it does not exist."""
        if not is_s3(path):
            base = Path(path)
            if not base.is_dir():
                return []
            return sorted(p.name for p in base.iterdir() if not p.name.startswith("."))
        from pyarrow import fs

        filesystem, inner = self._fs(path)
        infos = filesystem.get_file_info(fs.FileSelector(inner, recursive=False, allow_not_found=True))
        return sorted(n for n in (posixpath.basename(i.path.rstrip("/")) for i in infos) if not n.startswith("."))

    def move(self, src: str, dst: str) -> None:
        """Moves one file, replacing `dst`: a rename on a local disk; copy then delete on S3 (not atomic)."""
        if not is_s3(src):
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            Path(src).replace(dst)
            return
        filesystem, inner_src = self._fs(src)
        _, inner_dst = self._fs(dst)
        filesystem.copy_file(inner_src, inner_dst)
        filesystem.delete_file(inner_src)

    def data_files(self, path: str) -> list[tuple[str, int]]:
        """Parquet files under a path with their sizes in bytes (Spark's marker files excluded)."""
        if not is_s3(path):
            base = Path(path)
            if not base.exists():
                return []
            return sorted(
                (str(f), f.stat().st_size)
                for f in base.rglob("*.parquet")
                if not any(part.startswith((".", "_")) for part in f.relative_to(base).parts)
            )
        from pyarrow import fs

        filesystem, inner = self._fs(path)
        scheme = path.split("://", 1)[0]
        out = []
        for info in filesystem.get_file_info(fs.FileSelector(inner, recursive=True, allow_not_found=True)):
            if info.type != fs.FileType.File or not info.path.endswith(".parquet"):
                continue
            rel = info.path[len(inner):].strip("/")
            if any(part.startswith((".", "_")) for part in rel.split("/")):
                continue
            out.append((f"{scheme}://{info.path}", info.size))
        return sorted(out)

    def partitions(self, layer: str, table: str) -> list[dict[str, str]]:
        """Partition values of every partition folder holding data (`[{col: value, ...}, ...]`)."""
        base = self.table_path(layer, table)
        found = set()
        for f, _ in self.data_files(base):
            rel = f[len(base):].strip("/").split("/")[:-1]
            parts = tuple(tuple(p.split("=", 1)) for p in rel if "=" in p)
            if parts:
                found.add(parts)
        return [dict(p) for p in sorted(found)]


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
