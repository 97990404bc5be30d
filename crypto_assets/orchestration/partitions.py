"""Partition definitions shared by the assets, sensors and tests.

The daily partitions begin at the lake's first day, so a new lake shows a few days (not years
of empty partitions) and a long-running one shows its whole history: `CRYPTO_FIRST_DATE` if
set, else the first Bronze ingest day in the lake, else today.
"""

from __future__ import annotations

import logging
import warnings
from datetime import date, datetime, timezone

from dagster import (
    BetaWarning,
    DailyPartitionsDefinition,
    DimensionPartitionMapping,
    DynamicPartitionsDefinition,
    IdentityPartitionMapping,
    MultiPartitionKey,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    TimeWindowPartitionMapping,
)

from crypto_assets.contracts.names import KINDS
from crypto_assets.contracts.settings import Settings
from crypto_assets.lake.store import Lake

log = logging.getLogger(__name__)

# Products grow as Bronze shows new ones (the Bronze assets and the Bronze sensor add them).
PRODUCTS = DynamicPartitionsDefinition(name="product_id")
EVENT_DATE = "event_date"
PRODUCT = "product_id"


def lake_first_day(settings: Settings) -> str | None:
    """The earliest ingest day among the Bronze tables' partitions, or None for an empty lake."""
    from crypto_assets.contracts.tables import bronze_table
    from crypto_assets.lake.catalog import CatalogError, load_table

    config = Lake.from_settings(settings).catalog_config
    if config.sqlite_path is not None and not config.sqlite_path.exists():
        return None  # no catalog yet: nothing was ever written (and listing must not create one)
    days = []
    try:
        for kind in KINDS:
            table = load_table(config, bronze_table(kind), create=False)
            if table is None or table.current_snapshot() is None:
                continue
            parts = table.inspect.partitions()
            days += [p["ingest_date"] for p in parts.column("partition").to_pylist() if p["ingest_date"] is not None]
    except (OSError, CatalogError) as exc:  # an unreachable lake must not stop the code location from loading
        log.warning("could not read the lake's Bronze days (%s); the partitions start today", exc)
        return None
    return min(days).isoformat() if days else None


def first_day(settings: Settings) -> str:
    """The first day of the daily partitions (see the module docstring)."""
    return settings.first_date or lake_first_day(settings) or datetime.now(timezone.utc).date().isoformat()


def with_first_day(settings: Settings, earliest: str | None = None) -> Settings:
    """`settings` with the first day resolved (the lake is listed once), moved back to `earliest` if
    that is before it: a backfill or the demo of days before the lake's first day."""
    first = first_day(settings)
    if earliest is not None and earliest < first:
        first = earliest
    return settings.replace(first_date=first)


def _daily(settings: Settings) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(start_date=first_day(settings), timezone="UTC", end_offset=1)


def ingest_date_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """Bronze: one partition per UTC ingest day; today included (end_offset=1) so it can fill live."""
    return _daily(settings)


def event_date_product_partitions(settings: Settings) -> MultiPartitionsDefinition:
    """Silver and Gold: UTC event day x product."""
    return MultiPartitionsDefinition(
        {
            EVENT_DATE: _daily(settings),
            PRODUCT: PRODUCTS,
        }
    )


# The two mappings between these partitions are beta in Dagster 1.13 (pinned in setup.py); the sensor,
# backfill and end-to-end tests hold their behaviour, so their BetaWarning is silenced here, where they
# are made, and nowhere else.


def event_days_of_ingest_day() -> MultiToSingleDimensionPartitionMapping:
    """(event day D, product) depends on the daily partition D (Silver on Bronze's ingest day D)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return MultiToSingleDimensionPartitionMapping(partition_dimension_name=EVENT_DATE)


def event_day_window(start: int, end: int) -> MultiPartitionMapping:
    """(D, product) depends on (D+start .. D+end, same product)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return MultiPartitionMapping({
            EVENT_DATE: DimensionPartitionMapping(EVENT_DATE, TimeWindowPartitionMapping(start_offset=start, end_offset=end)),
            PRODUCT: DimensionPartitionMapping(PRODUCT, IdentityPartitionMapping()),
        })


def partition_key(event_date: date | str, product: str) -> MultiPartitionKey:
    """The (event day, product) partition of Silver and Gold: the one way such a key is built."""
    day = event_date.isoformat() if isinstance(event_date, date) else event_date
    return MultiPartitionKey({EVENT_DATE: day, PRODUCT: product})


def parse_partition_key(key: MultiPartitionKey | str) -> tuple[date, str]:
    """(event day, product) of a Silver or Gold partition key, as the asset receives it or as Dagster stores it
    (the dimensions' keys joined by "|" in the order of their names: event_date, product_id)."""
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        dims = dict(zip(sorted([EVENT_DATE, PRODUCT]), key.split("|")))
    if set(dims) != {EVENT_DATE, PRODUCT}:
        raise ValueError(f"{key!r} is not an (event_date, product_id) partition key")
    return date.fromisoformat(dims[EVENT_DATE]), dims[PRODUCT]
