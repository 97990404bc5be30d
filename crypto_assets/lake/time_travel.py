"""Reading any table as it was: by snapshot id or by time (what a training job pins), and its history.

    from crypto_assets.lake.catalog import CatalogConfig
    from crypto_assets.lake.time_travel import read_as_of
    rows = read_as_of(config, "gold.features", as_of="2026-12-01T12:00:00Z", where={"product_id": "BTC-USD"})

Tables are named as declared (`silver.trades`) or as Athena shows them (`silver_trades`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from crypto_assets.contracts.tables import TABLES, TableDef
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, load_table
from crypto_assets.lake.snapshots import Provenance, read, snapshot_at


def table_def(name: str) -> TableDef:
    """The declaration of a table named `silver.trades` or `silver_trades`."""
    for t in TABLES.values():
        if name in (t.identifier, t.flat_name):
            return t
    raise CatalogError(f"no table {name!r}; the tables are {', '.join(sorted(TABLES))}")


def parse_as_of(value: str | int | datetime | None) -> int | datetime | None:
    """A snapshot id (digits) or a time (ISO 8601; UTC when no zone is given)."""
    if value is None or isinstance(value, (int, datetime)):
        return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value
    text = str(value).strip()
    if text.lstrip("-").isdigit() and len(text) > 10:
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CatalogError(f"--as-of {value!r} is neither a snapshot id nor a time; give a snapshot id from "
                           f"`crypto-pipeline lake history TABLE` or a time like 2026-12-01T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def snapshot_of(table, as_of: int | datetime | None, name: str = "") -> int | None:
    """The snapshot id to read: the one given (checked), the one current at a time, or the current one."""
    if as_of is None:
        snap = table.current_snapshot()
        return snap.snapshot_id if snap else None
    if isinstance(as_of, datetime):
        return snapshot_at(table, as_of)
    if table.snapshot_by_id(as_of) is None:
        raise CatalogError(f"table {name} has no snapshot {as_of} (never, or expired by maintenance): see "
                           f"`crypto-pipeline lake history {name}`")
    return as_of


def read_as_of(config: CatalogConfig, name: str, as_of=None, where: dict | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """The rows of a table (optionally some partitions and columns) as of a snapshot id or a time."""
    t = table_def(name)
    table = load_table(config, t)
    snap = snapshot_of(table, parse_as_of(as_of), t.identifier)
    if snap is None:
        return t.schema.empty_table().select(columns) if columns else t.schema.empty_table()
    return read(table, where, columns, snapshot=snap)


@dataclass(frozen=True)
class HistoryEntry:
    snapshot_id: int
    committed_at: datetime
    operation: str
    added_records: int
    deleted_records: int
    provenance: Provenance | None


def history(config: CatalogConfig, name: str) -> list[HistoryEntry]:
    """The table's kept snapshots on its main branch, oldest first, with who wrote each."""
    from crypto_assets.lake.snapshots import snapshots_after

    table = load_table(config, table_def(name))
    out = []
    for s in snapshots_after(table, None)[0]:
        props = s.summary.additional_properties if s.summary else {}
        out.append(HistoryEntry(s.snapshot_id, datetime.fromtimestamp(s.timestamp_ms / 1000, timezone.utc),
                                s.summary.operation.value if s.summary else "", int(props.get("added-records", 0)),
                                int(props.get("deleted-records", 0)), Provenance.of(s)))
    return out
