"""`crypto-pipeline backfill` on the real broker: which products it builds, and what Silver says about
Bronze days it reads that were never built."""

from __future__ import annotations

from datetime import date

from dagster import DagsterInstance

from crypto_assets.contracts.tables import silver_table_def
from crypto_assets.lake import snapshots
from crypto_assets.orchestration.bronze import register_products
from crypto_assets.orchestration.resources.lake import LakeResource
from crypto_assets.tools.backfill import run_backfill
from crypto_assets_tests.support.records import send_records, trades_frame, ts

D = date(2026, 10, 1)


def _silver_rows(s, product: str) -> int:
    table = LakeResource.from_settings(s).table(silver_table_def("trades"))
    return snapshots.read(table, {"product_id": product, "event_date": D}, columns=["trade_id"]).num_rows


def test_backfill_products_and_the_bronze_days_silver_read_that_were_never_built(fresh_settings):
    s = fresh_settings.replace(products=("BTC-USD",))
    send_records(s.kafka_bootstrap, [
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [1, 2], "2026-10-01T10:00:00Z"), ts("2026-10-01T10:00:00.2Z")),
        (s.trades_topic, "ETH-USD", trades_frame("ETH-USD", [7], "2026-10-01T10:00:01Z"), ts("2026-10-01T10:00:01.2Z")),
        # A late BTC-USD trade of D, ingested just after midnight: it sits in Bronze D+1.
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [3], "2026-10-01T23:59:59.9Z"), ts("2026-10-02T00:00:00.3Z")),
    ])
    instance = DagsterInstance.ephemeral()
    register_products(instance, ["BTC-USD"])  # the instance knows only the product of earlier runs

    # No products given: those configured, known and present in the Bronze days read (ETH-USD only there).
    lines: list[str] = []
    runs = run_backfill(s, D, D, None, layers=("bronze", "silver"), instance=instance, echo=lines.append)
    assert all(r.success for r in runs)
    silver = [r for r in runs if r.assets[0].startswith("silver")]
    assert sorted(r.partition for r in silver) == ["2026-10-01|BTC-USD", "2026-10-01|ETH-USD"]
    assert _silver_rows(s, "ETH-USD") == 1 and "ETH-USD" in instance.get_dynamic_partitions("product_id")

    # Bronze D+1 (which holds D's late trade) was never materialized: each Silver run says so, the backfill
    # in one line.
    assert all(sorted(r.missing_bronze_days) == [("silver_ticker", ["2026-10-02"]), ("silver_trades", ["2026-10-02"])]
               for r in silver)
    assert [line for line in lines if "never materialized" in line] == [
        "warning: Silver 2026-10-01|BTC-USD, 2026-10-01|ETH-USD read no Bronze for ingest day(s) 2026-10-02, which "
        "were never materialized: records of those partitions that arrived late on them are missing; backfill "
        "Bronze 2026-10-02 (--layers bronze), then these partitions again"]
    assert _silver_rows(s, "BTC-USD") == 2

    # Once Bronze D+1 exists, Silver D holds the late trade and has nothing to report. Products given:
    # only those are built, and a product Bronze holds besides them is one warning line.
    run_backfill(s, date(2026, 10, 2), date(2026, 10, 2), ["BTC-USD"], layers=("bronze",), instance=instance,
                 echo=lambda _: None)
    lines.clear()
    again = run_backfill(s, D, D, ["BTC-USD"], layers=("silver",), instance=instance, echo=lines.append)
    assert [r.partition for r in again] == ["2026-10-01|BTC-USD"]
    assert again[0].success and again[0].missing_bronze_days == []
    assert _silver_rows(s, "BTC-USD") == 3
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "ETH-USD" in warnings[0] and "--products BTC-USD" in warnings[0], lines
    # That run went on from the partition's state (it read only Bronze D+1's late trade); `full` rebuilds.
    assert again[0].modes == [("silver_ticker", "incremental"), ("silver_trades", "incremental")]
    lines.clear()
    full = run_backfill(s, D, D, ["BTC-USD"], layers=("silver",), instance=instance, echo=lines.append, full=True)
    assert full[0].success and full[0].modes == [("silver_ticker", "full"), ("silver_trades", "full")]
    assert any("rows 3 (full)" in line for line in lines) and _silver_rows(s, "BTC-USD") == 3
