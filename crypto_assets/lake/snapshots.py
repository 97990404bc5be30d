"""Commits with provenance, and reads by snapshot: how every step writes and reads the tables.

A commit is one Iceberg snapshot (a partition replace is one catalog commit holding a DELETE and
an APPEND snapshot); its summary says what produced it (`Provenance`: asset, partition, run id,
the upstream snapshot ids it read, and what the writer adds, such as the Silver partitions a
Bronze append feeds). Readers pin one snapshot per table and read only the files it lists, so a
concurrent commit never shows them a half-written or doubled partition.

Two writers replacing the same partition race through the catalog's compare-and-swap: pyiceberg
retries a plain conflict, and a conflict it must not retry blindly (the other writer added rows
to the partition this one deletes) is retried here from the new snapshot, up to
`commit_retries` times, then fails with one line.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa

from crypto_assets.contracts.tables import TableDef
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, catalog_failure, load_table

log = logging.getLogger(__name__)

PREFIX = "crypto."
# Operations that add data a downstream step has not seen (a maintenance rewrite is "replace").
DATA_OPERATIONS = ("append", "overwrite")


class CommitConflictError(CatalogError):
    """A commit kept losing races with other writers."""


@dataclass
class Provenance:
    """What a commit records about its writer in the snapshot summary (`crypto.*` properties)."""

    asset: str
    partition: str = ""
    run_id: str = ""
    upstream: dict[str, int] = field(default_factory=dict)  # table identifier -> snapshot id read
    extra: dict[str, str] = field(default_factory=dict)  # writer-specific (`crypto.<name>`)

    def properties(self) -> dict[str, str]:
        props = {f"{PREFIX}asset": self.asset, f"{PREFIX}partition": self.partition, f"{PREFIX}run-id": self.run_id,
                 f"{PREFIX}upstream": json.dumps(self.upstream, sort_keys=True)}
        props.update({f"{PREFIX}{k}": v for k, v in self.extra.items()})
        return props

    @classmethod
    def of(cls, snapshot) -> Provenance | None:
        """The provenance recorded in a snapshot's summary (None for a snapshot not written by us)."""
        props = snapshot.summary.additional_properties if snapshot.summary is not None else {}
        if f"{PREFIX}asset" not in props:
            return None
        known = {"asset", "partition", "run-id", "upstream"}
        return cls(asset=props[f"{PREFIX}asset"], partition=props.get(f"{PREFIX}partition", ""),
                   run_id=props.get(f"{PREFIX}run-id", ""),
                   upstream={k: int(v) for k, v in json.loads(props.get(f"{PREFIX}upstream", "{}")).items()},
                   extra={k[len(PREFIX):]: v for k, v in props.items()
                          if k.startswith(PREFIX) and k[len(PREFIX):] not in known})


