"""What a Bronze, Silver or Gold materialization reports: metadata, declared checks and their results.

No Dagster here, so the Glue jobs can build the same reports: the local assets turn them into
`MetadataValue`s and `AssetCheckResult`s (`assets/reporting.py`), the Glue jobs send them through
Dagster Pipes (`engines/glue_job.py`), and both engines report the same names, types and values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from crypto_assets.bronze.transforms import TICKER, TRADES
from crypto_assets.contracts.gold_features import FEATURES, TARGETS

if TYPE_CHECKING:
    from crypto_assets.bronze.build import BronzeDayStats
    from crypto_assets.gold.build import GoldStats
    from crypto_assets.silver.build import SilverStats

# name -> (metadata type, value); the types are Dagster Pipes' names ("int", "json", "md", ...).
Metadata = dict[str, tuple[str, object]]

# check name -> (blocking, description): the assets' check specs. The reports below return exactly these
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
GOLD_CHECKS: dict[str, tuple[bool, str]] = {
    "schema_matches_catalog": (True, "Every catalog column is present with its declared type."),
    "unique_trade_id": (True, "One row per (product_id, trade_id)."),
    "not_null_when_full": (True, "Features that cannot be null once the lookback is full are never null."),
    "no_lookahead": (False, "Prefix invariance: sampled rows recomputed from data cut right after the trade match."),
    "row_reconciliation": (False, "Silver trades of the day = Gold rows + rows excluded for lookback."),
    "ranges": (False, "Ratios within their declared bounds, RSI within [0, 100], no infinities."),
}


@dataclass(frozen=True)
class CheckReport:
    """One asset check result: WARN marks a failure worth a look, not a broken partition."""

    name: str
    passed: bool
    severity: Literal["ERROR", "WARN"] = "ERROR"
    metadata: Metadata = field(default_factory=dict)


def preview_markdown(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def bronze_report(stats: BronzeDayStats) -> Metadata:
    """The metadata of a Bronze day (Bronze declares no checks)."""
    return {
        "rows": ("int", stats.rows),
        "malformed_records": ("int", stats.malformed),
        "malformed_by_reason": ("json", stats.malformed_by_reason),
        "kafka_offsets": ("json", {str(p): {"first": lo, "last": hi} for p, (lo, hi) in stats.offsets.items()}),
        "products": ("json", stats.products),
        "files": ("int", stats.files),
        "bytes_written": ("int", stats.bytes_written),
        "path": ("path", stats.path),
        "kafka_records_scanned": ("int", stats.kafka_window_records),
        "rows_added": ("int", stats.new_rows),
        "commit": ("text", stats.commit or ""),
        "writer": ("text", "batch"),
    }


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
        "path": ("path", s.path),
        "quarantine_path": ("path", s.quarantine_path),
        "preview": ("md", preview_markdown(s.preview)),
    }
    if kind == TRADES:
        metadata["head_fingerprint"] = ("text", s.head_fingerprint)
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


def gold_notes(s: GoldStats) -> str:
    """What a reader of a Gold partition should know about its gaps, as a markdown list ("-" when none)."""
    notes = []
    if s.empty_reason:
        notes.append(s.empty_reason)
    if s.rows and s.tickers_in_input == 0:
        notes.append("no Silver tickers for this product: quote features are null; trade features are computed")
    if (s.rows - s.training_ready) and s.rows:
        notes.append("the last trades' targets need the next day's Silver; they fill in when Gold is re-run after it arrives")
    return "\n".join(f"- {n}" for n in notes) or "-"


def gold_report(s: GoldStats) -> tuple[Metadata, list[CheckReport]]:
    """(materialization metadata, check results) of a Gold partition."""
    metadata: Metadata = {
        "rows": ("int", s.rows),
        "training_ready_rows": ("int", s.training_ready),
        "rows_with_unknown_targets": ("int", s.rows - s.training_ready),
        "excluded_for_lookback": ("int", s.excluded_lookback),
        "silver_days_read": ("json", s.silver_days),
        "ticker_days_read": ("json", s.ticker_days),
        "next_day_head": ("text", s.next_day_head),
        "tickers_in_input": ("int", s.tickers_in_input),
        "rows_without_quote": ("int", s.rows_without_quote),
        "min_trade_time": ("text", s.min_trade_time or ""),
        "max_trade_time": ("text", s.max_trade_time or ""),
        "features": ("int", len(FEATURES)),
        "targets": ("int", len(TARGETS)),
        "path": ("path", s.path),
        "preview": ("md", preview_markdown(s.preview)),
        "notes": ("md", gold_notes(s)),
    }
    leak = s.leakage
    checks = [
        CheckReport("schema_matches_catalog", not s.schema_problems, metadata={"problems": ("json", s.schema_problems)}),
        CheckReport("unique_trade_id", s.duplicate_keys == 0, metadata={"duplicate_rows": ("int", s.duplicate_keys)}),
        CheckReport("not_null_when_full", not s.nulls_when_full, metadata={"null_counts": ("json", s.nulls_when_full)}),
        # With no sample taken, only an empty partition passes: unsampled rows prove nothing.
        CheckReport("no_lookahead", leak.passed if leak else s.rows == 0, metadata={
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
    ]
    return metadata, checks
