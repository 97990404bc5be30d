"""Where the lake lives and the few file operations assets need around Spark's writes.

Layout: `<root>/<layer>/<table>/<col>=<value>/.../*.parquet` (Hive-style partition folders).
The root is a local folder by default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dagster import ConfigurableResource

from crypto_assets.settings import Settings


class LakeResource(ConfigurableResource):
    """Lake root and partition paths."""

    root: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeResource:
        return cls(root=settings.lake_root)

    def _check_local(self) -> Path:
        if "://" in self.root:
            raise NotImplementedError(
                f"lake root {self.root!r}: only local folders are supported by this build; "
                f"set CRYPTO_LAKE_ROOT to a local path"
            )
        return Path(self.root)

    def table_path(self, layer: str, table: str) -> str:
        return str(self._check_local() / layer / table)

    def partition_path(self, layer: str, table: str, **parts: str) -> str:
        path = Path(self.table_path(layer, table))
        for col, value in parts.items():
            path = path / f"{col}={value}"
        return str(path)

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def delete(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def delete_file(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def read_table(self, path: str):
        """A partition folder's Parquet files as one Arrow table (small reads beside Spark: checks, previews)."""
        import pyarrow.parquet as pq

        files = [f for f, _ in self.data_files(path)]
        return pq.ParquetDataset(files).read() if files else None

    def replace_partition(self, table, path: str) -> None:
        """Writes an Arrow table as the whole content of a partition folder: written beside it,
        then swapped in, so readers never see half a partition."""
        import uuid

        import pyarrow.parquet as pq

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        pq.write_table(table, tmp / "part-00000.snappy.parquet", compression="snappy")
        trash = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(trash)
        tmp.rename(target)
        shutil.rmtree(trash, ignore_errors=True)

    def write_text(self, path: str, text: str) -> None:
        """Writes a small file atomically (written beside it, then renamed): readers see all or nothing."""
        import uuid

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.write_text(text)
        tmp.replace(target)

    def read_text(self, path: str) -> str:
        return Path(path).read_text()

    def list_names(self, path: str) -> list[str]:
        """Names directly inside a folder, sorted (hidden and temporary names excluded); [] if it does not exist."""
        base = Path(path)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if not p.name.startswith("."))

    def move(self, src: str, dst: str) -> None:
        """Moves one file, replacing `dst` (a rename on a local disk)."""
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        Path(src).replace(dst)

    def data_files(self, path: str) -> list[tuple[str, int]]:
        """Parquet files under a path with their sizes in bytes (Spark's marker files excluded)."""
        base = Path(path)
        if not base.exists():
            return []
        return sorted(
            (str(f), f.stat().st_size)
            for f in base.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in f.relative_to(base).parts)
        )
