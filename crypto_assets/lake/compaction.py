"""Merging the streaming job's small Bronze files, so a reader of a day opens dozens of files, not thousands.

The stream writes a few files per micro-batch (`stream-b<batch>-<n>.snappy.parquet`: 17,280 batches a
day at a 5 s trigger). Once an ingest day holds `fan_in` micro-batches that the checkpoint has committed,
their files are merged into one `compact-L1-b<first>-b<last>.snappy.parquet`, its rows ordered by
their owning product, one row group per product; once it holds `fan_in` level-1 files, those are
concatenated, row group by row group, into one level-2 file. A day then ends with at most about
3 x `fan_in` + 17,280 / `fan_in`^2 files, each row is rewritten twice, and a reader of one product
(a Silver run) reads only the row groups whose product_id / key statistics allow it.

Exactly once for readers: a merged file is written whole (renamed into place locally, one upload on S3)
before its inputs are deleted, and a file whose batch range lies inside a merged file's range is
superseded by it (`visible`), so a reader listing the folder in between still reads each row once. A
crash between the two steps leaves superseded files behind, which the next merge in that folder
deletes. Only batches before the running one are merged: a batch the stream may still replay (a crash
before its checkpoint commit) keeps its own files, which its replay rewrites.

No Dagster, no Spark: the local stream and the Glue streaming jobs call `compact_folder` from their
micro-batch writer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.store import LakeStore

log = logging.getLogger(__name__)

DEFAULT_FAN_IN = Settings.model_fields["stream_compact_files"].default  # the default of CRYPTO_STREAM_COMPACT_FILES
MAX_LEVEL = 2
_STREAM = re.compile(r"^stream-b(\d{12})-\d{4}\.snappy\.parquet$")
_MERGED = re.compile(r"^compact-L(\d+)-b(\d{12})-b(\d{12})\.snappy\.parquet$")


@dataclass(frozen=True)
class Piece:
    """A streamed Bronze file and the micro-batches it holds (level 0: one batch's own file)."""

    name: str
    level: int
    first: int
    last: int


def piece(name: str) -> Piece | None:
    if m := _STREAM.match(name):
        return Piece(name, 0, int(m.group(1)), int(m.group(1)))
    if m := _MERGED.match(name):
        return Piece(name, int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None  # a batch-mode file, or anything else: not the stream's


def merged_name(level: int, first: int, last: int) -> str:
    return f"compact-L{level}-b{first:012d}-b{last:012d}.snappy.parquet"


def _superseded(p: Piece, merged: list[Piece]) -> bool:
    return any(m.level > p.level and m.first <= p.first and p.last <= m.last for m in merged)


def visible(names: list[str]) -> list[str]:
    """The names to read, in their order: all but files superseded by a merged file."""
    pieces = [piece(n) for n in names]
    merged = [p for p in pieces if p is not None and p.level > 0]
    return [n for n, p in zip(names, pieces) if p is None or not _superseded(p, merged)]


def visible_paths(paths: list[str]) -> list[str]:
    """`visible` applied to full file paths, folder by folder (order kept)."""
    by_folder: dict[str, list[str]] = {}
    for p in paths:
        folder, _, name = p.rpartition("/")
        by_folder.setdefault(folder, []).append(name)
    keep = {f"{folder}/{n}" for folder, names in by_folder.items() for n in visible(names)}
    return [p for p in paths if p in keep]


def compact_folder(lake: LakeStore, folder: str, before_batch: int, fan_in: int) -> list[str]:
    """Merges what is due in one ingest-day folder; returns the names of the merged files written."""
    names = lake.list_names(folder)
    shown = set(visible(names))
    for name in names:
        if name not in shown:  # left by a crash after its merged file was written
            lake.delete_file(f"{folder}/{name}")
    pieces = [p for p in (piece(n) for n in sorted(shown)) if p is not None and p.last < before_batch]
    written = []
    for level in range(MAX_LEVEL):
        group = sorted((p for p in pieces if p.level == level), key=lambda p: (p.first, p.name))
        if len({(p.first, p.last) for p in group}) < fan_in:
            continue
        first, last = group[0].first, max(p.last for p in group)
        merged = Piece(merged_name(level + 1, first, last), level + 1, first, last)
        files = [f"{folder}/{p.name}" for p in group]
        groups = _by_product(lake.read_files(files)) if level == 0 else (g for f in files for g in lake.row_groups(f))
        rows = lake.write_row_groups(groups, f"{folder}/{merged.name}")
        for f in files:
            lake.delete_file(f)
        log.info("bronze compaction: %d files of batches %d..%d -> %s (%d rows)", len(group), merged.first,
                 merged.last, merged.name, rows)
        pieces = [p for p in pieces if p not in group] + [merged]
        written.append(merged.name)
    return written


def _by_product(table):
    """The rows in (owning product, Kafka partition, offset) order, one table per product: the row
    groups of a level-1 file, so its product_id / key statistics tell readers where each product is."""
    import numpy as np
    import pyarrow.compute as pc

    from crypto_assets.contracts.ownership import owner_products

    owner = owner_products(table.column("product_id"), table.column("key"))
    table = table.append_column("_owner", owner)
    table = table.take(pc.sort_indices(table, [("_owner", "ascending"), ("partition", "ascending"),
                                               ("offset", "ascending")]))
    owners = table.column("_owner").to_numpy(zero_copy_only=False)
    table = table.drop_columns(["_owner"])
    bounds = np.flatnonzero(owners[1:] != owners[:-1]) + 1
    for lo, hi in zip([0, *bounds], [*bounds, len(owners)]):
        yield table.slice(lo, hi - lo)
