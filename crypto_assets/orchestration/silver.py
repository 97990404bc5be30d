"""Silver assets: typed, validated, deduplicated trades and ticker per event date x product.

Checks run with every materialization and are returned in the MaterializeResult: uniqueness
and not-null are blocking (a failure stops downstream assets in the same run);
reconciliation, ranges and gaps are reported with their numbers as metadata.
"""

from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetRecordsFilter,
    AssetsDefinition,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from crypto_assets.contracts.names import BRONZE_TABLE, SILVER_TABLE, TICKER, TRADES, bronze_asset
from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import bronze_table
from crypto_assets.lake.snapshots import snapshot_files
from crypto_assets.orchestration.kafka_topics import OWNER
from crypto_assets.orchestration.keys import FULL_REBUILD_TAG, bronze_key, silver_key
from crypto_assets.orchestration.partitions import (
    event_date_product_partitions,
    event_days_of_ingest_day,
    parse_partition_key,
)
from crypto_assets.orchestration.reporting import check_specs
from crypto_assets.orchestration.resources.compute import ComputeResource, asset_kinds
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.silver.build import bronze_window_days
from crypto_assets.silver.report import SILVER_CHECKS


def _bronze_was_materialized(context: AssetExecutionContext, kind: str, day: str) -> bool:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=bronze_key(kind), asset_partitions=[day]), limit=1
    )
    return bool(records.records)


def missing_bronze_days(context: AssetExecutionContext, lake: LakeResource, kind: str, day: date,
                        rules: SilverRules) -> list[str]:
    """The ingest days after `day` that Silver reads for late records, that have ended, hold no rows in
    the Bronze table and were never materialized: late records of `day` may sit in Kafka for them, unread."""
    today = datetime.now(timezone.utc).date()
    # D itself is required (BronzeMissingError); D-1 is read for clock skew only; today is in progress.
    later = [d for d in bronze_window_days(day, rules) if day < d < today]
    if not later:
        return []
    _, files = snapshot_files(lake.table(bronze_table(kind)), {"ingest_date": later})
    holding = {f.partition["ingest_date"] for f in files if f.records}
    missing = []
    for d in later:
        if d in holding:
            continue
        if not _bronze_was_materialized(context, kind, d.isoformat()):
            missing.append(d.isoformat())
    return missing


def _report_missing_bronze_days(context: AssetExecutionContext, lake: LakeResource, kind: str, day: date,
                                product: str, rules: SilverRules) -> None:
    missing = missing_bronze_days(context, lake, kind, day, rules)
    context.add_asset_metadata({"bronze_days_missing": MetadataValue.json(missing)})
    if missing:
        context.log.warning(
            f"silver {kind} {day} {product}: Bronze {BRONZE_TABLE[kind]} was never materialized for ingest "
            f"day(s) {', '.join(missing)}, so records of {day} that arrived late on them are not in this partition: "
            f"materialize {bronze_asset(kind)} for {', '.join(missing)} (the Bronze sensor then updates this partition)"
        )


def build_silver_asset(kind: str, settings: Settings) -> AssetsDefinition:
    key = silver_key(kind)
    table = SILVER_TABLE[kind]
    rules = SilverRules.from_settings(settings)

    @asset(
        key=key,
        description=(
            f"Typed, validated, deduplicated {kind} of one UTC event day and product, read from Bronze ingest days "
            f"D-1 (last minutes) .. D+{rules.allowed_lateness_days} so late records reach their day. "
            f"{'Deduplicated on (product_id, trade_id), earliest ingested copy kept.' if kind == TRADES else 'Deduplicated on the ticker content.'} "
            f"Rejected items go to the Iceberg table `quarantine.{table}` with a reason. Written to the Iceberg table "
            f"`silver.{table}` (partition product_id, event_date), one commit per run: incremental (only the Bronze "
            f"rows the partition has not read, appended), or the partition rebuilt whole when its state cannot be "
            f"trusted or the run has the tag {FULL_REBUILD_TAG}=true (metadata `mode` says which)."
        ),
        partitions_def=event_date_product_partitions(settings),
        group_name="silver",
        kinds=asset_kinds(settings, "arrow", "parquet"),
        owners=[OWNER],
        tags={"layer": "silver"},
        freshness_policy=FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=2 * settings.silver_freshness_minutes),
            warn_window=timedelta(minutes=settings.silver_freshness_minutes),
        ),
        deps=[
            AssetDep(
                bronze_key(kind),
                partition_mapping=event_days_of_ingest_day(),
            )
        ],
        check_specs=check_specs(key, SILVER_CHECKS[kind]),
    )
    def _silver(
        context: AssetExecutionContext, compute: ComputeResource, lake: LakeResource,
    ) -> MaterializeResult:
        day, product = parse_partition_key(context.partition_key)
        # A Bronze day that ran and found nothing gives an empty Silver; one never materialized is an error.
        require_bronze_day = not _bronze_was_materialized(context, kind, day.isoformat())
        full = context.run.tags.get(FULL_REBUILD_TAG, "").lower() == "true"
        result = compute.silver_partition(context, kind, day, product, rules, require_bronze_day, full=full)
        _report_missing_bronze_days(context, lake, kind, day, product, rules)
        return result

    return _silver


def silver_assets(settings: Settings) -> list[AssetsDefinition]:
    return [build_silver_asset(kind, settings) for kind in (TRADES, TICKER)]

