"""Adopting a lake written by the earlier, plain-Parquet version into the Iceberg tables.

That version wrote Hive-style folders at the tables' own locations (`bronze/kafka_trades/
ingest_date=D/*.parquet`, `silver/trades/product_id=P/event_date=D/...`) with the partition values
in the folder names only, so the files cannot be registered as they are (Iceberg needs the
partition columns in the files): each partition is read, given its partition columns, checked
against the declared schema and committed as that partition's content (`snapshots.replace`, with
provenance `lake_migrate`). Streamed Bronze files that a merged file superseded are skipped, as
that version's readers did. The old folders (and the old commit log, staging and checkpoint-free
leftovers) are deleted only once every table is committed, so a migration stopped half way runs
again from the start with the same result.

Until it has run, opening a table whose location holds such folders fails with one line naming
`crypto-pipeline lake migrate` (`catalog.load_table`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from crypto_assets.contracts.tables import TABLES, TableDef
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, load_table
from crypto_assets.lake.snapshots import Provenance, replace

log = logging.getLogger(__name__)

_STREAM = re.compile(r"^stream-b(\d{12})-\d{4}\.snappy\.parquet$")
_MERGED = re.compile(r"^compact-L(\d+)-b(\d{12})-b(\d{12})\.snappy\.parquet$")
LEGACY_DIRS = ("_commits", "_staging")


@dataclass
class MigrationReport:
    tables: dict[str, int] = field(default_factory=dict)  # identifier -> rows adopted
    partitions: int = 0
    skipped_files: int = 0
    registered: list[str] = field(default_factory=list)  # tables found by their metadata, not in the catalog


def _filesystem(config: CatalogConfig, path: str):
    from crypto_assets.lake.store import Lake

    return Lake(config.root, config.endpoint_url, config.aws_region, config.kind, config.uri).filesystem(path)


def _table_path(config: CatalogConfig, t: TableDef) -> str:
    root = config.root.rstrip("/")
    return f"{root}/{t.layer}/{t.name}"


def _list(config: CatalogConfig, path: str):
    from pyarrow import fs

    filesystem, inner = _filesystem(config, path)
    return filesystem, filesystem.get_file_info(fs.FileSelector(inner, recursive=False, allow_not_found=True))


def _visible(names: list[str]) -> tuple[list[str], int]:
    """The earlier version's rule: a streamed file inside a merged file's batch range was merged into it."""
    merged = [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for n in names if (m := _MERGED.match(n))]

    def superseded(name: str) -> bool:
        if m := _STREAM.match(name):
            level, first, last = 0, int(m.group(1)), int(m.group(1))
        elif m := _MERGED.match(name):
            level, first, last = int(m.group(1)), int(m.group(2)), int(m.group(3))
        else:
            return False
        return any(lv > level and lo <= first and last <= hi for lv, lo, hi in merged)

    keep = [n for n in names if not superseded(n)]
    return keep, len(names) - len(keep)


def legacy_partitions(config: CatalogConfig, t: TableDef) -> list[tuple[dict[str, str], list[str]]]:
    """[(partition values, Parquet files)] of the earlier version's folders of one table."""
    from pyarrow import fs

    out: list[tuple[dict[str, str], list[str]]] = []

    def walk(path: str, values: dict[str, str], depth: int) -> None:
        filesystem, infos = _list(config, path)
        if depth == len(t.partition_by):
            files = sorted(i.base_name for i in infos if i.type == fs.FileType.File and i.base_name.endswith(".parquet")
                           and not i.base_name.startswith((".", "_")))
            if files:
                out.append((values, [f"{path}/{n}" for n in files]))
            return
        column = t.partition_by[depth]
        for info in infos:
            if info.type == fs.FileType.Directory and info.base_name.startswith(f"{column}="):
                walk(f"{path}/{info.base_name}", {**values, column: info.base_name.split("=", 1)[1]}, depth + 1)

    walk(_table_path(config, t), {}, 0)
    return out


