"""`make demo`: the pipeline end to end on embedded defaults, offline.

Starts the local broker, has the producer publish a deterministic synthetic Coinbase session
(seeded, fixed times crossing midnight, so it lands in two Bronze days), materializes those
Bronze days through Dagster, then lets the pipeline's own sensors decide what follows: the
Bronze -> Silver sensor requests the touched Silver partitions, the Silver -> Gold sensor the
Gold ones, and each request runs in the project's Dagster instance (the UI shows every run and
check). Prints rows per layer, the checks and a few Gold rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from crypto_assets.contracts.settings import Settings

DEMO_SEED = 7
DEMO_START = datetime(2026, 11, 24, 23, 50, tzinfo=timezone.utc)
DEMO_DURATION_S = 1200.0


def demo_days() -> list[date]:
    """The event days of the demo session."""
    first = DEMO_START.date()
    last = (DEMO_START + timedelta(seconds=DEMO_DURATION_S + 60)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def demo_ingest_days(settings: Settings) -> list[date]:
    """The Bronze days Silver of the demo's days reads for late records (the last one stays empty)."""
    last = demo_days()[-1] + timedelta(days=settings.allowed_lateness_days)
    return [demo_days()[0] + timedelta(days=i) for i in range((last - demo_days()[0]).days + 1)]


def _already_published(settings: Settings) -> bool:
    """The demo session is deterministic: publish it once, not again on every `make demo`."""
    from crypto_assets.orchestration.resources.kafka import KafkaResource

    kafka = KafkaResource.from_settings(settings).model_copy(update={"timestamp_skew_minutes": 0})
    end = DEMO_START + timedelta(seconds=DEMO_DURATION_S)
    return kafka.offset_window(settings.trades_topic, DEMO_START, end).record_count > 0


def run_demo(settings: Settings) -> int:
    from crypto_assets.orchestration.bronze import bronze_assets
    from crypto_assets.orchestration.definitions import build_definitions
    from crypto_assets.orchestration.partitions import with_first_day
    from crypto_assets.tools.backfill import QUIET_RUN_CONFIG, dagster_instance, failure_line, materialize_partition
    from crypto_assets.tools.broker import LocalBroker
    from crypto_assets.tools.inprocess import apply, execute, tick
    from producer.run import publish_frames, synthetic_frames

    settings = with_first_day(settings, demo_days()[0].isoformat())  # the demo's fixed days are partitions
    print("1/5 starting the local Kafka broker ...")
    print(LocalBroker(settings).up().describe())

    print("2/5 the producer publishes the demo session (synthetic Coinbase ticker + market_trades, seed "
          f"{DEMO_SEED}, {DEMO_START:%Y-%m-%d %H:%M} UTC + {DEMO_DURATION_S:.0f} s, crossing midnight) ...")
    if _already_published(settings):
        print("    already in Kafka from an earlier run: not publishing it again")
    else:
        frames = synthetic_frames(settings, DEMO_SEED, DEMO_DURATION_S, DEMO_START)
        print("    " + str(publish_frames(frames, settings, "synthetic")))

    instance = dagster_instance(settings)
    written, checks = [], []
    print("3/5 Bronze: materializing the ingest days through Dagster (batch mode; the last one holds what "
          "arrived late, nothing in this session) ...")
    for day in demo_ingest_days(settings):
        run = materialize_partition(bronze_assets(settings), day.isoformat(), settings, instance)
        if not run.success:
            print(f"error: Bronze materialization for {day} failed{': ' + run.error if run.error else ''}; see run "
                  f"{run.run_id} in the Dagster UI")
            return 1
        written += run.rows

    defs = build_definitions(settings)
    for step, (sensor, what) in enumerate((
        ("bronze_to_silver", "Silver and Gold: one run per partition, Gold after Silver's blocking checks"),
        ("silver_to_gold", "Gold of the neighbouring days that read the new Silver (targets cross midnight)"),
    ), 4):
        result = tick(defs.resolve_sensor_def(sensor), settings, instance, None)
        apply(result, instance)
        print(f"{step}/5 {what}: the `{sensor}` sensor requested {len(result.run_requests or [])} runs; running them ...")
        for outcome in execute(result, settings, instance, run_config=QUIET_RUN_CONFIG):
            for mat in outcome.get_asset_materialization_events():
                md = mat.materialization.metadata
                where = f"{md['table'].value} @ snapshot {md['snapshot_id'].value}"
                written.append((mat.asset_key.to_user_string(), mat.partition, md["rows"].value, where))
            checks += [(e.asset_key.to_user_string(), e.check_name, e.passed) for e in outcome.get_asset_check_evaluations()]
            if not outcome.success:
                reason = failure_line(outcome)
                print(f"error: run {outcome.run_id} failed{': ' + reason if reason else ''}; see it in the Dagster UI")
                return 1

    if settings.baseline_model == "on":
        baseline = _run_baseline(settings, instance)
        if baseline is None:
            return 1
        checks += baseline

    _print_written(written)
    failed = [c for c in checks if not c[2]]
    print(f"\nAsset checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
          + "".join(f"\n  FAILED {a}.{c}" for a, c, _ in failed))
    _print_gold_sample(settings)
    print(f"\nLake root: {settings.lake_root}")
    print("Open the Dagster UI:  make ui   (then http://127.0.0.1:3000: lineage, runs, checks, backfills)")
    print("Stop the broker:      .venv/bin/crypto-pipeline kafka down")
    return 0 if not failed else 1


