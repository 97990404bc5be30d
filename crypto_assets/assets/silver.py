"""Silver assets: typed, validated, deduplicated trades and ticker per event date x product.

Checks run with every materialization and are returned in the MaterializeResult: uniqueness
and not-null are blocking (a failure stops downstream assets in the same run);
reconciliation, ranges and gaps are reported with their numbers as metadata.
"""

from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
)

from crypto_assets.assets.kafka_topics import OWNER
from crypto_assets.engines.glue import GlueEngineResource, register_catalog_partitions, silver_on_glue
from crypto_assets.partitions import EVENT_DATE, PRODUCT, event_date_product_partitions
from crypto_assets.resources.lake import LakeResource
from crypto_assets.resources.spark import SparkResource
from crypto_assets.settings import Settings
from crypto_assets.steps.silver import BronzeMissingError, SilverStats, build_silver
from crypto_assets.transforms.bronze import TICKER, TRADES
from crypto_assets.transforms.silver import SILVER_TABLE, SilverRules

# check name -> (blocking, description)
CHECKS = {
    TRADES: {
        "unique_trade_id": (True, "No two Silver rows share (product_id, trade_id)."),
        "keys_not_null": (True, "product_id, trade_id, trade_time, price, size and side are never null."),
        "reconciliation": (False, "Bronze items of the window = Silver + duplicates + quarantined + other partitions."),
        "price_size_positive": (False, "Every price and size is > 0."),
        "trade_id_gaps": (False, "Trade ids are dense per product; missing ids mean lost trades (warn)."),
    },
    TICKER: {
        "unique_ticker_content": (True, "No two Silver rows carry the same ticker content."),
        "keys_not_null": (True, "product_id, event_time and price are never null."),
        "reconciliation": (False, "Bronze items of the window = Silver + duplicates + quarantined + other partitions."),
        "price_positive": (False, "Every price is > 0."),
        "quotes_not_crossed": (False, "best_bid <= best_ask (warn on crossed quotes)."),
    },
}


def silver_asset_key(kind: str) -> AssetKey:
    return AssetKey(f"silver_{kind}")


def _check_results(kind: str, s: SilverStats) -> list[AssetCheckResult]:
    key = silver_asset_key(kind)
    recon = {
        "bronze_window_items": s.window_items, "silver_rows": s.rows, "duplicates": s.duplicates,
        "quarantined": s.quarantined, "other_partitions": s.other_partitions,
    }
    recon_md = {k: MetadataValue.int(v) for k, v in recon.items()}
    results = [
        AssetCheckResult(
            asset_key=key, check_name="keys_not_null", passed=not any(s.null_keys.values()),
            metadata={"null_counts": MetadataValue.json(s.null_keys)},
        ),
        AssetCheckResult(
            asset_key=key, check_name="reconciliation", passed=s.reconciles, metadata=recon_md,
        ),
    ]
    if kind == TRADES:
        results += [
            AssetCheckResult(
                asset_key=key, check_name="unique_trade_id", passed=s.duplicate_keys == 0,
                metadata={"duplicate_rows": MetadataValue.int(s.duplicate_keys)},
            ),
            AssetCheckResult(
                asset_key=key, check_name="price_size_positive", passed=not any(s.non_positive.values()),
                metadata={"non_positive": MetadataValue.json(s.non_positive)},
            ),
            AssetCheckResult(
                asset_key=key, check_name="trade_id_gaps", passed=not s.trade_id_gaps.get("missing_trade_ids"),
                severity=AssetCheckSeverity.WARN, metadata={"trade_ids": MetadataValue.json(s.trade_id_gaps)},
            ),
        ]
    else:
        results += [
            AssetCheckResult(
                asset_key=key, check_name="unique_ticker_content", passed=s.duplicate_keys == 0,
                metadata={"duplicate_rows": MetadataValue.int(s.duplicate_keys)},
            ),
            AssetCheckResult(
                asset_key=key, check_name="price_positive", passed=not s.non_positive.get("price"),
                metadata={"non_positive": MetadataValue.json(s.non_positive)},
            ),
            AssetCheckResult(
                asset_key=key, check_name="quotes_not_crossed", passed=s.crossed_quotes == 0,
                severity=AssetCheckSeverity.WARN, metadata={"crossed_quotes": MetadataValue.int(s.crossed_quotes)},
            ),
        ]
    return results


