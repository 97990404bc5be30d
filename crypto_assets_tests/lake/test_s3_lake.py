"""The S3 lake on moto's server: its Iceberg tables through the Glue Data Catalog (pyiceberg and Spark),
readers that never see a half-replaced partition, and the lake's own small files (checkpoints)."""

from __future__ import annotations

from datetime import date

import boto3
import pyarrow as pa
import pytest

from crypto_assets.contracts.tables import silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import CatalogConfig, load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.spark import lake_session, spark_table
from crypto_assets.lake.store import Lake, LakeUnavailableError
from crypto_assets.orchestration.resources.lake import LakeResource


DAY = date(2026, 11, 30)
WHERE = {"product_id": "BTC-USD", "event_date": DAY}


def _tagged(t, n: int, tag: float) -> pa.Table:
    """`n` Silver trade rows of one partition, every one tagged `tag` (in `price`)."""
    base = {name: None for name in t.schema.names}
    return pa.Table.from_pylist([{**base, "product_id": "BTC-USD", "event_date": DAY, "trade_id": i, "price": tag}
                                 for i in range(n)], schema=t.schema)


def test_the_tables_of_an_s3_lake_are_in_the_glue_catalog(s3_settings, moto_endpoint):
    lake = LakeResource.from_settings(s3_settings)
    lake.check()
    assert (lake.catalog, lake.glue_database) == ("glue", s3_settings.glue_database)
    t = silver_table_def("trades")
    table = lake.table(t)  # created on first use, in the Glue database
    glue = boto3.client("glue", endpoint_url=moto_endpoint, region_name="us-east-1")
    found = glue.get_table(DatabaseName=s3_settings.glue_database, Name="silver_trades")["Table"]
    assert found["Parameters"]["table_type"] == "ICEBERG"
    assert table.metadata_location == found["Parameters"]["metadata_location"]
    snapshots.replace(lake.catalog_config, t, _tagged(t, 4, 1.0), WHERE, Provenance("silver_trades"))
    snap, files = snapshots.snapshot_files(lake.table(t), WHERE)
    # The data files are in the lake's bucket, and the lake's file helpers read them (as Silver reads Bronze).
    assert snap is not None and [f.records for f in files] == [4]
    assert files[0].path.startswith(f"{s3_settings.lake_root}/silver/trades/data/product_id=BTC-USD/")
    assert lake.read_files([f.path for f in files], ["trade_id"]).column("trade_id").to_pylist() == [0, 1, 2, 3]


def test_sql_reads_the_s3_lake_through_the_glue_catalog(s3_settings):
    """`crypto-pipeline sql` on an S3 lake: the files of each table's snapshot, read from the bucket."""
    from crypto_assets.lake.sql import LakeSql

    config = CatalogConfig.from_settings(s3_settings)
    t = silver_table_def("trades")
    snapshots.replace(config, t, _tagged(t, 4, 1.0), WHERE, Provenance("silver_trades"))
    other = {"product_id": "BTC-USD", "event_date": date(2026, 12, 1)}
    rows = _tagged(t, 2, 2.0)
    rows = rows.set_column(rows.schema.get_field_index("event_date"), "event_date", pa.array([other["event_date"]] * 2))
    snapshots.replace(config, t, rows,
                      other, Provenance("silver_trades"))
    got = LakeSql(config).arrow("SELECT event_date, count(*) AS n, sum(price) AS p FROM silver_trades GROUP BY 1 ORDER BY 1")
    assert got.to_pylist() == [{"event_date": DAY, "n": 4, "p": 4.0}, {"event_date": other["event_date"], "n": 2, "p": 4.0}]


def test_spark_and_pyiceberg_share_the_glue_catalog(s3_settings, s3_spark):
    """Spark (Iceberg's Glue catalog and S3FileIO, the Bronze jobs' path) and pyiceberg (Silver and Gold)
    commit to the same table and each reads what the other wrote."""
    config = CatalogConfig.from_settings(s3_settings)
    t = silver_table_def("trades")
    snapshots.replace(config, t, _tagged(t, 3, 1.0), WHERE, Provenance("silver_trades"))
    session = lake_session(s3_spark, config)
    name = spark_table(config, t)
    assert name == f"lake.{s3_settings.glue_database}.silver_trades"
    assert session.table(name).count() == 3
    session.createDataFrame(_tagged(t, 2, 2.0).to_pandas().replace({float("nan"): None})).writeTo(
        name).overwritePartitions()
    table = load_table(config, t)
    got = snapshots.read(table, WHERE)
    assert got.num_rows == 2 and set(got.column("price").to_pylist()) == {2.0}
    assert len(table.history()) == 2  # one commit each: pyiceberg's, then Spark's