def _literal(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def partition_filter(where: dict):
    """An Iceberg row filter from {column: value or list of values} (all must hold)."""
    from pyiceberg.expressions import AlwaysTrue, And, EqualTo, In

    expr = AlwaysTrue()
    for column, value in where.items():
        if isinstance(value, (list, tuple, set)):
            values = sorted({_literal(v) for v in value})
            part = EqualTo(column, values[0]) if len(values) == 1 else In(column, values)
        else:
            part = EqualTo(column, _literal(value))
        expr = part if isinstance(expr, AlwaysTrue) else And(expr, part)
    return expr


def snapshot_id(table) -> int | None:
    snapshot = table.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None


# ---- writes -------------------------------------------------------------------------------------


def _conform(t: TableDef, rows: pa.Table) -> pa.Table:
    return rows.select(t.schema.names).cast(t.schema)


def _single_partitions(t: TableDef, rows: pa.Table | list[pa.Table]) -> list[pa.Table]:
    """The rows as tables of one partition each (given so by the caller, or split here)."""
    import pyarrow.compute as pc

    parts = [_conform(t, r) for r in (rows if isinstance(rows, list) else [rows]) if r.num_rows]
    out = []
    for part in parts:
        keys = [part.column(c).unique() for c in t.partition_by]
        if all(len(k) == 1 for k in keys):
            out.append(part)
            continue
        combos = part.select(list(t.partition_by)).group_by(list(t.partition_by)).aggregate([]).to_pylist()
        for combo in combos:
            mask = None
            for c, v in combo.items():
                m = pc.equal(part.column(c), pa.scalar(v, part.schema.field(c).type))
                mask = m if mask is None else pc.and_(mask, m)
            out.append(part.filter(mask))
    return out


def _write_files(table, t: TableDef, parts: list[pa.Table]) -> list[str]:
    """Each partition's rows as one Parquet file under the table's data folder (written in parallel, plain
    encoding for all but string columns, as the tables' properties say), not yet part of the table."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    strings = [f.name for f in t.schema if pa.types.is_string(f.type)]

    def write(part: pa.Table) -> str:
        folder = "/".join(f"{c}={part.column(c)[0].as_py()}" for c in t.partition_by)
        path = f"{table.location()}/data/{folder}/{uuid.uuid4().hex}.parquet"
        with table.io.new_output(path).create(overwrite=True) as out:
            pq.write_table(part, out, compression="snappy", use_dictionary=strings, write_statistics=True)
        return path

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(write, parts))


# What a commit may change in the table's properties besides its rows: a function of the table as loaded
# for the commit, giving (properties to set, property keys to remove).
PropertyChange = Callable[[object], tuple[dict[str, str], list[str]]]


def _change_properties(tx, table, change: PropertyChange | None) -> None:
    if change is not None:
        updates, removals = change(table)
        if removals:
            tx.remove_properties(*removals)
        if updates:
            tx.set_properties(updates)


def _rows_from_filter(where: dict, rows_from: dict[str, tuple[str, object]]):
    from pyiceberg.expressions import And, GreaterThanOrEqual, Or

    products = where["product_id"] if isinstance(where["product_id"], list) else [where["product_id"]]
    parts = []
    for p in products:
        expr = partition_filter({**where, "product_id": p})
        if p in rows_from:
            column, value = rows_from[p]
            expr = And(expr, GreaterThanOrEqual(column, value))
        parts.append(expr)
    out = parts[0]
    for expr in parts[1:]:
        out = Or(out, expr)
    return out


def replace(config: CatalogConfig, t: TableDef, rows: pa.Table | list[pa.Table], where: dict,
            provenance: Provenance, always_commit: bool = False, properties: PropertyChange | None = None,
            rows_from: dict[str, tuple[str, object]] | None = None) -> int | None:
    """Makes `rows` (a table, or tables of one partition each) the whole content of the partitions `where`
    selects, in one commit (with the table property changes of `properties`); returns the snapshot id now
    current (unchanged when there was nothing to delete and nothing to add, unless `always_commit`: then an
    empty commit records the provenance). With `rows_from` (product -> (column, value)), only the rows of
    that product's partitions whose column is at least the value are replaced (a file holding some of them
    is rewritten without them); the other products' partitions are replaced whole.

    The data files are written here, one per partition on parallel threads, then the commit deletes the
    partitions' old files and adds the new ones (pyiceberg's own writer would copy every row once more
    to split the table by partition first: see the README's benchmarks)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    expr = partition_filter(where) if not rows_from else _rows_from_filter(where, rows_from)
    parts = _single_partitions(t, rows)
    paths: list[str] | None = None
    for attempt in range(config.commit_retries + 1):
        table = load_table(config, t)
        if not parts and not any(True for _ in table.scan(row_filter=expr).plan_files()):
            return append(config, t, t.schema.empty_table(), provenance, always_commit=True,
                          properties=properties) if always_commit else snapshot_id(table)
        try:
            if paths is None:
                paths = _write_files(table, t, parts)
            with warnings.catch_warnings():  # a first write of a partition deletes nothing: not worth a warning
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                with table.transaction() as tx:
                    tx.delete(expr, snapshot_properties=provenance.properties())
                    if paths:
                        tx.add_files(paths, snapshot_properties=provenance.properties(), check_duplicate_files=False)
                    _change_properties(tx, table, properties)
            return snapshot_id(table)  # the committed transaction left `table` at the new metadata
        except ValidationException as exc:  # another writer changed these partitions since we looked
            if attempt == config.commit_retries:
                raise CommitConflictError(
                    f"replacing {where} of {t.identifier} lost {attempt + 1} races with other writers ({exc}): "
                    f"another run is writing the same partition; let it finish and run again") from None
            log.info("%s %s: another writer committed first; retrying on the new snapshot", t.identifier, where)
            time.sleep(min(0.05 * 2**attempt, 2.0))
        except CommitFailedException as exc:
            raise CommitConflictError(
                f"committing {where} to {t.identifier} failed after the configured retries ({exc}): another writer "
                f"keeps committing to the table; run again, or raise CRYPTO_COMMIT_RETRIES") from None
        except Exception as exc:  # noqa: BLE001 - the catalog's own failures become one line
            raise _failure(config, exc) from None
    raise AssertionError("unreachable")


def append(config: CatalogConfig, t: TableDef, rows: pa.Table, provenance: Provenance,
           always_commit: bool = False, properties: PropertyChange | None = None) -> int | None:
    """Adds `rows` in one commit (appends never conflict), with the table property changes of `properties`;
    returns the new snapshot id. No rows: no commit, unless `always_commit` (an empty append that records the
    provenance and the properties)."""
    from pyiceberg.exceptions import CommitFailedException

    table = load_table(config, t)
    if rows.num_rows == 0 and not always_commit:
        return snapshot_id(table)
    try:
        with table.transaction() as tx:
            if rows.num_rows == 0:
                with tx.update_snapshot(snapshot_properties=provenance.properties()).fast_append():
                    pass
            else:
                tx.append(_conform(t, rows), snapshot_properties=provenance.properties())
            _change_properties(tx, table, properties)
    except CommitFailedException as exc:
        raise CommitConflictError(f"appending to {t.identifier} failed after the configured retries ({exc}): "
                                  f"run again, or raise CRYPTO_COMMIT_RETRIES") from None
    except Exception as exc:  # noqa: BLE001
        raise _failure(config, exc) from None
    return snapshot_id(table)


