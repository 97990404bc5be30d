"""Partition definitions shared by the assets, sensors and tests."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition, MultiPartitionsDefinition

from crypto_assets.settings import Settings

# Products grow as Bronze shows new ones (the Bronze assets and the Bronze sensor add them).
PRODUCTS = DynamicPartitionsDefinition(name="product_id")
EVENT_DATE = "event_date"
PRODUCT = "product_id"


def ingest_date_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """Bronze: one partition per UTC ingest day; today included (end_offset=1) so it can fill live."""
    return DailyPartitionsDefinition(start_date=settings.first_date, timezone="UTC", end_offset=1)


def event_date_product_partitions(settings: Settings) -> MultiPartitionsDefinition:
    """Silver and Gold: UTC event day x product."""
    return MultiPartitionsDefinition(
        {
            EVENT_DATE: DailyPartitionsDefinition(start_date=settings.first_date, timezone="UTC", end_offset=1),
            PRODUCT: PRODUCTS,
        }
    )