def preview_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def silver_metadata(s: SilverStats) -> dict:
    return {
        "rows": MetadataValue.int(s.rows),
        "duplicates_removed": MetadataValue.int(s.duplicates),
        "conflicting_duplicates": MetadataValue.int(s.conflicting_duplicates),
        "quarantined": MetadataValue.int(s.quarantined),
        "quarantined_by_reason": MetadataValue.json(s.quarantined_by_reason),
        "bronze_items_in_window": MetadataValue.int(s.window_items),
        "items_of_other_partitions": MetadataValue.int(s.other_partitions),
        "bronze_days_read": MetadataValue.json(s.bronze_days),
        "min_event_time": MetadataValue.text(s.min_event_time or ""),
        "max_event_time": MetadataValue.text(s.max_event_time or ""),
        "path": MetadataValue.path(s.path),
        "quarantine_path": MetadataValue.path(s.quarantine_path),
        "preview": MetadataValue.md(preview_markdown(s.preview)),
    }


def _bronze_was_materialized(context: AssetExecutionContext, kind: str, day: str) -> bool:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(f"bronze_{kind}"), asset_partitions=[day]), limit=1
    )
    return bool(records.records)


def build_silver_asset(kind: str, settings: Settings) -> AssetsDefinition:
    key = silver_asset_key(kind)
    table = SILVER_TABLE[kind]
    rules = SilverRules(allowed_lateness_days=settings.allowed_lateness_days)

    @asset(
        key=key,
        description=(
            f"Typed, validated, deduplicated {kind} of one UTC event day and product, read from Bronze ingest days "
            f"D-1 (last minutes) .. D+{rules.allowed_lateness_days} so late records reach their day. "
            f"{'Deduplicated on (product_id, trade_id), earliest ingested copy kept.' if kind == TRADES else 'Deduplicated on the ticker content.'} "
            f"Rejected items go to `quarantine/{table}/` with a reason. Written to `silver/{table}/product_id=X/event_date=D/`."
        ),
        partitions_def=event_date_product_partitions(settings),
        group_name="silver",
        kinds={"spark", "parquet"},
        owners=[OWNER],
        tags={"layer": "silver"},
        freshness_policy=FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=2 * settings.silver_freshness_minutes),
            warn_window=timedelta(minutes=settings.silver_freshness_minutes),
        ),
        deps=[
            AssetDep(
                AssetKey(f"bronze_{kind}"),
                partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name=EVENT_DATE),
            )
        ],
        check_specs=[
            AssetCheckSpec(name, asset=key, blocking=blocking, description=desc)
            for name, (blocking, desc) in CHECKS[kind].items()
        ],
    )
    def _silver(
        context: AssetExecutionContext, spark: SparkResource, lake: LakeResource, glue: GlueEngineResource
    ) -> MaterializeResult:
        keys = context.partition_key.keys_by_dimension
        day, product = date.fromisoformat(keys[EVENT_DATE]), keys[PRODUCT]
        written = {"product_id": product, "event_date": day.isoformat()}
        if settings.engine == "glue":
            result = silver_on_glue(context, glue, lake, kind, day.isoformat(), product, rules.allowed_lateness_days,
                                    _bronze_was_materialized(context, kind, day.isoformat()))
            register_catalog_partitions(context, glue, lake, [("silver", table), ("quarantine", table)], written)
            return result
        session = spark.get_session()
        try:
            stats = build_silver(session, lake, kind, day, [product], rules)[product]
        except BronzeMissingError as exc:
            if not _bronze_was_materialized(context, kind, day.isoformat()):
                raise Failure(description=str(exc), allow_retries=False) from None
            # Bronze ran for that day and found nothing: Silver is empty, not an error.
            stats = build_silver(session, lake, kind, day, [product], rules, require_bronze_day=False)[product]
        context.log.info(
            f"silver {kind} {day} {product}: {stats.rows} rows, {stats.duplicates} duplicates, "
            f"{stats.quarantined} quarantined {stats.quarantined_by_reason or ''} from Bronze {stats.bronze_days}"
        )
        register_catalog_partitions(context, glue, lake, [("silver", table), ("quarantine", table)], written)
        return MaterializeResult(metadata=silver_metadata(stats), check_results=_check_results(kind, stats))

    return _silver


def silver_assets(settings: Settings) -> list[AssetsDefinition]:
    return [build_silver_asset(kind, settings) for kind in (TRADES, TICKER)]

