"""The Dagster asset keys, built from the asset names of `contracts/names.py` (one spelling each)."""

from __future__ import annotations

from dagster import AssetKey

from crypto_assets.contracts.names import GOLD_ASSET, bronze_asset, silver_asset

GOLD_KEY = AssetKey(GOLD_ASSET)


def bronze_key(kind: str) -> AssetKey:
    return AssetKey(bronze_asset(kind))


def silver_key(kind: str) -> AssetKey:
    return AssetKey(silver_asset(kind))
