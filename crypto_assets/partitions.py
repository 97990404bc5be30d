"""Partition definitions shared by the assets, sensors and tests."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from crypto_assets.settings import Settings


def ingest_date_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """Bronze: one partition per UTC ingest day; today included (end_offset=1) so it can fill live."""
    return DailyPartitionsDefinition(start_date=settings.first_date, timezone="UTC", end_offset=1)