# ---- readers never see a half-replaced partition ---------------------------------------------------------

ROWS_PER_VERSION = 40
VERSIONS = 25


def _reader(config: CatalogConfig, done, results) -> None:
    """Another process: scans the partition until told to stop; reports what each read saw."""
    t = silver_table_def("trades")
    reads, seen, bad = 0, set(), []
    while not done.is_set() or reads == 0:
        rows = snapshots.read(load_table(config, t), WHERE, columns=["trade_id", "price"])
        tags = set(rows.column("price").to_pylist())
        ids = rows.column("trade_id").to_pylist()
        if rows.num_rows != ROWS_PER_VERSION or len(tags) != 1 or sorted(ids) != list(range(ROWS_PER_VERSION)):
            bad.append((rows.num_rows, sorted(tags)))
        seen |= tags
        reads += 1
    results.put((reads, sorted(seen), bad))


def test_concurrent_readers_see_exactly_one_snapshot_of_a_partition_on_s3(s3_settings):
    """While this process replaces a Silver partition 25 times through the Glue catalog, a reader in another
    process scans it with pyiceberg: every read holds exactly one replace's rows (count and one tag)."""
    import multiprocessing

    config = CatalogConfig.from_settings(s3_settings)
    t = silver_table_def("trades")
    snapshots.replace(config, t, _tagged(t, ROWS_PER_VERSION, 0.0), WHERE, Provenance("silver_trades"))
    ctx = multiprocessing.get_context("spawn")
    done, results = ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_reader, args=(config, done, results))
    reader.start()
    try:
        for version in range(1, VERSIONS + 1):
            snapshots.replace(config, t, _tagged(t, ROWS_PER_VERSION, float(version)), WHERE,
                              Provenance("silver_trades", run_id=str(version)))
        done.set()
        reads, seen, bad = results.get(timeout=120)
    finally:
        done.set()
        reader.join(timeout=30)
        if reader.is_alive():
            reader.kill()
    assert bad == [], bad[:5]
    assert reads >= 5 and len(seen) >= 2, (reads, seen)  # it did read while the writer replaced
    assert set(seen) <= {float(v) for v in range(VERSIONS + 1)}
    final = snapshots.read(load_table(config, t), WHERE)
    assert final.num_rows == ROWS_PER_VERSION and set(final.column("price").to_pylist()) == {float(VERSIONS)}


def test_missing_bucket_and_missing_credentials_are_one_line(moto_endpoint, monkeypatch):
    lake = Lake("s3://no-such-bucket-here/lake", moto_endpoint)
    with pytest.raises(LakeUnavailableError, match="S3 bucket 'no-such-bucket-here' of the lake root .* does not exist"):
        lake.check()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(LakeUnavailableError, match="no AWS credentials found"):
        lake.check()


@pytest.mark.parametrize("where", ["local", "s3"])
def test_the_streams_checkpoint_metadata_is_read_on_both_kinds_of_lake(where, tmp_path, request, moto_endpoint):
    """The stream reads its query id from `<checkpoint>/metadata` (local folder or S3)."""
    if where == "s3":
        settings = request.getfixturevalue("s3_settings")
        lake = LakeResource.from_settings(settings)
        bucket = settings.lake_root.split("://", 1)[1].split("/", 1)[0]
        boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").put_object(
            Bucket=bucket, Key="lake/_checkpoints/trades/metadata", Body=b'{"id":"q-1"}\n')
        base = f"{settings.lake_root}/_checkpoints/trades"
    else:
        lake = LakeResource(root=str(tmp_path))
        (tmp_path / "_checkpoints" / "trades").mkdir(parents=True)
        (tmp_path / "_checkpoints" / "trades" / "metadata").write_text('{"id":"q-1"}\n')
        base = str(tmp_path / "_checkpoints" / "trades")
    assert lake.read_text(f"{base}/metadata") == '{"id":"q-1"}\n'
    with pytest.raises(FileNotFoundError):
        lake.read_text(f"{base}/missing")