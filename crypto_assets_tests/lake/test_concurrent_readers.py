"""Readers under writers, on the local catalog: while one process replaces a Silver partition 50 times and
Spark appends to Bronze (as the stream commits), readers in two other processes (pyiceberg, and Spark
through the catalog) read both tables over and over. Every read must be one snapshot's rows: the Silver
partition whole (one writer's version, every row once), Bronze a gap-free prefix of the offsets."""

from __future__ import annotations

import multiprocessing
import time
from datetime import date

from pyspark.sql import functions as F

from crypto_assets.contracts.tables import bronze_table, silver_table_def
from crypto_assets.lake.catalog import CatalogConfig, load_table
from crypto_assets.lake.snapshots import Provenance, replace
from crypto_assets.lake.spark import lake_session, spark_table
from crypto_assets_tests.lake.test_catalog import trades

DAY = date(2026, 1, 1)
ROWS = 40  # rows per Silver version
REPLACES = 50
BATCH = 25  # Bronze rows per append
APPENDS = 12


def _config(root: str) -> CatalogConfig:
    return CatalogConfig("sql", f"sqlite:///{root}/catalog.db", root)


def _silver_writer(root: str, start) -> None:
    config = _config(root)
    start.wait()
    for version in range(1, REPLACES + 1):
        replace(config, silver_table_def("trades"), trades(ROWS, tag=version), {"product_id": "BTC-USD",
                "event_date": DAY}, Provenance("silver_trades", run_id=f"v{version}"))


def _silver_ok(prices: list, ids: list) -> str | None:
    if not prices:
        return None  # before the first replace
    if len(set(prices)) != 1 or sorted(ids) != list(range(ROWS)):
        return f"silver read {len(ids)} rows of versions {sorted(set(prices))}"
    return None


def _bronze_ok(offsets: list) -> str | None:
    if sorted(offsets) != list(range(len(offsets))) or len(offsets) % BATCH:
        return f"bronze read {len(offsets)} offsets, not a whole number of batches without gaps or repeats"
    return None


def _pyiceberg_reader(root: str, start, stop, out) -> None:
    from crypto_assets.lake.snapshots import read

    config = _config(root)
    start.wait()
    reads, errors = 0, []
    while not stop.is_set():
        silver = read(load_table(config, silver_table_def("trades")), columns=["price", "trade_id"])
        bronze = read(load_table(config, bronze_table("trades")), columns=["offset"])
        for problem in (_silver_ok(silver.column("price").to_pylist(), silver.column("trade_id").to_pylist()),
                        _bronze_ok(bronze.column("offset").to_pylist())):
            if problem:
                errors.append(problem)
        reads += 1
    out.put(("pyiceberg", reads, errors[:5]))


def _spark_reader(root: str, state_dir: str, jvm_dir: str, start, stop, out) -> None:
    from crypto_assets.lake.spark import build_spark_session

    config = _config(root)
    spark = lake_session(build_spark_session(master="local[1]", shuffle_partitions=1, driver_memory="1g",
                                             state_dir=state_dir, jvm_dir=jvm_dir, app_name="reader"), config)
    out.put(("spark-ready", 0, []))
    start.wait()
    reads, errors = 0, []
    while not stop.is_set():
        silver = spark.table(spark_table(config, silver_table_def("trades"))).select("price", "trade_id").collect()
        bronze = spark.table(spark_table(config, bronze_table("trades"))).select("offset").collect()
        for problem in (_silver_ok([r.price for r in silver], [r.trade_id for r in silver]),
                        _bronze_ok([r.offset for r in bronze])):
            if problem:
                errors.append(problem)
        reads += 1
    spark.stop()
    out.put(("spark", reads, errors[:5]))


def _bronze_batch(spark, schema, first: int):
    """BATCH Bronze rows with consecutive offsets from `first`, in the table's column order."""
    return spark.range(first, first + BATCH).select(
        *[(F.col("id").alias("offset") if f.name == "offset" else
           F.lit(0).cast("int").alias("partition") if f.name == "partition" else
           F.lit(DAY).alias("ingest_date") if f.name == "ingest_date" else
           F.lit(None).cast(f.dataType).alias(f.name)) for f in schema.fields])


def test_readers_see_whole_snapshots_while_two_writers_commit(spark, base_settings, tmp_path):
    root = str(tmp_path / "lake")
    config = _config(root)
    load_table(config, silver_table_def("trades"))
    load_table(config, bronze_table("trades"))
    session = lake_session(spark, config)
    name = spark_table(config, bronze_table("trades"))
    schema = session.table(name).schema

    ctx = multiprocessing.get_context("spawn")
    start, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_pyiceberg_reader, args=(root, start, stop, out)),
               ctx.Process(target=_spark_reader, args=(root, base_settings.state_dir, base_settings.jvm_dir, start,
                                                       stop, out))]
    writer = ctx.Process(target=_silver_writer, args=(root, start))
    for p in (*readers, writer):
        p.start()
    assert out.get(timeout=180)[0] == "spark-ready"
    start.set()
    for i in range(APPENDS):  # the stream's kind of commit: one Spark append per micro-batch
        _bronze_batch(session, schema, i * BATCH).writeTo(name).option(
            "snapshot-property.crypto.batch-id", str(i)).append()
    writer.join(300)
    assert writer.exitcode == 0
    time.sleep(1.0)  # a few more reads of the final state
    stop.set()
    results = {kind: (reads, errors) for kind, reads, errors in (out.get(timeout=120) for _ in readers)}
    for p in readers:
        p.join(60)
    for kind, (reads, errors) in results.items():
        assert errors == [], (kind, errors)
        assert reads >= 3, (kind, reads)
    # The writers really raced the readers: every version and every batch landed.
    silver = load_table(config, silver_table_def("trades"))
    assert sum(1 for s in silver.snapshots() if s.summary.operation.value == "append") == REPLACES
    bronze = session.table(name).select("offset").collect()
    assert sorted(r.offset for r in bronze) == list(range(APPENDS * BATCH))
