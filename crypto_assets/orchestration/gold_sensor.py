"""Silver -> Gold: a Silver (D, product) that changed and passed its blocking checks brings Gold along.

Gold (D, P) reads Silver D-1..D+1, so a change to Silver D affects Gold D (its rows), Gold D-1
(targets reach into D) and Gold D+1 (lookback reaches into D). The sensor requests Gold D, and
D-1 / D+1 where they are in use (Silver trades D-1 materialized / Gold D+1 materialized); Gold D-1
only when the first trades of Silver trades D (the only part its targets read) differ from the
ones it read, so a day of updates to D does not recompute all of D-1 each time; none of them
where Gold already read that change (`gold_has_read`: the Bronze sensor's runs compute Gold D
right after Silver D, so usually only the neighbours are left here). A
Silver materialization whose blocking checks failed requests nothing: bad data stops there,
the way it stops downstream assets inside one run. The cursor is the event-log storage id of
the last Silver materialization handled; one whose run is still going is left for the next tick
(its check results may not be written yet).
"""

import json
from datetime import date, timedelta

from dagster import (
    AssetRecordsFilter,
    DagsterEventType,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crypto_assets.contracts.names import CANDLE_INTERVALS, KINDS, TRADES
from crypto_assets.contracts.partitioning import DayHead
from crypto_assets.contracts.settings import Settings
from crypto_assets.orchestration.bronze_sensor import ASSET_TAG, pending_run_exists
from crypto_assets.orchestration.keys import GOLD_KEY, candles_key, silver_key
from crypto_assets.orchestration.partitions import parse_partition_key, partition_key

BATCH = 200


def failed_blocking_checks(instance, record) -> list[str]:
    """Names of the blocking checks that failed on this materialization (from its run's events)."""
    evaluations = instance.get_records_for_run(
        record.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = []
    for ev in evaluations:
        data = ev.event_log_entry.dagster_event.event_specific_data
        target = data.target_materialization_data
        if data.asset_key != record.asset_key or (target and target.storage_id != record.storage_id):
            continue
        if data.blocking and not data.passed:
            failed.append(data.check_name)
    return failed


def _latest_gold(instance, key: str):
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=GOLD_KEY, asset_partitions=[key]), limit=1).records
    return records[0] if records else None


def gold_has_read(instance, latest, change) -> bool:
    """The Gold materialization `latest` (of the partition, or None) came after the Silver materialization
    `change` was written, so it read it: in the same run (the Bronze sensor's runs carry Gold D after
    Silver D), or in a run started later."""
    if latest is None or latest.storage_id < change.storage_id:
        return False
    if latest.run_id == change.run_id:
        return True
    run = instance.get_run_record_by_id(latest.run_id)
    return bool(run and run.start_time and run.start_time > change.timestamp)


def _day_head(record, key: str) -> DayHead | None:
    """The DayHead a materialization (or None) reported under `key`; None if it reported none or a malformed one."""
    value = record.asset_materialization.metadata.get(key) if record and record.asset_materialization else None
    return DayHead.from_metadata(None if value is None else value.value)


def _head_moved(change, latest) -> bool:
    """Whether the first trades of a Silver trades day (`change`'s DayHead) differ from the ones the
    latest Gold of the day before read for its targets (its next-day DayHead); unknown counts as moved."""
    head = _day_head(change, DayHead.SILVER_KEY)
    return head is None or head != _day_head(latest, DayHead.GOLD_KEY)