def set_properties(config: CatalogConfig, t: TableDef, change: PropertyChange) -> None:
    """Changes table properties only (a metadata commit: no snapshot)."""
    table = load_table(config, t)
    try:
        with table.transaction() as tx:
            _change_properties(tx, table, change)
    except Exception as exc:  # noqa: BLE001 - the catalog's own failures become one line
        raise _failure(config, exc) from None


def _failure(config: CatalogConfig, exc: Exception) -> Exception:
    if isinstance(exc, (OSError, CatalogError)) and not type(exc).__module__.startswith(("sqlite3", "sqlalchemy")):
        return exc if isinstance(exc, CatalogError) else CatalogError(
            f"writing to {config.root} failed ({exc}): check that it is reachable and writable")
    return catalog_failure(config, exc)


# ---- reads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    path: str  # as the lake's file helpers take it: a local path or s3://bucket/key
    partition: dict
    records: int
    lower: dict = field(default_factory=dict)  # column -> lowest value in the file (the columns asked for, if known)
    upper: dict = field(default_factory=dict)


def local_path(location: str) -> str:
    """A data file's location as the file readers take it: pyiceberg writes `file:///p`, Spark `file:/p`."""
    if location.startswith("file://"):
        return location[len("file://"):]
    return location[len("file:"):] if location.startswith("file:") else location


def _partition_value(iceberg_type, value):
    from pyiceberg.types import DateType

    if isinstance(iceberg_type, DateType) and isinstance(value, int):
        return date.fromordinal(date(1970, 1, 1).toordinal() + value)
    return value


def _bounds(schema, bounds: dict | None, columns: tuple[str, ...]) -> dict:
    """A data file's lower or upper bounds of `columns` (those its metadata holds), decoded."""
    from pyiceberg.conversions import from_bytes

    out = {}
    for name in columns:
        column = schema.find_field(name)
        raw = (bounds or {}).get(column.field_id)
        if raw is not None:
            out[name] = from_bytes(column.field_type, raw)
    return out


def snapshot_files(table, where: dict, snapshot: int | None = None,
                   bounds: tuple[str, ...] = ()) -> tuple[int | None, list[DataFile]]:
    """The data files a snapshot (default: the current one) holds in the partitions `where` selects, with
    the lowest and highest values of the `bounds` columns each holds (from the table's metadata).

    The tables are written copy-on-write (no delete files), so these files are exactly its rows."""
    snap = snapshot if snapshot is not None else snapshot_id(table)
    if snap is None:
        return None, []
    schema = table.schema()
    fields = [(f.name, schema.find_type(f.source_id)) for f in table.spec().fields]
    out = []
    for task in table.scan(row_filter=partition_filter(where), snapshot_id=snap).plan_files():
        if task.delete_files:
            raise CatalogError(f"table {'.'.join(table.name()[-2:])} holds delete files (written by an engine in merge-on-read "
                               f"mode); rewrite it with `crypto-pipeline lake maintain` before reading it here")
        part = task.file.partition
        values = {n: _partition_value(typ, part[i]) for i, (n, typ) in enumerate(fields)}
        f = task.file
        lower, upper = (_bounds(schema, f.lower_bounds, bounds), _bounds(schema, f.upper_bounds, bounds)) if bounds else ({}, {})
        out.append(DataFile(local_path(f.file_path), values, f.record_count, lower, upper))
    return snap, sorted(out, key=lambda f: f.path)


def read(table, where: dict | None = None, columns: list[str] | None = None, snapshot: int | None = None) -> pa.Table:
    """Rows of the partitions `where` selects as of a snapshot (default: current), as Arrow."""
    from pyiceberg.expressions import AlwaysTrue

    expr = partition_filter(where) if where else AlwaysTrue()
    scan = table.scan(row_filter=expr, selected_fields=tuple(columns) if columns else ("*",), snapshot_id=snapshot)
    return scan.to_arrow()


def snapshot_at(table, when: datetime) -> int:
    """The id of the snapshot that was current at `when` (time travel by time)."""
    ms = int(when.timestamp() * 1000)
    best = None
    for entry in table.metadata.snapshot_log:
        if entry.timestamp_ms <= ms:
            best = entry.snapshot_id
    if best is None:
        raise CatalogError(f"table {'.'.join(table.name()[-2:])} has no snapshot at or before {when.isoformat()} (its history "
                           f"starts later, or was expired): pick a later time")
    return best


def lineage(table):
    """The current branch's kept snapshots, newest first (the current one, its parent, ...)."""
    snap = table.current_snapshot()
    while snap is not None:
        yield snap
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id is not None else None


def snapshots_after(table, since: int | None) -> tuple[list, bool]:
    """The snapshots of the current branch committed after `since`, oldest first, and whether `since`
    was found among them (False when it was expired or `since` is None: everything kept is returned)."""
    chain, found = [], False
    for snap in lineage(table):
        if since is not None and snap.snapshot_id == since:
            found = True
            break
        chain.append(snap)
    return list(reversed(chain)), found
