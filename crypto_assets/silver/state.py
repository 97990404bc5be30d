"""What an incremental Silver run carries from the last one, kept in the Silver table's properties
(`crypto.silver-state.<event day>|<product>`), written in the same commit as the partition's rows, never
kept in memory between runs.

For each (event day, product) partition the state says which Bronze rows have been read (the watermark:
per Bronze ingest day, Kafka topic and partition, the highest offset read; Bronze holds every offset once,
and a later Bronze commit only adds higher offsets to a Kafka partition of an ingest day), the running
counts the reconciliation check adds up (items of the window, duplicates, items owned by other
partitions), the rules it applied, and how many rows the Silver and quarantine partitions hold after the
commit. Table properties live in the table's metadata, so expiring old snapshots (maintenance keeps a
bounded history) never loses a state, and reading one needs no walk through the history.

Silver and quarantine are two tables, so two commits: quarantine first, then Silver with the state. The
next run trusts the state only if both partitions still hold the rows it counts: a run that stopped
between its two commits, or a writer that does not keep the state (an engine, a migration), leaves a
count that differs, and the partition is rebuilt in full. So are partitions written under other rules.
States of event days more than `KEEP_DAYS` before the newest day holding one are dropped (those
partitions rebuild whole if they are ever written again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date

from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.lake import partition_state

PREFIX = "crypto.silver-state."
# Raised whenever the marking rules change in a way the settings do not show (silver.transforms):
# a partition written by other rules is rebuilt in full, not continued.
LOGIC_VERSION = 1


def rules_version(rules: SilverRules) -> str:
    """A short fingerprint of everything that decides a row's disposition."""
    text = json.dumps({"logic": LOGIC_VERSION, **asdict(rules)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def watermark_key(ingest_day: date | str, topic: str, partition: int) -> str:
    return f"{ingest_day}|{topic}|{partition}"


@dataclass
class SilverState:
    day: str
    rules: str
    run: str  # the Dagster run (or other caller) that recorded it
    bronze_snapshot: int | None
    watermark: dict[str, int] = field(default_factory=dict)
    window_items: int = 0
    duplicates: int = 0
    conflicting: int = 0
    other_partitions: int = 0
    silver_rows: int = 0  # rows the Silver partition holds after the commit that recorded this state
    quarantine_rows: int = 0  # rows the quarantine partition holds then
    blocked: bool = False  # the partition failed a blocking check: rebuild it, do not go on from it

    def offset_read(self, ingest_day, topic: str, partition: int) -> int:
        """The highest offset read of that Bronze ingest day, topic and Kafka partition (-1: none)."""
        return self.watermark.get(watermark_key(ingest_day, topic, partition), -1)


def read_state(table, day: date, product: str) -> SilverState | None:
    """The state recorded for (day, product) in the Silver table's properties, if any."""
    values = partition_state.read_state_json(table, PREFIX, day, product)
    return SilverState(**values) if values else None


def state_properties(table, states: dict[str, SilverState]) -> tuple[dict[str, str], list[str]]:
    """(properties to set, none to remove) recording `states` (product -> state)."""
    return partition_state.state_properties(PREFIX, states)


def stale_states(table) -> tuple[dict[str, str], list[str]]:
    """(nothing to set, the states of days more than KEEP_DAYS before the newest day holding one)."""
    return partition_state.stale_states(table, PREFIX)
