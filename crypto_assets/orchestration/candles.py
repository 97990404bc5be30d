"""Candles assets: 1-minute OHLCV candles from Silver, and 1-hour candles rolled up from them, per event date x product."""

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

from crypto_assets.contracts.names import CANDLE_INTERVALS, TICKER, TRADES
from crypto_assets.contracts.settings import Settings
from crypto_assets.contracts.tables import candles_table_def
from crypto_assets.gold.candles_build import SOURCE
from crypto_assets.gold.candles_report import CANDLE_CHECKS
from crypto_assets.orchestration.kafka_topics import OWNER
from crypto_assets.orchestration.keys import FULL_REBUILD_TAG, candles_key, silver_key
from crypto_assets.orchestration.partitions import event_date_product_partitions, parse_partition_key
from crypto_assets.orchestration.reporting import check_specs
from crypto_assets.orchestration.resources.compute import ComputeResource, asset_kinds
from crypto_assets.orchestration.resources.lake import LakeResource

_COLUMNS = (
    "Columns: window_start (UTC), open, high, low, close, volume (sum of size), notional (sum of price x size), vwap "
    "(notional / volume), trade_count, buy_volume and sell_volume (by Silver side), last_best_bid and last_best_ask, "
    "mean_spread (best_ask - best_bid) and ticker_count over the window's Silver tickers that carry both a bid and an "
    "ask (null, 0 when none)."
)
DESCRIPTIONS = {
    "1m": ("One row per product and UTC minute with at least one trade: minutes without trades are absent (never "
           "zero-filled). Open and close are the first and last trade in (trade_time, trade_id) order, as in Gold. "
           f"{_COLUMNS} Reads Silver trades and ticker of the same day, each from one pinned snapshot."),
    "1h": ("One row per product and UTC hour with at least one trade, rolled up from gold_candles_1m of the same "
           "day: open of the first minute, close of the last, extremes, sums, vwap = notional / volume, the last "
           "bid/ask of the last minute that has one, mean_spread weighted by each minute's ticker_count (so the quote "
           f"columns cover the hour's minutes with trades). Hours without trades are absent. {_COLUMNS}"),
}


def _deps(interval: str) -> list[AssetDep]:
    """Same partition: Silver trades and ticker (1m), or the candles it rolls up (1h)."""
    if SOURCE[interval] is None:
        return [AssetDep(silver_key(TRADES)), AssetDep(silver_key(TICKER))]
    return [AssetDep(candles_key(SOURCE[interval]))]


def _candles_asset(settings: Settings, interval: str) -> AssetsDefinition:
    key = candles_key(interval)
    t = candles_table_def(interval)

    @asset(
        key=key,
        description=(f"{DESCRIPTIONS[interval]} Written to the Iceberg table `{t.identifier}` (partition product_id, "
                     f"event_date; `{t.flat_name}` in SQL and Athena), one commit per run. Incremental: a run "
                     "recomputes the windows from the earliest time the input added since its last run holds, and "
                     f"replaces those; rebuilt whole without a usable state or with the run tag {FULL_REBUILD_TAG}=true."),
        partitions_def=event_date_product_partitions(settings),
        group_name="gold",
        kinds=asset_kinds(settings, "pandas", "parquet"),
        owners=[OWNER],
        tags={"layer": "gold"},
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(minutes=settings.gold_freshness_minutes)),
        deps=_deps(interval),
        check_specs=check_specs(key, CANDLE_CHECKS[interval]),
    )
    def _candles(context: AssetExecutionContext, compute: ComputeResource, lake: LakeResource) -> MaterializeResult:
        day, product = parse_partition_key(context.partition_key)
        full = context.run.tags.get(FULL_REBUILD_TAG, "").lower() == "true"
        return compute.candles_partition(context, interval, day, product, full=full)

    return _candles


def build_candle_assets(settings: Settings) -> list[AssetsDefinition]:
    """gold_candles_1m and gold_candles_1h (after it)."""
    return [_candles_asset(settings, interval) for interval in CANDLE_INTERVALS]


def candle_keys() -> list[AssetKey]:
    return [candles_key(interval) for interval in CANDLE_INTERVALS]
