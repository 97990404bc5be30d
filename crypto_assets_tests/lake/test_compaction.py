"""Merging streamed Bronze files: which files a reader sees, what is merged when, and crash leftovers."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from crypto_assets.lake.compaction import compact_folder, merged_name, piece, visible, visible_paths
from crypto_assets.lake.store import Lake

PRODUCTS = ["ETH-USD", "BTC-USD", "SOL-USD"]


def _stream_file(folder, batch: int, n: int = 0, rows: int = 2):
    """A micro-batch's file: its rows spread over products as the stream's are (interleaved)."""
    products = [PRODUCTS[(batch + i) % len(PRODUCTS)] for i in range(rows)]
    table = pa.table({"partition": pa.array([n] * rows, pa.int32()),
                      "offset": pa.array([batch * 100 + i for i in range(rows)], pa.int64()),
                      "product_id": pa.array(products), "key": pa.array(products)})
    pq.write_table(table, folder / f"stream-b{batch:012d}-{n:04d}.snappy.parquet")


def _offsets(lake: Lake, folder) -> list[tuple[int, int]]:
    files = [f"{folder}/{n}" for n in visible(lake.list_names(str(folder)))]
    table = lake.read_files(files)
    return sorted(zip(table.column("partition").to_pylist(), table.column("offset").to_pylist()))


def test_names_and_what_supersedes_what():
    assert piece("stream-b000000000042-0003.snappy.parquet").level == 0
    assert (piece(merged_name(2, 3, 9)).first, piece(merged_name(2, 3, 9)).last) == (3, 9)
    assert piece("part-00000-abc.snappy.parquet") is None  # batch-mode files are not the stream's
    names = ["part-00000-abc.snappy.parquet", "stream-b000000000003-0000.snappy.parquet",
             "stream-b000000000010-0000.snappy.parquet", merged_name(1, 0, 4), merged_name(1, 5, 9), merged_name(2, 0, 9)]
    assert visible(names) == ["part-00000-abc.snappy.parquet", "stream-b000000000010-0000.snappy.parquet",
                              merged_name(2, 0, 9)]
    assert visible_paths([f"/a/{n}" for n in names] + ["/b/stream-b000000000003-0000.snappy.parquet"]) == [
        "/a/part-00000-abc.snappy.parquet", "/a/stream-b000000000010-0000.snappy.parquet", f"/a/{merged_name(2, 0, 9)}",
        "/b/stream-b000000000003-0000.snappy.parquet"]


def test_merges_committed_batches_in_levels_and_keeps_every_row_once(tmp_path):
    lake, folder = Lake(str(tmp_path)), tmp_path / "ingest_date=2026-07-01"
    folder.mkdir()
    for b in range(4):
        _stream_file(folder, b, 0)
        _stream_file(folder, b, 1)  # a batch writes one file per Kafka partition
    expected = _offsets(lake, folder)

    # Batch 4 is running: batches 0-3 are committed; with a fan-in of 3 they become one level-1 file.
    assert compact_folder(lake, str(folder), before_batch=4, fan_in=3) == [merged_name(1, 0, 3)]
    assert lake.list_names(str(folder)) == [merged_name(1, 0, 3)]
    assert _offsets(lake, folder) == expected

    # Two more level-1 files, then a third: the three become one level-2 file.
    for lo in (4, 8):
        for b in range(lo, lo + 4):
            _stream_file(folder, b)
        compact_folder(lake, str(folder), before_batch=lo + 4, fan_in=3)
    assert lake.list_names(str(folder)) == [merged_name(2, 0, 11)]
    assert len(_offsets(lake, folder)) == 8 * 2 + 8 * 2


def test_a_batch_that_may_still_be_replayed_keeps_its_files(tmp_path):
    lake, folder = Lake(str(tmp_path)), tmp_path / "d"
    folder.mkdir()
    for b in (0, 1, 2):
        _stream_file(folder, b)
    assert compact_folder(lake, str(folder), before_batch=2, fan_in=3) == []  # only 0 and 1 are committed
    assert compact_folder(lake, str(folder), before_batch=2, fan_in=2) == [merged_name(1, 0, 1)]
    assert lake.list_names(str(folder)) == [merged_name(1, 0, 1), "stream-b000000000002-0000.snappy.parquet"]


def test_leftovers_of_a_crash_are_read_once_and_deleted_by_the_next_merge(tmp_path):
    lake, folder = Lake(str(tmp_path)), tmp_path / "d"
    folder.mkdir()
    for b in (0, 1):
        _stream_file(folder, b)
    expected = _offsets(lake, folder)
    compact_folder(lake, str(folder), before_batch=2, fan_in=2)
    _stream_file(folder, 0)  # as if the crash came between writing the merged file and deleting its inputs
    assert _offsets(lake, folder) == expected
    compact_folder(lake, str(folder), before_batch=2, fan_in=2)
    assert lake.list_names(str(folder)) == [merged_name(1, 0, 1)]


def test_merged_files_are_clustered_by_product_so_one_product_reads_only_its_row_groups(tmp_path):
    lake, folder = Lake(str(tmp_path)), tmp_path / "d"
    folder.mkdir()
    for b in range(4):
        _stream_file(folder, b, rows=6)
    [l1] = compact_folder(lake, str(folder), before_batch=4, fan_in=4)
    meta = pq.ParquetFile(folder / l1).metadata
    assert meta.num_row_groups == 3  # one per product, in product order
    ranges = [(meta.row_group(g).column(2).statistics.min, meta.row_group(g).column(2).statistics.max) for g in range(3)]
    assert ranges == [("BTC-USD", "BTC-USD"), ("ETH-USD", "ETH-USD"), ("SOL-USD", "SOL-USD")]
    table, rows = lake.read_groups_holding(str(folder / l1), None, ["ETH-USD"], ("product_id", "key"))
    assert set(table.column("product_id").to_pylist()) == {"ETH-USD"} and table.num_rows == 8
    assert lake.read_rows(str(folder / l1), "offset", rows).to_pylist() == table.column("offset").to_pylist()

    # Level 2 keeps the row groups: still one product per row group.
    for lo in (4, 8, 12):
        for b in range(lo, lo + 4):
            _stream_file(folder, b, rows=6)
        compact_folder(lake, str(folder), before_batch=lo + 4, fan_in=4)
    [l2] = lake.list_names(str(folder))
    meta = pq.ParquetFile(folder / l2).metadata
    assert meta.num_row_groups == 12 and all(
        meta.row_group(g).column(2).statistics.min == meta.row_group(g).column(2).statistics.max for g in range(12))
