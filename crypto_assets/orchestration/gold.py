"""Gold asset: the 120 per-trade features and 6 targets of the catalog, per event date x product."""

from datetime import timedelta

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    FreshnessPolicy,
    MaterializeResult,
    asset,
)

from crypto_assets.contracts.settings import Settings
from crypto_assets.gold.report import GOLD_CHECKS
from crypto_assets.orchestration.kafka_topics import OWNER
from crypto_assets.orchestration.keys import FULL_REBUILD_TAG, GOLD_KEY
from crypto_assets.orchestration.partitions import event_date_product_partitions, event_day_window, parse_partition_key
from crypto_assets.orchestration.reporting import check_specs
from crypto_assets.orchestration.resources.compute import ComputeResource, asset_kinds
from crypto_assets.orchestration.resources.lake import LakeResource


def build_gold_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        key=GOLD_KEY,
        description=(
            "One row per trade with a full lookback (500 trades and 5 minutes of history): the 120 features and 6 targets of "
            "docs/feature_catalog.md, causal (only trades up to this one and tickers at or before its time), computed per "
            "product in O(1) per row per feature. Reads Silver trades D-1..D+1 (lookback across midnight, future-price "
            "targets) and Silver ticker D-1..D (as-of quote join). Written to the Iceberg table `gold.features` (partition product_id, event_date), one commit per run. "
            "Incremental by default: a run reads the Silver files added since the snapshots its partition was last built "
            "from and replaces only the rows they change (the rows from the earliest change on, and the targets of the "
            f"trades just before it); rebuilt whole when its state cannot be trusted or the run has the tag {FULL_REBUILD_TAG}=true "
            "(metadata `mode` says which)."
        ),
        partitions_def=event_date_product_partitions(settings),
        group_name="gold",
        kinds=asset_kinds(settings, "pandas", "parquet"),
        owners=[OWNER],
        tags={"layer": "gold"},
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(minutes=settings.gold_freshness_minutes)),
        deps=[
            AssetDep(AssetKey("silver_trades"), partition_mapping=event_day_window(-1, 1)),
            AssetDep(AssetKey("silver_ticker"), partition_mapping=event_day_window(-1, 0)),
        ],
        check_specs=check_specs(GOLD_KEY, GOLD_CHECKS),
    )
    def gold_features(
        context: AssetExecutionContext, compute: ComputeResource, lake: LakeResource,
    ) -> MaterializeResult:
        day, product = parse_partition_key(context.partition_key)
        full = context.run.tags.get(FULL_REBUILD_TAG, "").lower() == "true"
        return compute.gold_partition(context, day, product, full=full)

    return gold_features
