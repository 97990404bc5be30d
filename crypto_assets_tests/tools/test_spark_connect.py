"""The warm shared Spark: runs attached to the local Spark Connect server write what a local session writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.tables import bronze_table, silver_table_def
from crypto_assets.lake.spark import lake_session, spark_table
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets.tools.cli import main
from crypto_assets.tools.live import settings_env
from crypto_assets.tools.spark_server import LocalSparkServer, SparkServerError
from crypto_assets_tests.conftest import free_port
from crypto_assets_tests.support.records import send_records, ticker_frame, trades_frame, ts

D = "2026-10-01"


@pytest.fixture(scope="module")
def spark_server(base_settings, tmp_path_factory):
    settings = base_settings.replace(state_dir=str(tmp_path_factory.mktemp("connect-state")),
                                   spark_connect_port=free_port(), spark_driver_memory="1g")
    server = LocalSparkServer(settings)
    server.up()
    yield server
    assert server.down()
    assert not server.status().running


def _lake_rows(spark, settings, t):
    """A table's rows in the lake of `settings`, read by the local Spark through that lake's Iceberg catalog."""
    config = LakeResource.from_settings(settings).catalog_config
    return sorted(map(str, lake_session(spark, config).table(spark_table(config, t)).collect()))


def test_backfill_through_spark_connect_equals_the_local_session(fresh_settings, spark, spark_server, tmp_path):
    s = fresh_settings
    send_records(s.kafka_bootstrap, [
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D}T10:00:00Z"), ts(f"{D}T10:00:00.5Z")),
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [2], f"{D}T10:00:00Z", event_type="snapshot"),
         ts(f"{D}T10:01:00Z")),
        (s.ticker_topic, "BTC-USD", ticker_frame("BTC-USD", f"{D}T10:00:00Z"), ts(f"{D}T10:00:00.2Z")),
    ])
    # Locally, in this process.
    key = MultiPartitionKey({"event_date": D, "product_id": "BTC-USD"})
    instance = DagsterInstance.ephemeral()
    assert materialize(bronze_assets(s), partition_key=D, resources=build_resources(s), instance=instance).success
    result = materialize(silver_assets(s), partition_key=key, resources=build_resources(s), instance=instance)
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())

    # Through the shared server, from another process (as a Dagster run would be): the backfill command.
    # Bronze runs on the server; Silver on its Arrow engine, whichever Spark is configured.
    remote = s.replace(lake_root=str(tmp_path / "remote-lake"), spark_connect_url=spark_server.url)
    home = tmp_path / "dagster-home"
    home.mkdir()
    cli = Path(sys.executable).parent / "crypto-pipeline"
    res = subprocess.run(
        [str(cli), "backfill", "--from", D, "--products", "BTC-USD", "--layers", "bronze,silver"],
        env={**settings_env(remote), "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "[2/2] silver" in res.stdout and "checks 10/10 passed" in res.stdout
    for t in (bronze_table("trades"), silver_table_def("trades"), silver_table_def("ticker")):
        ours = _lake_rows(spark, s, t)
        assert ours and ours == _lake_rows(spark, remote, t), t.identifier


def test_spark_server_status_and_a_taken_port(spark_server, capsys):
    assert spark_server.status().running
    taken = LocalSparkServer(spark_server.settings.replace(state_dir=spark_server.settings.state_dir + "-2"))
    with pytest.raises(SparkServerError, match=f"port {spark_server.port} on 127.0.0.1 is already in use"):
        taken.up()
    assert main(["spark", "status"]) in (0, 3)  # the project's own server (default port): up or not, it answers


def test_local_sessions_and_the_server_list_bronze_files_in_the_driver(spark, spark_server):
    """Both local Spark flavours carry LOCAL_CONF (Silver's hundreds of pinned Bronze files are not
    listed by a Spark job per action) and the uncompressed in-memory cache; Glue keeps Spark's default."""
    from crypto_assets.lake.spark_conf import LOCAL_CONF, RUNTIME_CONF

    keys = ["spark.sql.sources.parallelPartitionDiscovery.threshold", "spark.sql.inMemoryColumnarStorage.compressed"]
    expected = [LOCAL_CONF.get(k) or RUNTIME_CONF[k] for k in keys]
    assert expected == ["100000", "false"]
    assert [spark.conf.get(k) for k in keys] == expected
    # A Spark Connect client cannot start in a process that has a classic session: ask from another one.
    probe = ("import sys; from pyspark.sql import SparkSession; s = SparkSession.builder.remote(sys.argv[1]).getOrCreate(); "
             f"print(','.join(s.conf.get(k) for k in {keys!r}))")
    res = subprocess.run([sys.executable, "-c", probe, spark_server.url], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ",".join(expected)
    assert "spark.sql.sources.parallelPartitionDiscovery.threshold" not in RUNTIME_CONF  # what Glue applies
