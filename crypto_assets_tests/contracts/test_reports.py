"""One report, two engines: what the local assets return and what a Glue job sends through Dagster Pipes,
decoded by Dagster's own Pipes message handler, are the same metadata and check results (no Spark needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from dagster import AssetCheckResult, AssetKey, MaterializeResult, PipesMessageHandler

from crypto_assets.bronze.build import BronzeDayStats
from crypto_assets.bronze.report import bronze_report
from crypto_assets.glue_jobs import jobs as glue_job
from crypto_assets.gold.build import GoldStats
from crypto_assets.gold.checks import LeakageResult
from crypto_assets.gold.report import GOLD_CHECKS, gold_report
from crypto_assets.orchestration.reporting import check_results, metadata_values
from crypto_assets.silver.build import SilverStats
from crypto_assets.silver.report import SILVER_CHECKS, silver_report

D = "2026-04-01"

# What the UI, the sensors and the engine tests read: a rename or a new severity shows up here in review.
SILVER_METADATA = ["rows", "duplicates_removed", "conflicting_duplicates", "quarantined", "quarantined_by_reason",
                   "bronze_items_in_window", "items_of_other_partitions", "bronze_days_read", "min_event_time",
                   "max_event_time", "table", "snapshot_id", "quarantine_table", "quarantine_snapshot_id",
                   "bronze_snapshot_id", "mode", "full_rebuild_reason", "bronze_snapshot_read_from", "bronze_rows_new",
                   "rows_appended", "quarantine_rows_appended", "partition_replaced", "preview"]
SILVER_TRADES_METADATA = SILVER_METADATA + ["head_fingerprint"]  # what the day before's Gold compares
GOLD_METADATA = ["rows", "mode", "full_rebuild_reason", "progress", "silver_snapshots_read_from", "silver_trades_read",
                 "recomputed_from", "rows_written", "rows_replaced", "training_ready_rows", "rows_with_unknown_targets", "excluded_for_lookback",
                 "silver_days_read", "ticker_days_read", "next_day_head", "tickers_in_input", "rows_without_quote", "min_trade_time",
                 "max_trade_time", "features", "targets", "table", "snapshot_id", "silver_snapshot_ids", "preview",
                 "notes"]
BRONZE_METADATA = ["rows", "malformed_records", "malformed_by_reason", "kafka_offsets", "products", "files",
                   "bytes_written", "table", "path", "kafka_records_scanned", "rows_added", "snapshot_id", "writer"]
SEVERITIES = {
    "silver_trades": {"keys_not_null": "ERROR", "reconciliation": "ERROR", "unique_trade_id": "ERROR",
                      "price_size_positive": "ERROR", "trade_id_gaps": "WARN"},
    "silver_ticker": {"keys_not_null": "ERROR", "reconciliation": "ERROR", "unique_ticker_content": "ERROR",
                      "price_positive": "ERROR", "quotes_not_crossed": "WARN"},
    "gold_features": {"schema_matches_catalog": "ERROR", "unique_trade_id": "ERROR", "not_null_when_full": "ERROR",
                      "no_lookahead": "ERROR", "row_reconciliation": "ERROR", "ranges": "ERROR",
                      "targets_complete": "ERROR"},
}


class RecordingPipes:
    """Stands in for the Glue job's PipesContext: keeps the messages it would send, as Dagster receives them."""

    def __init__(self):
        self.messages = []

    def report_asset_materialization(self, metadata, asset_key, data_version=None):
        self.messages.append({"method": "report_asset_materialization",
                              "params": {"asset_key": asset_key, "metadata": metadata, "data_version": data_version}})

    def report_asset_check(self, check_name, passed, severity, metadata, asset_key):
        self.messages.append({"method": "report_asset_check", "params": {
            "asset_key": asset_key, "check_name": check_name, "passed": passed, "severity": severity,
            "metadata": metadata}})


def _through_pipes(asset_key: str, metadata, checks) -> tuple[MaterializeResult, list[AssetCheckResult]]:
    pipes = RecordingPipes()
    glue_job._report(pipes, asset_key, metadata, checks)
    handler = PipesMessageHandler(None, SimpleNamespace(expected_writer_count=1))
    for message in pipes.messages:
        handler.handle_message(message)
    materialization, *check_evaluations = handler.get_reported_results()
    return materialization, check_evaluations


def _typed(metadata) -> dict:
    # MetadataValues compare equal across types (text "x" == md "x"), so the type is compared too.
    return {name: (type(value).__name__, value.value) for name, value in metadata.items()}


def _same_on_both_engines(asset_key: str, metadata, checks) -> dict[str, str]:
    """Asserts both conversions agree; returns check name -> severity."""
    key = AssetKey(asset_key)
    materialization, glue_checks = _through_pipes(asset_key, metadata, checks)
    local_metadata = _typed(metadata_values(metadata))
    assert materialization.asset_key == key
    assert list(materialization.metadata) == list(local_metadata)
    for name, value in _typed(materialization.metadata).items():
        assert value == local_metadata[name], name
    local_checks = check_results(key, checks)
    assert [(c.check_name, c.passed, c.severity) for c in glue_checks] == [
        (c.check_name, c.passed, c.severity) for c in local_checks]
    for glue, local in zip(glue_checks, local_checks):
        assert glue.asset_key == local.asset_key == key
        assert _typed(glue.metadata) == _typed(local.metadata), glue.check_name
    return {c.check_name: c.severity.value for c in local_checks}


