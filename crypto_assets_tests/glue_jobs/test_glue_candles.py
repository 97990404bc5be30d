"""Candles with CRYPTO_COMPUTE=glue on moto: the real entry scripts (`glue/gold_candles_1m.py`, `_1h.py`) run in a
local subprocess with the shipped wheel (`LocalGlueRunner`), report through Dagster Pipes what the local compute
reports, and commit to the S3 lake's Iceberg tables in the Glue Data Catalog the rows the local compute commits."""

from __future__ import annotations

from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.contracts.tables import candles_table_def, silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.lake.catalog import load_table
from crypto_assets.lake.snapshots import Provenance
from crypto_assets.lake.store import Lake
from crypto_assets.orchestration.candles import build_candle_assets
from crypto_assets.orchestration.definitions import build_resources
from crypto_assets.tools.aws_deploy import deploy
from crypto_assets_tests.gold.datasets import cross_midnight
from crypto_assets_tests.gold.silver_writer import write_silver
from crypto_assets_tests.support.aws import glue_settings
from crypto_assets_tests.support.local_glue import GLUE_ONLY_METADATA, assert_reports_like_local, local_glue_resources

DAY = "2024-03-11"
SNAPSHOT_METADATA = ("snapshot_id", "upstream_snapshot_ids")  # ids differ between two lakes holding the same rows


def _reports(result) -> dict[str, tuple[dict, dict]]:
    """asset -> (materialization metadata, check -> (passed, metadata)), the Glue run's own links left out."""
    out = {}
    for mat in result.get_asset_materialization_events():
        key = mat.asset_key.to_user_string()
        out[key] = ({k: v.value for k, v in mat.materialization.metadata.items()}, {})
    for c in result.get_asset_check_evaluations():
        out[c.asset_key.to_user_string()][1][c.check_name] = (
            c.passed, {k: v.value for k, v in c.metadata.items() if k not in GLUE_ONLY_METADATA})
    return out


def _rows(lake: Lake, interval: str) -> list[tuple]:
    table = snapshots.read(lake.table(candles_table_def(interval)), {"product_id": "BTC-USD", "event_date": DAY})
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_candles_on_glue_match_local(base_settings, moto_endpoint, bucket, wheel, tmp_path):
    local = base_settings.replace(lake_root=str(tmp_path / "lake"))
    aws = glue_settings(local, bucket, moto_endpoint)
    deploy(aws, wheel)
    trades, tickers = cross_midnight()
    write_silver(None, local.lake_root, trades, tickers)
    local_lake, lake = Lake.from_settings(local), Lake.from_settings(aws)
    for kind in ("trades", "ticker"):  # the same Silver rows in the S3 lake
        t = silver_table_def(kind)
        snapshots.append(lake.catalog_config, t, snapshots.read(local_lake.table(t)), Provenance("test-copy", run_id="t"))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("product_id", ["BTC-USD"])
    key = MultiPartitionKey({"event_date": DAY, "product_id": "BTC-USD"})
    local_result = materialize(build_candle_assets(local), partition_key=key, resources=build_resources(local),
                               instance=instance)
    glue_result = materialize(build_candle_assets(aws), partition_key=key, resources=local_glue_resources(aws),
                              instance=instance)
    local_reports, glue_reports = _reports(local_result), _reports(glue_result)
    for interval in ("1m", "1h"):
        asset = f"gold_candles_{interval}"
        local_md, glue_md = local_reports[asset][0], glue_reports[asset][0]
        assert_reports_like_local(local_md, glue_md, f"{aws.glue_job_prefix}-gold-candles-{interval}", SNAPSHOT_METADATA)
        checks = glue_reports[asset][1]
        assert checks == local_reports[asset][1] and len(checks) == 4 and all(p for p, _ in checks.values())
        assert glue_md["rows"] > 0 and _rows(lake, interval) == _rows(local_lake, interval)
        table = load_table(lake.catalog_config, candles_table_def(interval))
        assert str(snapshots.snapshot_id(table)) == glue_md["snapshot_id"]
        provenance = Provenance.of(table.current_snapshot())
        assert (provenance.asset, provenance.run_id) == (asset, glue_result.run_id)
