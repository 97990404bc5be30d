"""What an incremental Gold run carries from the last one, kept in the Gold table's properties
(`crypto.gold-state.<event day>|<product>`, `lake.partition_state`), written in the same commit as the rows.

For each (event day, product) partition: the Silver trades and ticker snapshots it was computed from (the
next run reads what Silver added since: the data files added to the partitions Gold D reads), the feature
rules it was computed under, how many rows the partition holds after the commit, and the rows excluded for
lookback (they form a prefix of the day, which an incremental run never reaches). A state that no longer
matches the table (another row count), other rules, a Silver snapshot expired or a Silver file removed
since (a Silver partition rebuilt or compacted) sends the partition to a full rebuild.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from crypto_assets.contracts.gold_features import FEATURE_CATALOG_VERSION
from crypto_assets.lake import partition_state

PREFIX = "crypto.gold-state."
# Raised whenever the feature code changes what it computes in a way the names do not show.
LOGIC_VERSION = 1


def rules_version(quote_join: str, segment_seconds: int) -> str:
    """A short fingerprint of what decides a Gold row's values."""
    text = json.dumps({"logic": LOGIC_VERSION, "catalog": FEATURE_CATALOG_VERSION, "quote_join": quote_join,
                       "segment_seconds": segment_seconds}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class GoldState:
    day: str
    rules: str
    run: str
    trades_snapshot: int | None  # the Silver trades snapshot read
    ticker_snapshot: int | None  # the Silver ticker snapshot read
    rows: int = 0  # rows the Gold partition holds after the commit that recorded this state
    excluded_lookback: int = 0
    blocked: bool = False  # the partition failed a blocking check: rebuild it, do not go on from it


def read_state(table, day: date, product: str) -> GoldState | None:
    values = partition_state.read_state_json(table, PREFIX, day, product)
    return GoldState(**values) if values else None


def state_properties(table, states: dict[str, GoldState]) -> tuple[dict[str, str], list[str]]:
    return partition_state.state_properties(PREFIX, states)


def stale_states(table) -> tuple[dict[str, str], list[str]]:
    return partition_state.stale_states(table, PREFIX)