def _silver_stats(kind: str) -> SilverStats:
    trades = kind == "trades"
    return SilverStats(
        kind=kind, product_id="BTC-USD", day=D, table=f"silver.{kind}", quarantine_table=f"quarantine.{kind}",
        # 63-bit snapshot ids (beyond a double's exact integers); the quarantine had nothing to commit.
        bronze_snapshot_id=9_007_199_254_740_993, snapshot_id=4_611_686_018_427_387_905, quarantine_snapshot_id=None,
        bronze_days=["2026-03-31", D, "2026-04-02"], window_items=10, rows=6, duplicates=2,
        conflicting_duplicates=1, quarantined=1, quarantined_by_reason={"non_positive_price": 1}, other_partitions=1,
        min_event_time=f"{D}T00:00:01+00:00", max_event_time=None, duplicate_keys=1,
        null_keys={"product_id": 0, "price": 2}, non_positive={"price": 0, "size": 1} if trades else {"price": 0},
        crossed_quotes=0 if trades else 3,
        trade_id_gaps={"first_trade_id": 1, "last_trade_id": 9, "missing_trade_ids": 3,
                       "largest_gaps": [{"after_trade_id": 4, "missing": 2}]} if trades else {},
        preview=[{"trade_id": 1, "price": 100.5, "side": "BUY"}, {"trade_id": 2, "price": 101.0, "side": "SELL"}],
    )


@pytest.mark.parametrize("kind", ["trades", "ticker"])
def test_silver_reports_the_same_on_both_engines(kind):
    metadata, checks = silver_report(kind, _silver_stats(kind))
    assert list(metadata) == (SILVER_TRADES_METADATA if kind == "trades" else SILVER_METADATA)
    assert metadata["table"] == ("text", f"silver.{kind}")
    assert metadata["snapshot_id"] == ("text", "4611686018427387905") and metadata["quarantine_snapshot_id"] == ("text", "")
    assert [c.name for c in checks] and {c.name for c in checks} == set(SILVER_CHECKS[kind])
    assert _same_on_both_engines(f"silver_{kind}", metadata, checks) == SEVERITIES[f"silver_{kind}"]
    passed = {c.name: c.passed for c in checks}
    assert not passed["keys_not_null"] and passed["reconciliation"]
    if kind == "trades":
        assert passed == {**passed, "unique_trade_id": False, "price_size_positive": False, "trade_id_gaps": False}
    else:
        assert passed == {**passed, "unique_ticker_content": False, "price_positive": True, "quotes_not_crossed": False}


def _gold_stats(**changes) -> GoldStats:
    s = GoldStats(
        product_id="BTC-USD", day=D, table="gold.features", snapshot_id=4_611_686_018_427_387_907,
        silver_snapshot_ids={"silver.trades": 4_611_686_018_427_387_905, "silver.ticker": 9_007_199_254_740_993},
        silver_days=["2026-03-31", D], ticker_days=[D], silver_rows=700, excluded_lookback=100, rows=600,
        rows_written=600, next_day_trades=40,
        training_ready=590, tickers_in_input=0, rows_without_quote=600, min_trade_time=f"{D}T00:00:00+00:00",
        max_trade_time=f"{D}T23:59:59+00:00", schema_problems=["rsi_14: expected double, found int64"],
        nulls_when_full={}, out_of_range={"rsi_14": 2}, infinities={},
        leakage=LeakageResult(sampled=16, mismatched_rows=1, mismatched_features={"ret_1": 1},
                              examples=[{"trade_id": 42, "ret_1": {"written": np.float64(0.5), "prefix": 0.25}}]),
        preview=[{"trade_id": 42, "ret_1": 0.5}],
    )
    for name, value in changes.items():
        setattr(s, name, value)
    return s


@pytest.mark.parametrize("stats", [
    _gold_stats(),
    _gold_stats(rows=0, rows_written=0, training_ready=0, silver_rows=0, excluded_lookback=0, leakage=None,
                schema_problems=[],
                out_of_range={}, empty_reason=f"Silver trades BTC-USD {D} is missing or empty: nothing to compute"),
], ids=["with_rows", "empty"])
def test_gold_reports_the_same_on_both_engines(stats):
    metadata, checks = gold_report(stats)
    assert list(metadata) == GOLD_METADATA
    assert metadata["silver_snapshot_ids"] == ("json", {"silver.trades": "4611686018427387905",
                                                        "silver.ticker": "9007199254740993"})
    assert [c.name for c in checks] == list(GOLD_CHECKS)
    assert _same_on_both_engines("gold_features", metadata, checks) == SEVERITIES["gold_features"]
    passed = {c.name: c.passed for c in checks}
    if stats.rows:
        assert metadata["notes"] == ("md", "- no Silver tickers for this product: quote features are null; trade "
                                           "features are computed\n- the last trades' targets need the next day's "
                                           "Silver; they fill in when Gold is re-run after it arrives")
        assert passed == {"schema_matches_catalog": False, "unique_trade_id": True, "not_null_when_full": True,
                          "no_lookahead": False, "row_reconciliation": True, "ranges": False, "targets_complete": True}
    else:
        assert metadata["notes"] == ("md", f"- {stats.empty_reason}")
        assert all(passed.values()), passed


def test_bronze_reports_the_same_on_both_engines():
    stats = BronzeDayStats(kind="trades", day=D, table="bronze.kafka_trades",
                           path=f"/lake/bronze/kafka_trades/data/ingest_date={D}", rows=5,
                           malformed=1, malformed_by_reason={"invalid_json": 1}, offsets={0: (3, 7)},
                           products=["BTC-USD"], files=1, bytes_written=2048, kafka_window_records=6, new_rows=5,
                           snapshot_id=4_611_686_018_427_387_905)
    metadata = bronze_report(stats)
    assert list(metadata) == BRONZE_METADATA
    assert metadata["table"] == ("text", "bronze.kafka_trades")
    assert metadata["snapshot_id"] == ("text", "4611686018427387905")  # exact: text, not a number
    assert _same_on_both_engines("bronze_trades", metadata, []) == {}