def has_legacy_data(config: CatalogConfig, t: TableDef) -> bool:
    filesystem, infos = _list(config, _table_path(config, t))
    return any(i.base_name.startswith(f"{t.partition_by[0]}=") for i in infos)


def _read_partition(config: CatalogConfig, t: TableDef, values: dict[str, str], files: list[str]) -> pa.Table:
    filesystem, _ = _filesystem(config, files[0])
    tables = [pq.read_table(_filesystem(config, f)[1], filesystem=filesystem) for f in files]
    rows = pa.concat_tables(tables, promote_options="default")
    for column, value in values.items():
        if column in rows.column_names:
            rows = rows.drop_columns([column])
        typ = t.schema.field(column).type
        rows = rows.append_column(column, pa.array([value] * rows.num_rows, pa.string()).cast(typ))
    missing = [n for n in t.schema.names if n not in rows.column_names]
    if missing:
        raise CatalogError(f"{files[0]} lacks the columns {', '.join(missing)} of {t.identifier}: this folder was not "
                           f"written by the earlier version of this project; move it out of the lake and run again")
    try:
        return rows.select(t.schema.names).cast(t.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CatalogError(f"{files[0]} cannot be read as {t.identifier} ({exc}): move it out of the lake and run "
                           f"again") from None


def _register_existing(config: CatalogConfig, t: TableDef) -> bool:
    """A table missing from the catalog (a lost or new catalog file) whose Iceberg metadata is still in
    its location is registered again from its newest metadata file; True if it was."""
    from pyarrow import fs

    if load_table(config, t, create=False) is not None:
        return False
    _, infos = _list(config, f"{_table_path(config, t)}/metadata")
    files = sorted((i.base_name for i in infos if i.type == fs.FileType.File and i.base_name.endswith(".metadata.json")),
                   key=lambda n: int(n.split("-", 1)[0]) if n.split("-", 1)[0].isdigit() else -1)
    if not files:
        return False
    from crypto_assets.lake.catalog import open_catalog

    catalog = open_catalog(config)
    catalog.create_namespace_if_not_exists(config.namespace(t))
    catalog.register_table(config.identifier(t), f"{config.location(t)}/metadata/{files[-1]}")
    log.info("registered %s again from %s", t.identifier, files[-1])
    return True


def migrate(config: CatalogConfig, delete_old: bool = True) -> MigrationReport:
    """Registers tables whose metadata survived a lost catalog, adopts every legacy partition of every
    table, then deletes the legacy folders."""
    report = MigrationReport()
    done: list[tuple[TableDef, list[dict[str, str]]]] = []
    for t in TABLES.values():
        if _register_existing(config, t):
            report.registered.append(t.identifier)
        load_table(config, t, legacy_ok=True)
        parts = legacy_partitions(config, t)
        rows = 0
        for values, files in parts:
            keep, skipped = _visible([f.rsplit("/", 1)[1] for f in files]) if t.layer == "bronze" else (
                [f.rsplit("/", 1)[1] for f in files], 0)
            folder = files[0].rsplit("/", 1)[0]
            table = _read_partition(config, t, values, [f"{folder}/{n}" for n in keep])
            replace(config, t, table, values, Provenance("lake_migrate", "|".join(values.values())))
            rows += table.num_rows
            report.skipped_files += skipped
            report.partitions += 1
        report.tables[t.identifier] = rows
        done.append((t, [v for v, _ in parts]))
        log.info("migrated %s: %d partitions, %d rows", t.identifier, len(parts), rows)
    if delete_old:
        for t, parts in done:
            _delete_legacy(config, t, parts)
    return report


def _delete_legacy(config: CatalogConfig, t: TableDef, parts: list[dict[str, str]]) -> None:
    base = _table_path(config, t)
    filesystem, _ = _filesystem(config, base)
    names = {f"{t.partition_by[0]}={v[t.partition_by[0]]}" for v in parts} | set(LEGACY_DIRS)
    for name in sorted(names):
        _, inner = _filesystem(config, f"{base}/{name}")
        try:
            filesystem.delete_dir(inner)
        except (FileNotFoundError, OSError):
            pass
