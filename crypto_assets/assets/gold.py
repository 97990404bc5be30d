"""Gold asset: the 120 per-trade features and 6 targets of the catalog, per event date x product."""

from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DimensionPartitionMapping,
    FreshnessPolicy,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    MultiPartitionMapping,
    TimeWindowPartitionMapping,
    asset,
)

from crypto_assets.assets.kafka_topics import OWNER
from crypto_assets.assets.silver import preview_markdown
from crypto_assets.engines.glue import GlueEngineResource, gold_on_glue, register_catalog_partitions
from crypto_assets.features.registry import FEATURES, TARGETS
from crypto_assets.partitions import EVENT_DATE, PRODUCT, event_date_product_partitions
from crypto_assets.resources.lake import LakeResource
from crypto_assets.resources.spark import SparkResource
from crypto_assets.settings import Settings
from crypto_assets.steps.gold import GoldStats, build_gold

GOLD_KEY = AssetKey("gold_features")

CHECKS = {
    "schema_matches_catalog": (True, "Every catalog column is present with its declared type."),
    "unique_trade_id": (True, "One row per (product_id, trade_id)."),
    "not_null_when_full": (True, "Features that cannot be null once the lookback is full are never null."),
    "no_lookahead": (False, "Prefix invariance: sampled rows recomputed from data cut right after the trade match."),
    "row_reconciliation": (False, "Silver trades of the day = Gold rows + rows excluded for lookback."),
    "ranges": (False, "Ratios within their declared bounds, RSI within [0, 100], no infinities."),
}


def _mapping(start: int, end: int) -> MultiPartitionMapping:
    return MultiPartitionMapping(
        {
            EVENT_DATE: DimensionPartitionMapping(EVENT_DATE, TimeWindowPartitionMapping(start_offset=start, end_offset=end)),
            PRODUCT: DimensionPartitionMapping(PRODUCT, IdentityPartitionMapping()),
        }
    )


def gold_check_results(s: GoldStats) -> list[AssetCheckResult]:
    leak = s.leakage
    return [
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="schema_matches_catalog", passed=not s.schema_problems,
            metadata={"problems": MetadataValue.json(s.schema_problems)},
        ),
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="unique_trade_id", passed=s.duplicate_keys == 0,
            metadata={"duplicate_rows": MetadataValue.int(s.duplicate_keys)},
        ),
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="not_null_when_full", passed=not s.nulls_when_full,
            metadata={"null_counts": MetadataValue.json(s.nulls_when_full)},
        ),
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="no_lookahead",
            passed=leak.passed if leak else s.rows == 0,
            metadata={
                "sampled_rows": MetadataValue.int(leak.sampled if leak else 0),
                "mismatched_rows": MetadataValue.int(leak.mismatched_rows if leak else 0),
                "mismatched_features": MetadataValue.json(leak.mismatched_features if leak else {}),
                "examples": MetadataValue.json(leak.examples if leak else []),
            },
        ),
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="row_reconciliation", passed=s.reconciles,
            metadata={
                "silver_trades_of_day": MetadataValue.int(s.silver_rows),
                "gold_rows": MetadataValue.int(s.rows),
                "excluded_for_lookback": MetadataValue.int(s.excluded_lookback),
            },
        ),
        AssetCheckResult(
            asset_key=GOLD_KEY, check_name="ranges", passed=not s.out_of_range and not s.infinities,
            metadata={"out_of_range": MetadataValue.json(s.out_of_range), "non_finite": MetadataValue.json(s.infinities)},
        ),
    ]


def gold_metadata(s: GoldStats) -> dict:
    md = {
        "rows": MetadataValue.int(s.rows),
        "training_ready_rows": MetadataValue.int(s.training_ready),
        "rows_with_unknown_targets": MetadataValue.int(s.rows - s.training_ready),
        "excluded_for_lookback": MetadataValue.int(s.excluded_lookback),
        "silver_days_read": MetadataValue.json(s.silver_days),
        "ticker_days_read": MetadataValue.json(s.ticker_days),
        "tickers_in_input": MetadataValue.int(s.tickers_in_input),
        "rows_without_quote": MetadataValue.int(s.rows_without_quote),
        "min_trade_time": MetadataValue.text(s.min_trade_time or ""),
        "max_trade_time": MetadataValue.text(s.max_trade_time or ""),
        "features": MetadataValue.int(len(FEATURES)),
        "targets": MetadataValue.int(len(TARGETS)),
        "path": MetadataValue.path(s.path),
        "preview": MetadataValue.md(preview_markdown(s.preview)),
    }
    notes = []
    if s.empty_reason:
        notes.append(s.empty_reason)
    if s.rows and s.tickers_in_input == 0:
        notes.append("no Silver tickers for this product: quote features are null; trade features are computed")
    if (s.rows - s.training_ready) and s.rows:
        notes.append("the last trades' targets need the next day's Silver; they fill in when Gold is re-run after it arrives")
    md["notes"] = MetadataValue.md("\n".join(f"- {n}" for n in notes) or "-")
    return md


def build_gold_asset(settings: Settings) -> AssetsDefinition:
    @asset(
        key=GOLD_KEY,
        description=(
            "One row per trade with a full lookback (500 trades and 5 minutes of history): the 120 features and 6 targets of "
            "docs/feature_catalog.md, causal (only trades up to this one and tickers at or before its time), computed per "
            "product in O(1) per row per feature. Reads Silver trades D-1..D+1 (lookback across midnight, future-price "
            "targets) and Silver ticker D-1..D (as-of quote join). Written to `gold/features/product_id=X/event_date=D/`."
        ),
        partitions_def=event_date_product_partitions(settings),
        group_name="gold",
        kinds={"spark", "pandas", "parquet"},
        owners=[OWNER],
        tags={"layer": "gold"},
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(minutes=settings.gold_freshness_minutes)),
        deps=[
            AssetDep(AssetKey("silver_trades"), partition_mapping=_mapping(-1, 1)),
            AssetDep(AssetKey("silver_ticker"), partition_mapping=_mapping(-1, 0)),
        ],
        check_specs=[AssetCheckSpec(n, asset=GOLD_KEY, blocking=b, description=d) for n, (b, d) in CHECKS.items()],
    )
    def gold_features(
        context: AssetExecutionContext, spark: SparkResource, lake: LakeResource, glue: GlueEngineResource
    ) -> MaterializeResult:
        keys = context.partition_key.keys_by_dimension
        day, product = date.fromisoformat(keys[EVENT_DATE]), keys[PRODUCT]
        written = {"product_id": product, "event_date": day.isoformat()}
        if settings.engine == "glue":
            result = gold_on_glue(context, glue, lake, day.isoformat(), product)
            register_catalog_partitions(context, glue, lake, [("gold", "features")], written)
            return result
        # The default (Arrow) engine needs no Spark: the session, and its JVM, start only if asked for.
        s = build_gold(spark.get_session, lake, day, [product])[product]
        context.log.info(
            f"gold {day} {product}: {s.rows} rows ({s.training_ready} training-ready), "
            f"{s.excluded_lookback} excluded for lookback{'; ' + s.empty_reason if s.empty_reason else ''}"
        )
        register_catalog_partitions(context, glue, lake, [("gold", "features")], written)
        return MaterializeResult(metadata=gold_metadata(s), check_results=gold_check_results(s))

    return gold_features