def _run_finished(instance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def candle_requests(instance, changed: dict[tuple[str, str, str], object]) -> list[RunRequest]:
    """The candles (1m, then 1h, in one run) of each changed Silver (D, product): they read Silver D only. None
    where the latest 1m candles read the newest change already (the Bronze sensor's runs carry them after
    Silver) or a queued run will."""
    newest: dict[str, object] = {}
    for (_, event_date, product), change in changed.items():
        key = str(partition_key(event_date, product))
        if key not in newest or change.storage_id > newest[key].storage_id:
            newest[key] = change
    keys = [candles_key(i) for i in CANDLE_INTERVALS]
    names = ",".join(k.to_user_string() for k in keys)
    requests = []
    for key, change in sorted(newest.items()):
        latest = instance.fetch_materializations(AssetRecordsFilter(asset_key=keys[0], asset_partitions=[key]),
                                                 limit=1).records
        if gold_has_read(instance, latest[0] if latest else None, change) or pending_run_exists(instance, keys[0], key):
            continue
        requests.append(RunRequest(
            run_key=f"{names}:{key}:{change.storage_id}", partition_key=key, asset_selection=keys,
            tags={ASSET_TAG: names, **{f"{ASSET_TAG}/{k.to_user_string()}": "1" for k in keys},
                  "crypto/trigger": "gold_sensor"}))
    return requests


def evaluate_silver_changes(context: SensorEvaluationContext, settings: Settings, candles: bool = False) -> SensorResult:
    instance = context.instance
    after = json.loads(context.cursor)["after"] if context.cursor else 0
    records = []
    for kind in KINDS:
        records += instance.fetch_materializations(
            AssetRecordsFilter(asset_key=silver_key(kind), after_storage_id=after), limit=BATCH, ascending=True
        ).records
    records.sort(key=lambda r: r.storage_id)
    if not records:
        return SensorResult(skip_reason=SkipReason("no new Silver materializations"), cursor=json.dumps({"after": after}))

    changed: dict[tuple[str, str, str], object] = {}  # (kind, event_date, product) -> newest Silver materialization
    blocked = []
    for rec in records[:BATCH]:
        if not _run_finished(instance, rec.run_id):
            break
        after = rec.storage_id
        if not rec.partition_key:
            continue
        event_day, product = parse_partition_key(rec.partition_key)
        failed = failed_blocking_checks(instance, rec)
        if failed:
            blocked.append(f"{rec.asset_key.to_user_string()} {rec.partition_key} ({', '.join(failed)})")
            continue
        slot = (rec.asset_key.path[-1].split("_", 1)[1], event_day.isoformat(), product)
        if slot not in changed or rec.storage_id > changed[slot].storage_id:
            changed[slot] = rec

    silver_trades = instance.get_materialized_partitions(silver_key(TRADES))
    gold_done = instance.get_materialized_partitions(GOLD_KEY)
    first = date.fromisoformat(settings.first_date)
    wanted: dict[str, object] = {}  # Gold key -> the newest Silver change it must read
    latest: dict[str, object] = {}  # Gold key -> its latest materialization, looked up once per tick

    def latest_gold(key: str):
        if key not in latest:
            latest[key] = _latest_gold(instance, key)
        return latest[key]

    for (kind, event_date, product), change in changed.items():
        d = date.fromisoformat(event_date)
        candidates = [(d, silver_trades), (d + timedelta(days=1), gold_done)]  # D+1: its lookback reads D's end
        if kind == TRADES:
            candidates.append((d - timedelta(days=1), silver_trades))  # D-1: its targets read D's first trades
        for day, needed in candidates:
            key = str(partition_key(day.isoformat(), product))
            if day < first or key not in needed or (day < d and not _head_moved(change, latest_gold(key))):
                continue
            if key not in wanted or change.storage_id > wanted[key].storage_id:
                wanted[key] = change

    requests = [
        RunRequest(
            run_key=f"gold_features:{key}:{change.storage_id}",
            partition_key=key,
            asset_selection=[GOLD_KEY],
            tags={ASSET_TAG: GOLD_KEY.to_user_string(), f"{ASSET_TAG}/{GOLD_KEY.to_user_string()}": "1",
                  "crypto/trigger": "gold_sensor"},
        )
        for key, change in sorted(wanted.items())
        if not gold_has_read(instance, latest_gold(key), change) and not pending_run_exists(instance, GOLD_KEY, key)
    ]
    requests += candle_requests(instance, changed) if candles else []
    if blocked:
        context.log.warning("Gold not requested for Silver with failed blocking checks: " + "; ".join(blocked))
    context.log.info(f"{len({(d, p) for _, d, p in changed})} Silver partitions changed: {len(requests)} Gold and candles "
                     f"runs requested")
    return SensorResult(run_requests=requests, cursor=json.dumps({"after": after}))


def build_gold_sensor(settings: Settings, gold_asset, candle_assets=()) -> SensorDefinition:
    """`candle_assets`: also requests the candles of each changed Silver (D, product)."""
    @sensor(
        name="silver_to_gold",
        description=(
            "When a Silver (date, product) is materialized and its blocking checks passed, requests Gold for "
            "that date and for the neighbouring dates whose targets or lookback read it, and the candles of that date."
        ),
        minimum_interval_seconds=settings.sensor_interval_seconds,
        asset_selection=[gold_asset, *candle_assets],
        default_status=DefaultSensorStatus.RUNNING if settings.automation == "on" else DefaultSensorStatus.STOPPED,
    )
    def silver_to_gold(context: SensorEvaluationContext):
        return evaluate_silver_changes(context, settings, candles=bool(candle_assets))

    return silver_to_gold
