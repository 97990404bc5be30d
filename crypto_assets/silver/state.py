"""What an incremental Silver run carries from the last one: recorded in the snapshot summaries of the
Silver and quarantine tables (`crypto.silver-state`), never kept in memory between runs.

For each (event day, product) partition a run wrote, the state says which Bronze rows it has read
(the watermark: per Bronze ingest day, Kafka topic and partition, the highest offset read; Bronze holds
every offset once, and a later Bronze commit only adds higher offsets to a Kafka partition of an
ingest day), the running counts the reconciliation check adds up (items of the window, duplicates,
items owned by other partitions), the rules it applied, and which run last committed quarantine rows
of the partition. Silver and quarantine are two tables, so two commits: quarantine first, then Silver
with the state. The next run trusts the state only if the quarantine table's newest state for the
partition is the one the Silver state names; otherwise (a run died between its two commits, a writer
that records no state changed the table, the snapshot holding the state was expired, the rules
changed) it rebuilds the partition in full.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date

from crypto_assets.contracts.partitioning import SilverRules
from crypto_assets.lake.snapshots import DATA_OPERATIONS, Provenance, lineage

STATE_KEY = "silver-state"  # `crypto.silver-state` in the snapshot summary: {product: state}
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
    run: str  # this state's commit (a fresh id per run)
    quarantine_run: str | None  # the run whose commit is the quarantine table's newest for the partition
    bronze_snapshot: int | None
    watermark: dict[str, int] = field(default_factory=dict)
    window_items: int = 0
    duplicates: int = 0
    conflicting: int = 0
    other_partitions: int = 0
    blocked: bool = False  # the partition this state describes failed a blocking check: rebuild, do not go on

    def offset_read(self, ingest_day, topic: str, partition: int) -> int:
        """The highest offset read of that Bronze ingest day, topic and Kafka partition (-1: none)."""
        return self.watermark.get(watermark_key(ingest_day, topic, partition), -1)


def state_property(states: dict[str, SilverState]) -> dict[str, str]:
    """The `Provenance.extra` entry that records the states of a commit's partitions."""
    return {STATE_KEY: json.dumps({p: asdict(s) for p, s in states.items()}, sort_keys=True)}


class Foreign:
    """The newest commit touching the table was made without a state (another writer): no state to trust."""


FOREIGN = Foreign()


def newest_state(table, asset: str, day: date, product: str) -> SilverState | Foreign | None:
    """The newest state recorded for (day, product) along the table's current lineage; FOREIGN when a data
    commit that records no state (an engine, a migration) came first; None when none is left (never
    written incrementally, or the snapshots holding it were expired)."""
    for snap in lineage(table):
        provenance = Provenance.of(snap)
        operation = snap.summary.operation.value if snap.summary is not None else ""
        if provenance is None or provenance.asset != asset:
            if operation in (*DATA_OPERATIONS, "delete"):
                return FOREIGN
            continue  # maintenance (replace) changes no rows
        recorded = json.loads(provenance.extra.get(STATE_KEY, "{}")).get(product)
        if recorded is not None and recorded["day"] == day.isoformat():
            return SilverState(**recorded)
        written_day, _, products = provenance.partition.partition("|")
        if written_day == day.isoformat() and product in products.split(","):
            return None  # the partition was written by a version that recorded no state
    return None


def partition_key(day: date, products: list[str]) -> str:
    """The Dagster partition key of one product's run (`2026-03-10|BTC-USD`); several products: joined by commas."""
    return f"{day.isoformat()}|{','.join(products)}"
