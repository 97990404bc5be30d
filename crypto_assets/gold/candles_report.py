"""What a candles partition reports: metadata, the declared checks and their results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.contracts.reporting import CheckReport, Metadata, preview_markdown

if TYPE_CHECKING:
    from crypto_assets.gold.candles_build import CandleStats

# The check that reconciles each interval with what it was computed from.
SUMS_CHECK = {"1m": "matches_silver", "1h": "matches_1m"}
_COMMON: dict[str, tuple[bool, str]] = {
    "schema_matches_catalog": (True, "Every column of the table is present with its declared type."),
    "one_row_per_window": (True, "At most one row per window start; every window start is aligned to the interval "
                                 "and inside the partition's day."),
    "ohlc_consistent": (True, "low <= open, close <= high on every row."),
}
# interval -> check name -> (blocking, description), as for Silver and Gold.
CANDLE_CHECKS: dict[str, dict[str, tuple[bool, str]]] = {
    "1m": {**_COMMON, SUMS_CHECK["1m"]: (True, "Trade count, volume, notional and buy/sell volume of the day equal "
                                               "Silver trades' (D, product).")},
    "1h": {**_COMMON, SUMS_CHECK["1h"]: (True, "Trade count, volume, notional and buy/sell volume of the day equal "
                                               "the sums of the 1m candles read.")},
}


def candles_notes(s: CandleStats) -> str:
    notes = []
    if s.empty_reason:
        notes.append(s.empty_reason)
    if s.rows and s.tickers_in_input == 0:
        notes.append("no Silver tickers with a bid and an ask: the quote columns are null")
    notes.append(f"windows without trades have no row ({s.interval} windows with trades: {s.rows})")
    return "\n".join(f"- {n}" for n in notes)


def candles_report(s: CandleStats) -> tuple[Metadata, list[CheckReport]]:
    """(materialization metadata, check results) of a candles partition."""
    metadata: Metadata = {
        "rows": ("int", s.rows),
        "mode": ("text", s.mode),
        "full_rebuild_reason": ("text", s.full_rebuild_reason or ""),
        "recomputed_from": ("text", s.recomputed_from or ""),
        "rows_written": ("int", s.rows_written),
        "input_rows": ("int", s.input_rows),
        "trade_count": ("int", int(s.sums.get("trade_count", 0))),
        "volume": ("float", float(s.sums.get("volume", 0.0))),
        "tickers_in_input": ("int", s.tickers_in_input),
        "windows_without_quote": ("int", s.windows_without_quote),
        "first_window": ("text", s.first_window or ""),
        "last_window": ("text", s.last_window or ""),
        # Snapshot ids as text: they are 63-bit, beyond what the UI shows exactly as numbers.
        "table": ("text", s.table),
        "snapshot_id": ("text", "" if s.snapshot_id is None else str(s.snapshot_id)),
        "upstream_snapshot_ids": ("json", {t: str(i) for t, i in s.upstream_snapshot_ids.items()}),
        "preview": ("md", preview_markdown(s.preview)),
        "notes": ("md", candles_notes(s)),
    }
    checks = [
        CheckReport("schema_matches_catalog", not s.schema_problems, metadata={"problems": ("json", s.schema_problems)}),
        CheckReport("one_row_per_window", s.duplicate_windows == 0 and s.windows_outside_day == 0, metadata={
            "duplicate_windows": ("int", s.duplicate_windows),
            "windows_outside_day": ("int", s.windows_outside_day)}),
        CheckReport("ohlc_consistent", s.ohlc_violations == 0 and not s.schema_problems, metadata={
            "violating_rows": ("int", s.ohlc_violations), "examples": ("json", s.ohlc_examples)}),
        CheckReport(SUMS_CHECK[s.interval], not s.sums_mismatched and not s.schema_problems, metadata={
            "input": ("json", s.input_sums), "written": ("json", s.sums),
            "mismatched": ("json", s.sums_mismatched)}),
    ]
    return metadata, checks
