"""Training sets from Gold: the `is_training_ready` rows of days D1..D2, read from one pinned Gold snapshot.

    from crypto_assets.ml.export import export_training
    manifest = export_training(config, date(2026, 11, 24), date(2026, 11, 25), None, None, "train_set")

A window (`pin_window`) is the Gold snapshot read (the current one, or the one `as_of` picks: a snapshot id
or a time) and the data files it lists for each (day, product). Every day and product asked for must hold
rows, and every day must have been built by the same feature catalog (the version a Gold commit records in
its snapshot summary, `crypto.feature-catalog-version`); otherwise one line says which days and what to do.

An export writes one Parquet file per (day, product), rows sorted by (trade_time, trade_id), with fixed
writer options and no timestamps, so exporting the same snapshot again gives identical bytes; the
manifest (`manifest.json`) names the snapshot, the catalog version, the rows per day and product, every
column with its unit, each file's SHA-256, and the command that reproduces the export.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from crypto_assets.contracts.gold_features import (
    BY_NAME,
    CATALOG_VERSION_KEY,
    FEATURE_CATALOG_VERSION,
    FEATURE_NAMES,
    TARGET_NAMES,
)
from crypto_assets.contracts.tables import gold_schema, gold_table_def
from crypto_assets.lake.catalog import CatalogConfig, CatalogError, load_table
from crypto_assets.lake.snapshots import DataFile, Provenance, local_path, snapshot_files
from crypto_assets.lake.store import Lake
from crypto_assets.lake.time_travel import parse_as_of, snapshot_of

UNRECORDED = "unrecorded"  # a Gold commit that did not record the catalog version it was built with
MANIFEST = "manifest.json"
DATA_FOLDER = "data"
# Fixed writer options: the same rows give the same bytes (no timestamps, one thread per file's pages).
ROW_GROUP_ROWS = 131_072
WRITE_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=["product_id", "side"],
                     write_statistics=True, data_page_version="1.0", version="2.6", row_group_size=ROW_GROUP_ROWS)
KEY_COLUMNS = ("product_id", "event_date", "trade_id", "trade_time", "price", "size", "side")
EXPORT_COLUMNS = (*KEY_COLUMNS, *FEATURE_NAMES, *TARGET_NAMES)
SORT_KEYS = [("trade_time", "ascending"), ("trade_id", "ascending")]


class TrainingDataError(CatalogError):
    """Gold cannot give the training set asked for; the message is one line saying which days and what to do."""


def export_schema() -> pa.Schema:
    """The exported columns in Gold's types, without field or schema metadata (part of the bytes)."""
    gold = gold_schema()
    return pa.schema([pa.field(n, gold.field(n).type) for n in EXPORT_COLUMNS])


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise TrainingDataError(f"--to {end} is before --from {start}: give the first day first")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _gold_fix(days: list[date]) -> str:
    return (f"build Gold for them (crypto-pipeline backfill --from {days[0]} --to {days[-1]} --layers gold) "
            f"or leave them out of the window")


@dataclass
class GoldWindow:
    """Days x products of `gold.features` as of one snapshot: the data files of each (day, product)."""

    snapshot_id: int
    days: list[date]
    products: list[str]
    files: dict[tuple[date, str], list[DataFile]]
    catalog_versions: dict[str, str] = field(default_factory=dict)  # day -> version its rows were built with

    @property
    def table(self) -> str:
        return gold_table_def().identifier

    @property
    def snapshot_ids(self) -> dict[str, str]:
        """Table -> snapshot id read, as text (63-bit ids are beyond what JSON readers keep exactly)."""
        return {self.table: str(self.snapshot_id)}


def _added_by(table, snapshot: int) -> dict[str, int]:
    """Data file path -> id of the snapshot that added it, for the files live in `snapshot`."""
    snap = table.snapshot_by_id(snapshot)
    out = {}
    for manifest in snap.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            out[local_path(entry.data_file.file_path)] = entry.snapshot_id
    return out


