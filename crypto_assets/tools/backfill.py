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

from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.keys import FULL_REBUILD_TAG

LAYERS = ("bronze", "silver", "gold")
# Runs started from the command line keep their whole log in the Dagster instance (the UI shows it);
# the terminal gets one line per run from us, with the reason when it failed.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class PartitionRun:
    assets: list[str]
    partition: str
    success: bool
    rows: list[tuple[str, str, int, str]] = field(default_factory=list)  # (asset, partition, rows, path)
    checks: list[tuple[str, str, bool]] = field(default_factory=list)  # (asset, check, passed)
    run_id: str = ""
    missing_bronze_days: list[tuple[str, list[str]]] = field(default_factory=list)  # (asset, ingest days)
    modes: list[tuple[str, str]] = field(default_factory=list)  # (asset, incremental | full) of Silver
    error: str = ""  # the first line of the first step failure


def failure_line(result) -> str:
    """The first line of the first step failure of a finished run (empty when none failed): a `Failure`'s
    description as written, else the error's message."""
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        message = (user.description if user is not None else None) or (data.error.message if data.error else "")
        lines = (message or event.message or "").strip().splitlines()
        return lines[0] if lines else ""
    return ""


def dagster_instance(settings: Settings):
    """The project's Dagster instance (DAGSTER_HOME defaults to the project folder)."""
    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", settings.home)
    return DagsterInstance.get()


def materialize_partition(assets, partition_key, settings: Settings, instance, tags=None) -> PartitionRun:
    from dagster import materialize

    from crypto_assets.orchestration.definitions import build_resources

    result = materialize(
        assets, partition_key=partition_key, resources=build_resources(settings), instance=instance,
        run_config=QUIET_RUN_CONFIG, raise_on_error=False,
        tags=tags or {},
    )
    run = PartitionRun([a.key.to_user_string() for a in assets], str(partition_key), result.success,
                       run_id=result.run_id, error=failure_line(result))
    for mat in result.get_asset_materialization_events():
        md = mat.materialization.metadata
        written = f"{md['table'].value} @ snapshot {md['snapshot_id'].value}" if "table" in md else ""
        run.rows.append((mat.asset_key.to_user_string(), str(partition_key), md["rows"].value, written))
        if md.get("mode") is not None:
            run.modes.append((mat.asset_key.to_user_string(), md["mode"].value))
        if md.get("bronze_days_missing") is not None and md["bronze_days_missing"].value:
            run.missing_bronze_days.append((mat.asset_key.to_user_string(), list(md["bronze_days_missing"].value)))
    for ev in result.get_asset_check_evaluations():
        run.checks.append((ev.asset_key.to_user_string(), ev.check_name, ev.passed))
    return run


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"backfill range ends ({end}) before it starts ({start})")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def plan(settings: Settings, start: date, end: date, products: list[str], layers: tuple[str, ...]):
    """(layer, assets, partition key) in the order the runs must go."""
    return bronze_steps(settings, start, end, layers) + silver_gold_steps(settings, start, end, products, layers)


def bronze_steps(settings: Settings, start: date, end: date, layers: tuple[str, ...]):
    from crypto_assets.orchestration.bronze import bronze_assets

    if "bronze" not in layers:
        return []
    return [("bronze", bronze_assets(settings), d.isoformat()) for d in date_range(start, end)]


def silver_gold_steps(settings: Settings, start: date, end: date, products: list[str], layers: tuple[str, ...]):
    from crypto_assets.orchestration.candles import build_candle_assets
    from crypto_assets.orchestration.gold import build_gold_asset
    from crypto_assets.orchestration.partitions import partition_key
    from crypto_assets.orchestration.silver import silver_assets

    steps = []
    gold = [build_gold_asset(settings), *build_candle_assets(settings)]  # the candles read Silver, 1h reads 1m
    for layer, assets in (("silver", silver_assets(settings)), ("gold", gold)):
        if layer in layers:
            steps += [
                (layer, assets, partition_key(d, p))
                for d in date_range(start, end) for p in products
            ]
    return steps


def products_in_bronze(settings: Settings, start: date, end: date) -> list[str]:
    """The products (owners of Bronze rows) in every Bronze day that Silver start..end reads."""
    from crypto_assets.contracts.names import KINDS
    from crypto_assets.contracts.partitioning import SilverRules
    from crypto_assets.lake.store import Lake
    from crypto_assets.silver.build import bronze_products

    lake, rules = Lake.from_settings(settings), SilverRules.from_settings(settings)
    return sorted({p for kind in KINDS for p in bronze_products(lake, kind, date_range(start, end), rules)})