def _run_baseline(settings: Settings, instance) -> list[tuple[str, str, bool]] | None:
    """CRYPTO_BASELINE_MODEL=on: the Gold baseline on the demo's last day, trained on the days before it (the
    session's days are all there is); its checks, or None when the run failed (the line says why)."""
    from crypto_assets.orchestration.ml import BASELINE_KEY, build_baseline_asset
    from crypto_assets.tools.backfill import materialize_partition

    day = demo_days()[-1].isoformat()
    settings = settings.replace(baseline_train_days=len(demo_days()) - 1)
    print(f"+   the Gold baseline (CRYPTO_BASELINE_MODEL=on): training on the days before {day}, testing on {day} ...")
    run = materialize_partition([build_baseline_asset(settings)], day, settings, instance)
    if not run.success:
        print(f"error: the baseline run failed{': ' + run.error if run.error else ''}; see run {run.run_id} in the "
              f"Dagster UI")
        return None
    mat = instance.get_latest_materialization_event(BASELINE_KEY)
    md = mat.asset_materialization.metadata if mat else {}
    if md:
        print(f"    AUC {md['auc'].value}, log loss {md['log_loss'].value}, accuracy {md['accuracy'].value} vs majority "
              f"class {md['majority_class_accuracy'].value}; IC {md['ic_spearman'].value}; shuffled-target AUC "
              f"{md['shuffled_target_auc'].value}; model in {md['model_uri'].value}")
    return run.checks


def _print_written(written: list[tuple[str, str, int, str]]) -> None:
    """One line per partition with what it holds now: a partition written twice (Gold of the first day,
    again once the second day's trades completed its targets) shows its last write and the count."""
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    writes: dict[tuple[str, str], int] = {}
    for key, part, rows, where in written:
        latest[(key, part)] = (rows, where)
        writes[(key, part)] = writes.get((key, part), 0) + 1
    print("\nWritten:")
    print(f"  {'asset':<15} {'partition':<22} {'rows':>8} {'writes':>6}  table @ snapshot")
    order = ["bronze", "silver", "gold"]
    for key, part in sorted(latest, key=lambda w: (order.index(w[0].split("_")[0]), w[1], w[0])):
        rows, where = latest[(key, part)]
        print(f"  {key:<15} {part:<22} {rows:>8} {writes[(key, part)]:>6}  {where}")


def _print_gold_sample(settings: Settings) -> None:
    from crypto_assets.contracts.tables import gold_table_def
    from crypto_assets.lake import snapshots
    from crypto_assets.orchestration.resources.lake import LakeResource

    lake = LakeResource.from_settings(settings)
    day = demo_days()[-1].isoformat()
    table = snapshots.read(lake.table(gold_table_def()), {"product_id": settings.products[0], "event_date": day})
    if table.num_rows == 0:
        return
    table = table.sort_by([("trade_time", "ascending"), ("trade_id", "ascending")])
    cols = ["trade_time", "trade_id", "price", "side", "ma_50_trades", "rsi_14", "vwap_50", "spread_bps",
            "target_return_10", "is_training_ready"]
    print(f"\nA few Gold rows ({settings.products[0]}, {day}; 120 features, 6 targets per row):")
    print(table.select(cols).slice(0, 5).to_pandas().to_string(index=False))