def _catalog_versions(table, snapshot: int, files: dict[tuple[date, str], list[DataFile]]) -> dict[str, set[str]]:
    """Day -> the catalog versions recorded by the commits that wrote its files."""
    added_by = _added_by(table, snapshot)
    recorded: dict[int, str] = {}
    out: dict[str, set[str]] = {}
    for (day, _), parts in files.items():
        for f in parts:
            snap_id = added_by.get(f.path)
            if snap_id not in recorded:
                provenance = Provenance.of(table.snapshot_by_id(snap_id)) if snap_id is not None else None
                recorded[snap_id] = (provenance.extra.get(CATALOG_VERSION_KEY, UNRECORDED) if provenance else UNRECORDED)
            out.setdefault(day.isoformat(), set()).add(recorded[snap_id])
    return out


def _check_versions(versions: dict[str, set[str]]) -> dict[str, str]:
    """One version per day, the same for every day (and the code's own when recorded), else one line."""
    every = set().union(*versions.values()) if versions else set()
    if len(every) > 1:
        shown = "; ".join(f"{d}: {', '.join(sorted(v))}" for d, v in sorted(versions.items()))
        raise TrainingDataError(
            f"the days of the window were built with different feature catalogs ({shown}): rebuild them with the "
            f"current catalog {FEATURE_CATALOG_VERSION} (crypto-pipeline backfill --from {min(versions)} --to "
            f"{max(versions)} --layers gold) or choose days built with one version")
    (version,) = every or {UNRECORDED}
    if version not in (UNRECORDED, FEATURE_CATALOG_VERSION):
        raise TrainingDataError(
            f"the days {min(versions)}..{max(versions)} were built with feature catalog {version}, this code's is "
            f"{FEATURE_CATALOG_VERSION}: rebuild them (crypto-pipeline backfill --from {min(versions)} --to "
            f"{max(versions)} --layers gold) or use the code that built them")
    return {d: version for d in sorted(versions)}


