"""`make demo`: the pipeline end to end on embedded defaults, offline.

Starts the local broker, publishes a deterministic synthetic Coinbase session (seeded, fixed
times crossing midnight, so it lands in two Bronze days), materializes the Bronze partitions
it touched through Dagster (recorded in the project's Dagster instance, so the UI shows
them), and prints what was written.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from crypto_assets.settings import Settings

DEMO_SEED = 7
DEMO_START = datetime(2026, 11, 24, 23, 50, tzinfo=timezone.utc)
DEMO_DURATION_S = 1200.0


def demo_days() -> list[date]:
    first = DEMO_START.date()
    last = (DEMO_START + timedelta(seconds=DEMO_DURATION_S + 60)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _already_published(settings: Settings) -> bool:
    """The demo session is deterministic: publish it once, not again on every `make demo`."""
    from crypto_assets.resources.kafka import KafkaResource

    kafka = KafkaResource.from_settings(settings).model_copy(update={"timestamp_skew_minutes": 0})
    end = DEMO_START + timedelta(seconds=DEMO_DURATION_S)
    return kafka.offset_window(settings.trades_topic, DEMO_START, end).record_count > 0


def dagster_instance(settings: Settings):
    from dagster import DagsterInstance

    os.environ.setdefault("DAGSTER_HOME", settings.home)
    Path(settings.state_dir, "dagster").mkdir(parents=True, exist_ok=True)
    os.chdir(settings.home)  # dagster.yaml keeps its storage paths relative to the project folder
    return DagsterInstance.get()


def run_demo(settings: Settings) -> int:
    from dagster import materialize

    from crypto_assets.assets.bronze import bronze_assets
    from crypto_assets.broker import LocalBroker
    from crypto_assets.definitions import build_resources
    from producer.run import publish_frames, synthetic_frames

    print("1/3 starting the local Kafka broker ...")
    print(LocalBroker(settings).up().describe())

    print("2/3 publishing the demo session (synthetic Coinbase ticker + market_trades, seed "
          f"{DEMO_SEED}, {DEMO_START:%Y-%m-%d %H:%M} UTC + {DEMO_DURATION_S:.0f} s) ...")
    if _already_published(settings):
        print("    already in Kafka from an earlier run: not publishing it again")
    else:
        frames = synthetic_frames(settings, DEMO_SEED, DEMO_DURATION_S, DEMO_START)
        print("    " + str(publish_frames(frames, settings, "synthetic")))

    print("3/3 materializing Bronze through Dagster ...")
    instance = dagster_instance(settings)
    assets = bronze_assets(settings)
    resources = build_resources(settings)
    results = {}
    for day in demo_days():
        result = materialize(
            assets, partition_key=day.isoformat(), resources=resources, instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        if not result.success:
            print(f"error: Bronze materialization for {day} failed; see the run in the Dagster UI")
            return 1
        for mat in result.get_asset_materialization_events():
            key = mat.asset_key.to_user_string()
            md = mat.materialization.metadata
            results[(key, day)] = (md["rows"].value, md["malformed_records"].value, md["path"].value)

    print("\nBronze written:")
    print(f"  {'asset':<15} {'ingest_date':<12} {'rows':>8} {'malformed':>10}  path")
    for (key, day), (rows, bad, path) in sorted(results.items()):
        print(f"  {key:<15} {day.isoformat():<12} {rows:>8} {bad:>10}  {path}")
    print(f"\nLake root: {settings.lake_root}")
    print("Open the Dagster UI:  make ui   (then http://127.0.0.1:3000)")
    print("Stop the broker:      .venv/bin/crypto-pipeline kafka down")
    return 0
