"""The lake's Iceberg tables in the Glue Data Catalog, on moto's server (Glue and S3 over HTTP, as in AWS):
created from their declaration, committed with the catalog's compare-and-swap, read back from S3."""

from __future__ import annotations

import time
from datetime import date

import boto3
import pyarrow as pa
import pytest

from crypto_assets.contracts.tables import TABLES, hive_type, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import CatalogConfig, create_tables, load_table
from crypto_assets.lake.snapshots import Provenance

DAY = date(2026, 11, 30)


def _rows(t, n: int, tag: float, product: str = "BTC-USD") -> pa.Table:
    base = {name: None for name in t.schema.names}
    return pa.Table.from_pylist([{**base, "product_id": product, "event_date": DAY, "trade_id": i, "price": tag}
                                 for i in range(n)], schema=t.schema)


@pytest.fixture
def config(s3_settings) -> CatalogConfig:
    return CatalogConfig.from_settings(s3_settings)


def test_settings_of_an_s3_lake_open_the_glue_catalog(s3_settings, config):
    assert (config.kind, config.glue_database, config.endpoint_url) == (
        "glue", s3_settings.glue_database, s3_settings.s3_endpoint_url)
    assert config.identifier(silver_table_def("trades")) == (s3_settings.glue_database, "silver_trades")


def test_create_tables_makes_iceberg_tables_in_the_glue_database(config, moto_endpoint, bucket):
    assert sorted(create_tables(config)) == sorted(TABLES)
    assert create_tables(config) == []  # idempotent
    glue = boto3.client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    found = {t["Name"]: t for t in glue.get_tables(DatabaseName=config.glue_database)["TableList"]}
    assert set(found) == {t.flat_name for t in TABLES.values()}
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    for t in TABLES.values():
        table = found[t.flat_name]
        params = table["Parameters"]
        assert params["table_type"] == "ICEBERG"
        location = f"s3://{bucket}/lake/{t.layer}/{t.name}"
        assert params["metadata_location"].startswith(f"{location}/metadata/00000-")
        key = params["metadata_location"][len(f"s3://{bucket}/"):]
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # the metadata file is in S3
        assert table["StorageDescriptor"]["Location"] == location
        # Athena's view of the columns: every declared column (partition columns included), Hive types.
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == [(f.name, hive_type(f.type)) for f in t.schema], t.identifier
        iceberg = load_table(config, t)
        assert [f.name for f in iceberg.spec().fields] == list(t.partition_by)
        assert iceberg.format_version == 2


def test_replace_and_append_commit_through_the_glue_catalog_and_read_back_from_s3(config, moto_endpoint):
    t = silver_table_def("trades")
    glue = boto3.client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")

    def glue_state():
        table = glue.get_table(DatabaseName=config.glue_database, Name=t.flat_name)["Table"]
        return table["VersionId"], table["Parameters"]["metadata_location"]

    where = {"product_id": "BTC-USD", "event_date": DAY}
    first = snapshots.replace(config, t, _rows(t, 5, 1.0), where, Provenance("silver_trades", "p1", run_id="r1"))
    v1, meta1 = glue_state()
    second = snapshots.replace(config, t, _rows(t, 3, 2.0), where,
                               Provenance("silver_trades", "p1", run_id="r2", upstream={"bronze.kafka_trades": 7}))
    v2, meta2 = glue_state()
    assert second != first and int(v2) > int(v1) and meta2 != meta1  # each commit moved the catalog's pointer
    table = load_table(config, t)
    assert table.metadata_location == meta2 and snapshots.snapshot_id(table) == second
    got = snapshots.read(table, where)
    assert got.num_rows == 3 and set(got.column("price").to_pylist()) == {2.0}
    assert Provenance.of(table.snapshot_by_id(second)) == Provenance(
        "silver_trades", "p1", "r2", {"bronze.kafka_trades": 7})
    assert snapshots.read(table, where, snapshot=first).num_rows == 5  # time travel to the first commit

    other = snapshots.append(config, t, _rows(t, 2, 3.0, product="ETH-USD"), Provenance("silver_trades", "p2"))
    table = load_table(config, t)
    assert snapshots.snapshot_id(table) == other and snapshots.read(table).num_rows == 5
    _, files = snapshots.snapshot_files(table, {"product_id": "ETH-USD"})
    assert [f.partition for f in files] == [{"product_id": "ETH-USD", "event_date": DAY}]
    assert files[0].path.startswith(f"s3://{config.root[len('s3://'):]}/silver/trades/data/")


def test_a_stale_glue_table_version_is_refused(config, moto_endpoint):
    """The compare-and-swap Iceberg commits rely on: an UpdateTable naming a version that is no longer current
    fails (AWS's behaviour; moto's server is made to check it in `support/aws.py`)."""
    t = silver_table_def("ticker")
    load_table(config, t)
    glue = boto3.client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    table = glue.get_table(DatabaseName=config.glue_database, Name=t.flat_name)["Table"]
    version = table["VersionId"]
    table_input = {k: table[k] for k in ("Name", "StorageDescriptor", "Parameters", "TableType")}
    glue.update_table(DatabaseName=config.glue_database, TableInput=table_input, VersionId=version)
    with pytest.raises(glue.exceptions.ConcurrentModificationException):
        glue.update_table(DatabaseName=config.glue_database, TableInput=table_input, VersionId=version)


def _writer(config: CatalogConfig, tag: float, times: int, results) -> None:
    """Another process: replaces the partition `times` times with 10 rows tagged `tag`."""
    t = silver_table_def("trades")
    where = {"product_id": "BTC-USD", "event_date": DAY}
    load_table(config, t)  # catalog opened before the first timed commit
    start = time.time()
    try:
        for i in range(times):
            snapshots.replace(config, t, _rows(t, 10, tag), where, Provenance("silver_trades", run_id=f"{tag}-{i}"))
        results.put((tag, "ok", (start, time.time())))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put((tag, f"{type(exc).__name__}: {exc}", (start, time.time())))


def test_two_writers_racing_through_the_glue_catalog_lose_no_commit(config):
    """Two processes replace the same partition at once: the Glue catalog's version check serialises them
    (the loser retries on the new snapshot), every replace lands as its own commit, none is lost or doubled."""
    import multiprocessing

    t = silver_table_def("trades")
    load_table(config, t)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    times = 8
    writers = [ctx.Process(target=_writer, args=(config, tag, times, results)) for tag in (1.0, 2.0)]
    for w in writers:
        w.start()
    got = [results.get(timeout=180) for _ in writers]
    outcomes, spans = {tag: what for tag, what, _ in got}, {tag: span for tag, _, span in got}
    for w in writers:
        w.join(timeout=30)
    assert outcomes == {1.0: "ok", 2.0: "ok"}
    table = load_table(config, t)
    runs = [Provenance.of(s).run_id for s in table.snapshots() if Provenance.of(s) is not None]
    # A replace is one catalog commit (a delete and an append snapshot): each run id appears in exactly one.
    assert sorted(set(runs)) == sorted(f"{tag}-{i}" for tag in (1.0, 2.0) for i in range(times))
    (start1, end1), (start2, end2) = spans.values()
    assert start1 < end2 and start2 < end1, spans  # they did write at the same time
    final = snapshots.read(table, {"product_id": "BTC-USD", "event_date": DAY})
    assert final.num_rows == 10 and len(set(final.column("price").to_pylist())) == 1
