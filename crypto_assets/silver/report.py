"""What a Silver partition reports: metadata, the declared checks and their results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.contracts.names import TICKER, TRADES
from crypto_assets.contracts.partitioning import DayHead
from crypto_assets.contracts.reporting import CheckReport, Metadata, preview_markdown

if TYPE_CHECKING:
    from crypto_assets.silver.build import SilverStats

# check name -> (blocking, description): the assets' check specs. silver_report returns exactly these
# checks (a test holds them to it), so a check is named here once.
SILVER_CHECKS: dict[str, dict[str, tuple[bool, str]]] = {
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


def _snapshot(snapshot_id: int | None) -> str:
    """A snapshot id as metadata text (empty: the table has no snapshot yet), as Bronze reports it."""
    return "" if snapshot_id is None else str(snapshot_id)


def silver_progress(s: SilverStats) -> str:
    """One line on how the run brought the partition up to date."""
    if s.mode == "incremental":
        if not s.bronze_rows_new:
            return f"incremental: nothing new in Bronze since snapshot {s.bronze_snapshot_from}; nothing committed"
        return (f"incremental: {s.bronze_rows_new} new Bronze rows since snapshot {s.bronze_snapshot_from} -> "
                f"{s.rows_appended} rows and {s.quarantine_appended} quarantined appended")
    return f"full rebuild ({s.full_reason}): the partition replaced with {s.rows} rows"


def silver_report(kind: str, s: SilverStats) -> tuple[Metadata, list[CheckReport]]:
    """(materialization metadata, check results) of a Silver partition of `kind` (trades or ticker)."""
    metadata: Metadata = {
        "rows": ("int", s.rows),
        "duplicates_removed": ("int", s.duplicates),
        "conflicting_duplicates": ("int", s.conflicting_duplicates),
        "quarantined": ("int", s.quarantined),
        "quarantined_by_reason": ("json", s.quarantined_by_reason),
        "bronze_items_in_window": ("int", s.window_items),
        "items_of_other_partitions": ("int", s.other_partitions),
        "bronze_days_read": ("json", s.bronze_days),
        "min_event_time": ("text", s.min_event_time or ""),
        "max_event_time": ("text", s.max_event_time or ""),
        # Snapshot ids as text: they are 63-bit, beyond what the UI shows exactly as numbers.
        "table": ("text", s.table),
        "snapshot_id": ("text", _snapshot(s.snapshot_id)),
        "quarantine_table": ("text", s.quarantine_table),
        "quarantine_snapshot_id": ("text", _snapshot(s.quarantine_snapshot_id)),
        "bronze_snapshot_id": ("text", _snapshot(s.bronze_snapshot_id)),
        # What the run read and wrote: incremental (the Bronze rows since the snapshot the run before had read,
        # appended) or full (the partition replaced, and why).
        "mode": ("text", s.mode),
        "full_rebuild_reason": ("text", s.full_reason if s.mode == "full" else ""),
        "bronze_snapshot_read_from": ("text", _snapshot(s.bronze_snapshot_from) if s.mode == "incremental" else ""),
        "bronze_rows_new": ("int", s.bronze_rows_new or 0),
        "rows_appended": ("int", s.rows_appended),
        "quarantine_rows_appended": ("int", s.quarantine_appended),
        "partition_replaced": ("bool", s.rows_replaced),
        "preview": ("md", preview_markdown(s.preview)),
    }
    if kind == TRADES:
        metadata[DayHead.SILVER_KEY] = ("text", s.head.to_metadata())
    recon = {
        "bronze_window_items": s.window_items, "silver_rows": s.rows, "duplicates": s.duplicates,
        "quarantined": s.quarantined, "other_partitions": s.other_partitions,
    }
    checks = [
        CheckReport("keys_not_null", not any(s.null_keys.values()), metadata={"null_counts": ("json", s.null_keys)}),
        CheckReport("reconciliation", s.reconciles, metadata={k: ("int", v) for k, v in recon.items()}),
    ]
    duplicates = {"duplicate_rows": ("int", s.duplicate_keys)}
    non_positive = {"non_positive": ("json", s.non_positive)}
    if kind == TRADES:
        checks += [
            CheckReport("unique_trade_id", s.duplicate_keys == 0, metadata=duplicates),
            CheckReport("price_size_positive", not any(s.non_positive.values()), metadata=non_positive),
            CheckReport("trade_id_gaps", not s.trade_id_gaps.get("missing_trade_ids"), "WARN",
                        {"trade_ids": ("json", s.trade_id_gaps)}),
        ]
    else:
        checks += [
            CheckReport("unique_ticker_content", s.duplicate_keys == 0, metadata=duplicates),
            CheckReport("price_positive", not s.non_positive.get("price"), metadata=non_positive),
            CheckReport("quotes_not_crossed", s.crossed_quotes == 0, "WARN",
                        {"crossed_quotes": ("int", s.crossed_quotes)}),
        ]
    return metadata, checks
