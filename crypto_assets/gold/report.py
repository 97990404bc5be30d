"""What a Gold partition reports: metadata, the declared checks and their results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.contracts.gold_features import FEATURES, TARGETS
from crypto_assets.contracts.partitioning import DayHead
from crypto_assets.contracts.reporting import CheckReport, Metadata, preview_markdown

if TYPE_CHECKING:
    from crypto_assets.gold.build import GoldStats

# check name -> (blocking, description), as for Silver.
GOLD_CHECKS: dict[str, tuple[bool, str]] = {
    "schema_matches_catalog": (True, "Every catalog column is present with its declared type."),
    "unique_trade_id": (True, "One row per (product_id, trade_id)."),
    "not_null_when_full": (True, "Features that cannot be null once the lookback is full are never null."),
    "no_lookahead": (False, "Prefix invariance: sampled rows recomputed from data cut right after the trade match."),
    "row_reconciliation": (False, "Silver trades of the day = Gold rows + rows excluded for lookback."),
    "ranges": (False, "Ratios within their declared bounds, RSI within [0, 100], no infinities."),
    "targets_complete": (True, "Only the last trades lack targets: those with fewer than 50 later trades in Silver "
                               "(this day's and the next day's)."),
}


def gold_notes(s: GoldStats) -> str:
    """What a reader of a Gold partition should know about its gaps, as a markdown list ("-" when none)."""
    notes = []
    if s.empty_reason:
        notes.append(s.empty_reason)
    if s.rows_written and s.tickers_in_input == 0:
        notes.append("no Silver tickers for this product: quote features are null; trade features are computed")
    if (s.rows - s.training_ready) and s.rows:
        notes.append("the last trades' targets need the next day's Silver; they fill in when Gold is re-run after it arrives")
    return "\n".join(f"- {n}" for n in notes) or "-"


def gold_progress(s: GoldStats) -> str:
    """One line on how the run brought the partition up to date."""
    since = ", ".join(str(v) for v in s.silver_snapshots_read_from.values())
    if s.mode == "unchanged":
        return f"incremental: nothing new in Silver since snapshots {since}; nothing committed"
    if s.mode == "incremental":
        if s.recomputed_from is None:
            return f"incremental: Silver files added since snapshots {since} change no row of the day; state recorded"
        return (f"incremental: {s.silver_rows_read} Silver trades read, rows from {s.recomputed_from} recomputed: "
                f"{s.rows_replaced} replaced by {s.rows_written}")
    return f"full rebuild ({s.full_rebuild_reason}): the partition replaced with {s.rows_written} rows"


def gold_report(s: GoldStats) -> tuple[Metadata, list[CheckReport]]:
    """(materialization metadata, check results) of a Gold partition."""
    metadata: Metadata = {
        "rows": ("int", s.rows),
        "mode": ("text", s.mode),
        "full_rebuild_reason": ("text", s.full_rebuild_reason or ""),
        "progress": ("text", gold_progress(s)),
        "silver_snapshots_read_from": ("json", {t: "" if i is None else str(i)
                                                for t, i in s.silver_snapshots_read_from.items()}),
        "silver_trades_read": ("int", s.silver_rows_read),
        "recomputed_from": ("text", s.recomputed_from or ""),
        "rows_written": ("int", s.rows_written),
        "rows_replaced": ("int", s.rows_replaced),
        "training_ready_rows": ("int", s.training_ready),
        "rows_with_unknown_targets": ("int", s.rows - s.training_ready),
        "excluded_for_lookback": ("int", s.excluded_lookback),
        "silver_days_read": ("json", s.silver_days),
        "ticker_days_read": ("json", s.ticker_days),
        DayHead.GOLD_KEY: ("text", s.next_day_head.to_metadata()),
        "tickers_in_input": ("int", s.tickers_in_input),
        "rows_without_quote": ("int", s.rows_without_quote),
        "min_trade_time": ("text", s.min_trade_time or ""),
        "max_trade_time": ("text", s.max_trade_time or ""),
        "features": ("int", len(FEATURES)),
        "targets": ("int", len(TARGETS)),
        # Snapshot ids as text: they are 63-bit, beyond what the UI shows exactly as numbers.
        "table": ("text", s.table),
        "snapshot_id": ("text", "" if s.snapshot_id is None else str(s.snapshot_id)),
        "silver_snapshot_ids": ("json", {t: str(i) for t, i in s.silver_snapshot_ids.items()}),
        "preview": ("md", preview_markdown(s.preview)),
        "notes": ("md", gold_notes(s)),
    }
    leak = s.leakage
    checks = [
        CheckReport("schema_matches_catalog", not s.schema_problems, metadata={"problems": ("json", s.schema_problems)}),
        CheckReport("unique_trade_id", s.duplicate_keys == 0, metadata={"duplicate_rows": ("int", s.duplicate_keys)}),
        CheckReport("not_null_when_full", not s.nulls_when_full, metadata={"null_counts": ("json", s.nulls_when_full)}),
        # With no sample taken, only a run that wrote no row passes: unsampled rows prove nothing (rows an
        # earlier run wrote were sampled by it).
        CheckReport("no_lookahead", leak.passed if leak else s.rows_written == 0, metadata={
            "sampled_rows": ("int", leak.sampled if leak else 0),
            "mismatched_rows": ("int", leak.mismatched_rows if leak else 0),
            "mismatched_features": ("json", leak.mismatched_features if leak else {}),
            "examples": ("json", leak.examples if leak else []),
        }),
        CheckReport("row_reconciliation", s.reconciles, metadata={
            "silver_trades_of_day": ("int", s.silver_rows),
            "gold_rows": ("int", s.rows),
            "excluded_for_lookback": ("int", s.excluded_lookback),
        }),
        CheckReport("ranges", not s.out_of_range and not s.infinities,
                    metadata={"out_of_range": ("json", s.out_of_range), "non_finite": ("json", s.infinities)}),
        CheckReport("targets_complete", s.rows - s.training_ready == s.expected_without_targets, metadata={
            "rows_without_targets": ("int", s.rows - s.training_ready),
            "expected": ("int", s.expected_without_targets),
            "next_day_trades": ("int", s.next_day_trades),
        }),
    ]
    return metadata, checks
