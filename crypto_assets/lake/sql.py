"""SQL over the lake: DuckDB, embedded, on the Iceberg tables, each table read as one snapshot.

    from crypto_assets.lake.sql import LakeSql
    rows = LakeSql(config).arrow("SELECT product_id, count(*) FROM silver_trades GROUP BY 1")

Tables are named as in the Athena database (`bronze_kafka_trades`, `silver_trades`, `gold_features`, ...).
A query reads, for each table it names, the data files of one snapshot (the current one, or the one
`as_of` picks), listed by pyiceberg: a writer committing meanwhile is never half-seen. The files are
handed to DuckDB as an Arrow dataset whose files carry their partition values, so a filter on a partition
column opens only the files of those partitions (and row-group statistics prune inside them). DuckDB's
own Iceberg extension would download itself at run time, which a machine without internet cannot do.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from crypto_assets.contracts.tables import TABLES, TableDef
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, load_table
from crypto_assets.lake.snapshots import snapshot_files
from crypto_assets.lake.time_travel import parse_as_of, snapshot_of


class SqlError(CatalogError):
    """A query that cannot run; the message is one line saying why."""


def table_names() -> list[str]:
    """The lake's tables as SQL names them."""
    return sorted(t.flat_name for t in TABLES.values())


def _by_name(name: str) -> TableDef | None:
    return next((t for t in TABLES.values() if t.flat_name == name), None)


@dataclass(frozen=True)
class Pinned:
    name: str
    snapshot_id: int | None
    files: int


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


class LakeSql:
    """One DuckDB connection on the lake; each table is pinned to one snapshot the first time a query names it."""

    def __init__(self, config: CatalogConfig, as_of: str | int | datetime | None = None):
        import duckdb

        self.config = config
        self.as_of = parse_as_of(as_of)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")  # the lake's times are UTC, whatever the machine's zone
        self.pinned: dict[str, Pinned] = {}

    # ---- pinning ------------------------------------------------------------------------------------

    def _snapshot(self, name: str, table) -> int | None:
        """The snapshot to read: current, or as of `as_of` (a snapshot id pins the table that has it, and
        the others as they were when it was committed)."""
        if isinstance(self.as_of, int):
            if table.snapshot_by_id(self.as_of) is not None:
                return self.as_of
            return snapshot_of(table, self._as_of_time(), name)
        return snapshot_of(table, self.as_of, name)

    def _as_of_time(self) -> datetime:
        from datetime import timezone

        for t in TABLES.values():
            snap = load_table(self.config, t).snapshot_by_id(self.as_of)
            if snap is not None:
                return datetime.fromtimestamp(snap.timestamp_ms / 1000, timezone.utc)
        raise SqlError(f"no table of the lake has snapshot {self.as_of} (never, or expired by maintenance): see "
                       f"`crypto-pipeline lake history TABLE`")

    def _dataset(self, t: TableDef, table, snap: int | None):
        """The snapshot's data files as an Arrow dataset whose files carry their partition values."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        from crypto_assets.lake.store import Lake

        files = snapshot_files(table, {}, snap)[1] if snap is not None else []
        if not files:
            return t.schema.empty_table(), 0
        store = Lake(self.config.root, self.config.endpoint_url, self.config.aws_region)
        filesystem, _ = store.filesystem(files[0].path)
        paths, partitions = [], []
        for f in files:
            paths.append(store.filesystem(f.path)[1])
            expr = None
            for column, value in f.partition.items():
                term = pc.field(column) == pa.scalar(value, t.schema.field(column).type)
                expr = term if expr is None else expr & term
            partitions.append(expr)
        return ds.FileSystemDataset.from_paths(paths, schema=t.schema, format=ds.ParquetFileFormat(),
                                               filesystem=filesystem, partitions=partitions), len(files)

    def pin(self, name: str) -> Pinned:
        """Registers table `name` in DuckDB as of its snapshot (once per connection)."""
        if name not in self.pinned:
            t = _by_name(name)
            if t is None:
                raise SqlError(f"no table {name!r}; the tables are {', '.join(table_names())}")
            table = load_table(self.config, t)
            snap = self._snapshot(name, table)
            data, files = self._dataset(t, table, snap)
            self.con.register(name, data)
            self.pinned[name] = Pinned(name, snap, files)
        return self.pinned[name]

    # ---- queries ------------------------------------------------------------------------------------

    def relation(self, query: str):
        """The query as a DuckDB relation, every lake table it names pinned first."""
        import duckdb

        try:
            names = duckdb.get_table_names(query)
        except duckdb.Error:  # it binds some statements (CREATE VIEW): the query's own run says what is wrong
            names = set()
        # DuckDB names the tables of queries; those inside DDL (CREATE VIEW ... AS SELECT) are found by name.
        named = {n for n in table_names() if re.search(rf"\b{n}\b", query)}
        for name in sorted((names | named) & set(table_names())):
            self.pin(name)
        try:
            return self.con.sql(query)
        except duckdb.CatalogException as exc:
            missing = re.search(r"Table with name (\S+) does not exist", str(exc))
            if missing is None:
                raise SqlError(_one_line(exc)) from None
            name = missing.group(1)
            close = difflib.get_close_matches(name, table_names(), n=1)
            raise SqlError(f"no table {name} in the lake{f' (did you mean {close[0]}?)' if close else ''}; "
                           f"the tables are {', '.join(table_names())}") from None
        except duckdb.Error as exc:
            raise SqlError(_one_line(exc)) from None

    def arrow(self, query: str) -> pa.Table:
        """The query's result as an Arrow table."""
        import duckdb

        relation = self.relation(query)
        if relation is None:  # a statement without a result (SET, CREATE VIEW ...)
            return pa.table({})
        try:
            return relation.to_arrow_table()
        except duckdb.Error as exc:
            raise SqlError(_one_line(exc)) from None

    def empty(self) -> bool:
        """Whether every table pinned so far is empty (no snapshot, or no data file)."""
        return bool(self.pinned) and all(p.files == 0 for p in self.pinned.values())


def query(config: CatalogConfig, sql: str, as_of: str | int | datetime | None = None) -> pa.Table:
    """One query's result as Arrow (for notebooks: `LakeSql(config).relation(sql)` gives the DuckDB relation)."""
    return LakeSql(config, as_of).arrow(sql)
