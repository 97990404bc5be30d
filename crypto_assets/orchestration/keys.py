"""The Dagster asset keys, built from the asset names of `contracts/names.py` (one spelling each)."""

from __future__ import annotations

from dagster import AssetKey

from crypto_assets.contracts.names import GOLD_ASSET, bronze_asset, candles_asset, silver_asset

GOLD_KEY = AssetKey(GOLD_ASSET)
# A run with this tag set to "true" rebuilds its Silver partitions from all of their Bronze window instead of
# going on from the state of the run before (`crypto-pipeline backfill --full`; in the UI: a run or backfill tag).
FULL_REBUILD_TAG = "crypto/full-rebuild"


def bronze_key(kind: str) -> AssetKey:
    return AssetKey(bronze_asset(kind))


def silver_key(kind: str) -> AssetKey:
    return AssetKey(silver_asset(kind))


def candles_key(interval: str) -> AssetKey:
    return AssetKey(candles_asset(interval))
