"""`crypto-pipeline backfill`: rebuild a range of dates and products, one Dagster run per partition.

Runs go through the same assets and checks as the sensor-driven runs, in the project's Dagster
instance (so the UI lists them), in dependency order: Bronze ingest days, then Silver
(event date x product, trades and ticker in one run), then Gold. Each partition is rewritten
whole, so a backfill reproduces exactly what the sensors produced. The UI's backfill dialog
(select dates x products on an asset, "Materialize") does the same through the daemon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from crypto_assets.settings import Settings

LAYERS = ("bronze", "silver", "gold")


@dataclass
class PartitionRun:
    assets: list[str]
    partition: str
    success: bool
    rows: list[tuple[str, str, int, str]] = field(default_factory=list)  # (asset, partition, rows, path)
    checks: list[tuple[str, str, bool]] = field(default_factory=list)  # (asset, check, passed)
    run_id: str = ""


def dagster_instance(settings: Settings):
    """The project's Dagster instance (DAGSTER_HOME defaults to the project folder)."""
    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", settings.home)
    Path(settings.state_dir, "dagster").mkdir(parents=True, exist_ok=True)
    os.chdir(settings.home)  # dagster.yaml keeps its storage paths relative to the project folder
    return DagsterInstance.get()


def materialize_partition(assets, partition_key, settings: Settings, instance, tags=None) -> PartitionRun:
    from dagster import materialize

    from crypto_assets.definitions import build_resources

    result = materialize(
        assets, partition_key=partition_key, resources=build_resources(settings), instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}, raise_on_error=False,
        tags=tags or {},
    )
    run = PartitionRun([a.key.to_user_string() for a in assets], str(partition_key), result.success,
                       run_id=result.run_id)
    for mat in result.get_asset_materialization_events():
        md = mat.materialization.metadata
        run.rows.append((mat.asset_key.to_user_string(), str(partition_key), md["rows"].value, md["path"].value))
    for ev in result.get_asset_check_evaluations():
        run.checks.append((ev.asset_key.to_user_string(), ev.check_name, ev.passed))
    return run


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"backfill range ends ({end}) before it starts ({start})")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def plan(settings: Settings, start: date, end: date, products: list[str], layers: tuple[str, ...]):
    """(layer, assets, partition key) in the order the runs must go."""
    from dagster import MultiPartitionKey

    from crypto_assets.assets.bronze import bronze_assets
    from crypto_assets.assets.gold import build_gold_asset
    from crypto_assets.assets.silver import silver_assets

    days = date_range(start, end)
    steps = []
    if "bronze" in layers:
        steps += [("bronze", bronze_assets(settings), d.isoformat()) for d in days]
    for layer, assets in (("silver", silver_assets(settings)), ("gold", [build_gold_asset(settings)])):
        if layer in layers:
            steps += [
                (layer, assets, MultiPartitionKey({"event_date": d.isoformat(), "product_id": p}))
                for d in days for p in products
            ]
    return steps


def run_backfill(settings: Settings, start: date, end: date, products: list[str] | None,
                 layers: tuple[str, ...] = LAYERS, instance=None, echo=print) -> list[PartitionRun]:
    """Runs every planned partition; stops at the first failed run (its downstream would read bad input)."""
    from crypto_assets.assets.bronze import register_products

    instance = instance or dagster_instance(settings)
    products = list(products or sorted(instance.get_dynamic_partitions("product_id")) or settings.products)
    register_products(instance, products)
    runs = []
    steps = plan(settings, start, end, products, layers)
    backfill_tag = {"crypto/trigger": "cli_backfill", "crypto/backfill": f"{start}..{end}"}
    for i, (layer, assets, key) in enumerate(steps, 1):
        run = materialize_partition(assets, key, settings, instance, tags=backfill_tag)
        runs.append(run)
        failed = [c for c in run.checks if not c[2]]
        echo(f"[{i}/{len(steps)}] {layer:<6} {str(key):<24} {'ok' if run.success else 'FAILED'}  "
             f"rows {sum(r[2] for r in run.rows)}  checks {len(run.checks) - len(failed)}/{len(run.checks)} passed  "
             f"run {run.run_id[:8]}")
        if not run.success:
            echo(f"error: the {layer} run for {key} failed; see run {run.run_id} in the Dagster UI; "
                 f"the backfill stopped there")
            break
    return runs