def known_products(settings: Settings, instance) -> list[str]:
    """The products configured (CRYPTO_PRODUCTS) and those the instance knows as partitions."""
    from crypto_assets.orchestration.partitions import PRODUCTS

    return sorted({*settings.products, *instance.get_dynamic_partitions(PRODUCTS.name)})


def backfill_products(settings: Settings, instance, start: date, end: date, given: list[str] | None,
                      echo=print) -> list[str]:
    """The products to build: those given; else those configured, those the instance knows and those present
    in the Bronze days read. A product present in Bronze but not built is a warning line."""
    present = products_in_bronze(settings, start, end)
    products = list(dict.fromkeys(given)) if given else sorted({*known_products(settings, instance), *present})
    left_out = [p for p in present if p not in products]
    if left_out:
        echo(f"warning: Bronze {start}..{end} also holds {', '.join(left_out)}, which this backfill does not build "
             f"(--products {','.join(products)}): add {'it' if len(left_out) == 1 else 'them'} to --products to build "
             f"{'it' if len(left_out) == 1 else 'them'}")
    return products


def run_backfill(settings: Settings, start: date, end: date, products: list[str] | None,
                 layers: tuple[str, ...] = LAYERS, instance=None, echo=print, full: bool = False) -> list[PartitionRun]:
    """Runs every planned partition; stops at the first failed run (its downstream would read bad input).

    Bronze runs first, so the products of Silver and Gold include what it just found. Silver goes on from each
    partition's state (only the Bronze rows it has not read yet); `full` rebuilds every partition whole."""
    from crypto_assets.orchestration.bronze import register_products
    from crypto_assets.orchestration.partitions import with_first_day

    date_range(start, end)  # a reversed range fails before anything runs
    settings = with_first_day(settings, start.isoformat())  # days before the lake's first day become partitions
    instance = instance or dagster_instance(settings)
    tags = {"crypto/trigger": "cli_backfill", "crypto/backfill": f"{start}..{end}",
            **({FULL_REBUILD_TAG: "true"} if full else {})}
    runs: list[PartitionRun] = []
    bronze = bronze_steps(settings, start, end, layers)
    per_product = len(date_range(start, end)) * sum(layer in layers for layer in ("silver", "gold"))
    # Runs are numbered across the whole backfill; products found in Bronze can still raise the total.
    expected = products or known_products(settings, instance)
    if not _run_steps(bronze, settings, instance, tags, runs, echo, len(bronze) + per_product * len(expected)):
        return runs
    if not per_product:
        return runs
    products = backfill_products(settings, instance, start, end, products, echo)
    register_products(instance, products)
    _run_steps(silver_gold_steps(settings, start, end, products, layers), settings, instance, tags, runs, echo,
               len(bronze) + per_product * len(products))
    _echo_missing_bronze_days(runs, echo)
    return runs


def _run_steps(steps, settings: Settings, instance, tags: dict, runs: list[PartitionRun], echo, total: int) -> bool:
    for layer, assets, key in steps:
        run = materialize_partition(assets, key, settings, instance, tags=tags)
        runs.append(run)
        failed = [c for c in run.checks if not c[2]]
        modes = sorted({m for _, m in run.modes})
        echo(f"[{len(runs)}/{total}] {layer:<6} {str(key):<24} {'ok' if run.success else 'FAILED'}  "
             f"rows {sum(r[2] for r in run.rows)}{' (' + '/'.join(modes) + ')' if modes else ''}  "
             f"checks {len(run.checks) - len(failed)}/{len(run.checks)} passed  run {run.run_id[:8]}")
        if not run.success:
            echo(f"error: the {layer} run for {key} failed{': ' + run.error if run.error else ''}; see run "
                 f"{run.run_id} in the Dagster UI; the backfill stopped there")
            return False
    return True


def _echo_missing_bronze_days(runs: list[PartitionRun], echo) -> None:
    """One warning line per set of never-built Bronze days, naming the Silver partitions that read none."""
    by_days: dict[tuple[str, ...], list[str]] = {}
    for run in runs:
        days = tuple(sorted({d for _, ds in run.missing_bronze_days for d in ds}))
        if days:
            by_days.setdefault(days, []).append(run.partition)
    for days, partitions in by_days.items():
        echo(f"warning: Silver {', '.join(partitions)} read no Bronze for ingest day(s) {', '.join(days)}, which were "
             f"never materialized: records of those partitions that arrived late on them are missing; backfill "
             f"Bronze {days[0]}{'..' + days[-1] if len(days) > 1 else ''} (--layers bronze), then these partitions again")