def pin_window(config: CatalogConfig, start: date, end: date, products: list[str] | None = None,
               as_of=None) -> GoldWindow:
    """The window D1..D2 x products (all the snapshot holds in those days when None) as of one Gold snapshot."""
    days = days_between(start, end)
    t = gold_table_def()
    table = load_table(config, t)
    snap = snapshot_of(table, parse_as_of(as_of), t.identifier)
    if snap is None:
        raise TrainingDataError(f"{t.identifier} holds no data yet (lake {config.root}): run `make demo` or build "
                                f"Gold for {start}..{end} first")
    where = {"event_date": days, **({"product_id": list(products)} if products else {})}
    _, found = snapshot_files(table, where, snap)
    files: dict[tuple[date, str], list[DataFile]] = {}
    for f in found:
        if f.records:
            files.setdefault((f.partition["event_date"], f.partition["product_id"]), []).append(f)
    chosen = sorted(products) if products else sorted({p for _, p in files})
    missing = [(d, p) for d in days for p in (chosen or ["any product"]) if (d, p) not in files]
    if missing:
        empty_days = sorted({d for d, _ in missing})
        shown = ", ".join(f"{d} {p}" for d, p in missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise TrainingDataError(f"{t.identifier} @ snapshot {snap} has no rows for {shown}: {_gold_fix(empty_days)}")
    versions = _check_versions(_catalog_versions(table, snap, files))
    return GoldWindow(snap, days, chosen, files, versions)


def read_partition(lake: Lake, files: list[DataFile], columns: list[str] | None = None) -> pa.Table:
    """The training-ready rows of one (day, product), sorted by (trade_time, trade_id)."""
    wanted = list(columns or EXPORT_COLUMNS)
    rows = lake.read_files([f.path for f in files], [*dict.fromkeys([*wanted, "is_training_ready", "trade_time",
                                                                       "trade_id"])])
    rows = rows.filter(rows.column("is_training_ready")).sort_by(SORT_KEYS)
    return rows.select(wanted)


def lake_of(config: CatalogConfig) -> Lake:
    return Lake(config.root, config.endpoint_url, config.aws_region)


def columns_manifest() -> list[dict]:
    """Every exported column with its type and unit (from the feature registry) and its role."""
    schema = export_schema()
    out = []
    for name in EXPORT_COLUMNS:
        f = BY_NAME.get(name)
        role = "key" if f is None else "target" if name in TARGET_NAMES else "feature"
        out.append({"name": name, "type": str(schema.field(name).type), "role": role,
                    "unit": f.unit if f else _KEY_UNITS[name]})
    return out


_KEY_UNITS = {"product_id": "", "event_date": "UTC day", "trade_id": "", "trade_time": "UTC, microseconds",
              "price": "quote currency", "size": "base currency", "side": "BUY | SELL"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prepare_output(output: Path) -> None:
    """An empty or new folder, or an earlier export (replaced): never somebody else's files."""
    if output.exists() and not output.is_dir():
        raise TrainingDataError(f"--output {output} is a file: give a folder (it is created when missing)")
    if output.is_dir():
        others = [p.name for p in output.iterdir() if p.name not in (MANIFEST, DATA_FOLDER)]
        if others or (any(output.iterdir()) and not (output / MANIFEST).exists()):
            raise TrainingDataError(f"--output {output} holds other files ({', '.join(sorted(others)[:3]) or 'data'}): "
                                    f"give an empty or new folder, or the folder of an earlier export to replace it")
        if (output / DATA_FOLDER).is_dir():
            for old in sorted((output / DATA_FOLDER).rglob("*.parquet")):
                old.unlink()
    (output / DATA_FOLDER).mkdir(parents=True, exist_ok=True)


def reproduce_command(window: GoldWindow, output: str) -> str:
    args = ["crypto-pipeline", "export-training", "--from", window.days[0].isoformat(), "--to",
            window.days[-1].isoformat(), "--products", ",".join(window.products), "--as-of", str(window.snapshot_id),
            "--output", output]
    return shlex.join(args)


def export_training(config: CatalogConfig, start: date, end: date, products: list[str] | None, as_of,
                    output: str | Path) -> dict:
    """Writes the window's training-ready rows under `output` and returns the manifest written beside them."""
    import pyarrow.parquet as pq

    window = pin_window(config, start, end, products, as_of)
    output = Path(output)
    _prepare_output(output)
    lake, schema = lake_of(config), export_schema()
    rows: dict[str, dict[str, int]] = {}
    files = []
    for product in window.products:
        for day in window.days:
            table = read_partition(lake, window.files[(day, product)]).cast(schema)
            # Product, then day: the files in name order hold the rows sorted by (product, trade_time, trade_id).
            rel = f"{DATA_FOLDER}/{product}/{day.isoformat()}.parquet"
            path = output / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, **WRITE_OPTIONS)
            rows.setdefault(day.isoformat(), {})[product] = table.num_rows
            files.append({"path": rel, "rows": table.num_rows, "sha256": _sha256(path)})
    manifest = {
        "kind": "gold training set",
        "gold_table": window.table,
        "gold_snapshot_ids": window.snapshot_ids,
        "as_of": None if as_of is None else str(as_of),
        "feature_catalog_version": FEATURE_CATALOG_VERSION,
        "gold_catalog_versions": window.catalog_versions,
        "from": window.days[0].isoformat(),
        "to": window.days[-1].isoformat(),
        "products": window.products,
        "rows": rows,
        "total_rows": sum(f["rows"] for f in files),
        "sort_order": ["product_id", "trade_time", "trade_id"],
        "files": files,
        "columns": columns_manifest(),
        "command": reproduce_command(window, str(output)),
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        snapshot = int(manifest["gold_snapshot_ids"][gold_table_def().identifier])
        date.fromisoformat(manifest["from"]), date.fromisoformat(manifest["to"])
    except FileNotFoundError:
        raise TrainingDataError(f"no manifest at {path}: give the manifest.json of an export (or its folder)") from None
    except (ValueError, KeyError, TypeError):
        raise TrainingDataError(f"{path} is not the manifest of a training export (no Gold snapshot id, or no "
                                f"from/to days): give the manifest.json `crypto-pipeline export-training` wrote") from None
    manifest["_snapshot"] = snapshot
    return manifest


def reproduce(config: CatalogConfig, manifest_path: str | Path, output: str | Path) -> tuple[dict, list[str]]:
    """Exports again what a manifest describes (its Gold snapshot, days and products) into `output`; returns
    the new manifest and the files whose bytes differ from the manifest's (empty: identical)."""
    old = read_manifest(manifest_path)
    new = export_training(config, date.fromisoformat(old["from"]), date.fromisoformat(old["to"]), old["products"],
                          old["_snapshot"], output)
    before = {f["path"]: f["sha256"] for f in old["files"]}
    after = {f["path"]: f["sha256"] for f in new["files"]}
    differ = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    return new, differ
