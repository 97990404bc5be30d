"""Silver -> Gold sensor: neighbours requested where in use, nothing twice, nothing after a failed blocking check."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize

from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_definitions, build_resources
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets.tools.inprocess import requested, tick
from crypto_assets_tests.helpers import break_silver_dedup, send_records, trades_frame, ts

D1, D2 = "2026-08-01", "2026-08-02"


@pytest.fixture
def landed(fresh_settings):
    s = fresh_settings
    send_records(s.kafka_bootstrap, [
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [1, 2], f"{D1}T10:00:00Z"), ts(f"{D1}T10:00:00.5Z")),
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [3], f"{D2}T10:00:00Z"), ts(f"{D2}T10:00:00.5Z")),
        (s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [3], f"{D2}T10:00:00Z", event_type="snapshot"),
         ts(f"{D2}T10:05:00Z")),  # a duplicate: only a broken dedup lets it through
    ])
    instance = DagsterInstance.ephemeral()
    for day in (D1, D2):
        assert materialize(bronze_assets(s), partition_key=day, resources=build_resources(s), instance=instance).success
    return s, instance


def _run(settings, instance, assets, day, raise_on_error=True):
    return materialize(assets, partition_key=MultiPartitionKey({"event_date": day, "product_id": "BTC-USD"}),
                       resources=build_resources(settings), instance=instance, raise_on_error=raise_on_error)


def _sensor(settings):
    return build_definitions(settings).resolve_sensor_def("silver_to_gold")


def test_gold_follows_silver_with_the_neighbours_in_use(landed):
    s, instance = landed
    trades = silver_assets(s)[:1]
    _run(s, instance, trades, D1)
    _run(s, instance, trades, D2)
    first = tick(_sensor(s), s, instance, None)
    # D1 changed: Gold D1 (D0 has no Silver). D2 changed: Gold D1 (targets) and D2. Gold D3 was never built.
    assert requested(first) == [("gold_features", f"{D1}|BTC-USD"), ("gold_features", f"{D2}|BTC-USD")]
    assert requested(tick(_sensor(s), s, instance, first.cursor)) == []

    # Once Gold D2 exists, a change to Silver D1 also refreshes Gold D2 (its lookback reads D1).
    _run(s, instance, [build_gold_asset(s)], D2)
    _run(s, instance, trades, D1)
    assert requested(tick(_sensor(s), s, instance, first.cursor)) == [
        ("gold_features", f"{D1}|BTC-USD"), ("gold_features", f"{D2}|BTC-USD")]


def test_failed_blocking_check_requests_no_gold(landed, monkeypatch):
    s, instance = landed
    break_silver_dedup(monkeypatch)
    result = _run(s, instance, silver_assets(s)[:1], D2, raise_on_error=False)
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()}["unique_trade_id"] is False
    assert requested(tick(_sensor(s), s, instance, None)) == []

    monkeypatch.undo()
    _run(s, instance, silver_assets(s)[:1], D2)  # fixed: the next materialization passes and Gold follows
    assert requested(tick(_sensor(s), s, instance, None)) == [("gold_features", f"{D2}|BTC-USD")]


def test_gold_that_already_read_the_silver_change_is_not_requested_again(landed):
    """The Bronze sensor's runs carry Gold D after Silver D; the neighbours are still this sensor's."""
    s, instance = landed
    trades, gold = silver_assets(s)[:1], build_gold_asset(s)
    _run(s, instance, [*trades, gold], D1)  # Silver then Gold in one run
    assert requested(tick(_sensor(s), s, instance, None)) == []

    _run(s, instance, [*trades, gold], D2)
    # Gold D2 read Silver D2 in its run; Gold D1 was built before Silver D2 existed: its targets need it.
    assert requested(tick(_sensor(s), s, instance, None)) == [("gold_features", f"{D1}|BTC-USD")]

    # A Gold run started after the Silver change (here: by hand) read it too.
    _run(s, instance, [gold], D1)
    assert requested(tick(_sensor(s), s, instance, None)) == []


def test_the_day_before_is_recomputed_only_when_the_first_trades_of_the_day_change(landed):
    """Gold D-1's targets read only the first 50 trades of D: other changes to D leave it alone."""
    s, instance = landed
    trades, ticker, gold = silver_assets(s)[0], silver_assets(s)[1], build_gold_asset(s)
    for day in (D1, D2):
        _run(s, instance, [trades, ticker, gold], day)
    cursor = tick(_sensor(s), s, instance, None)
    assert requested(cursor) == [("gold_features", f"{D1}|BTC-USD")]  # D2's first trades are new to Gold D1
    _run(s, instance, [gold], D1)
    cursor = tick(_sensor(s), s, instance, cursor.cursor)

    # Silver D2 again with the same trades, and a ticker change: Gold D2 follows, Gold D1 does not.
    _run(s, instance, [trades], D2)
    _run(s, instance, [ticker], D2)
    after_same = tick(_sensor(s), s, instance, cursor.cursor)
    assert requested(after_same) == [("gold_features", f"{D2}|BTC-USD")]

    # A trade lands early in D2 (late data): its first trades moved, so Gold D1 is wanted again.
    send_records(s.kafka_bootstrap, [(s.trades_topic, "BTC-USD", trades_frame("BTC-USD", [4], f"{D2}T00:00:01Z"),
                                      ts(f"{D2}T00:00:01.5Z"))])
    assert materialize(bronze_assets(s), partition_key=D2, resources=build_resources(s), instance=instance).success
    _run(s, instance, [trades], D2)
    assert requested(tick(_sensor(s), s, instance, after_same.cursor)) == [
        ("gold_features", f"{D1}|BTC-USD"), ("gold_features", f"{D2}|BTC-USD")]
