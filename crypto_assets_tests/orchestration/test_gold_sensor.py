"""Silver -> Gold sensor: neighbours requested where in use, nothing twice, nothing after a failed blocking check."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from dagster import DagsterInstance, MetadataValue, MultiPartitionKey, materialize

from crypto_assets.contracts.partitioning import LOOKAHEAD_TRADES, DayHead
from crypto_assets.orchestration.bronze import bronze_assets
from crypto_assets.orchestration.definitions import build_definitions, build_resources
from crypto_assets.orchestration.gold import build_gold_asset
from crypto_assets.orchestration.gold_sensor import _head_moved
from crypto_assets.orchestration.silver import silver_assets
from crypto_assets.tools.inprocess import requested as all_requested
from crypto_assets.tools.inprocess import tick
from crypto_assets_tests.support.records import break_silver_dedup, send_records, trades_frame, ts

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


def requested(result) -> list[tuple[str, str]]:
    """The Gold features requests (the candles this sensor requests too: test_candles_sensor.py)."""
    return [(k, p) for k, p in all_requested(result) if k == "gold_features"]


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


def _trades(n: int, seed: int = 0):
    """n trades in shuffled order: (trade_id, time_us, price); times repeat so trade_id breaks ties."""
    order = np.random.default_rng(seed).permutation(n)
    ids = np.arange(1_000, 1_000 + n, dtype=np.int64)
    return ids[order], (1_700_000_000_000_000 + ids // 2 * 1_000)[order], (95_000.0 + ids * 0.01)[order]


def test_day_head_identifies_the_first_trades_in_the_text_instances_already_store():
    ids, times, prices = _trades(LOOKAHEAD_TRADES + 10)
    head = DayHead.of(ids, times, prices)
    first = np.argsort(ids)[:LOOKAHEAD_TRADES]  # ids grow with time here: the first trades are the lowest ids
    stored = hashlib.sha256(";".join(f"{i}:{t}:{float(p).hex()}" for i, t, p in
                                     zip(ids[first], times[first], prices[first])).encode()).hexdigest()
    assert head.to_metadata() == stored  # the format written before DayHead existed
    assert DayHead.from_metadata(stored) == head and DayHead.from_metadata(head.to_metadata()) == head

    later = ids > ids.min() + LOOKAHEAD_TRADES - 1
    assert DayHead.of(ids, times, np.where(later, prices + 1, prices)) == head  # trades past the head: same
    moved = ids == ids.min() + LOOKAHEAD_TRADES - 1
    assert DayHead.of(ids, times, np.where(moved, prices + 0.01, prices)) != head  # the last one read: moved

    none = DayHead.of(ids[:0], times[:0], prices[:0])
    assert none == DayHead() and none.to_metadata() == "" and DayHead.from_metadata("") == none


@pytest.mark.parametrize("text", [None, "abc", "0" * 63, "0" * 65, "A" * 64, "g" * 64, " " + "0" * 64, 42])
def test_a_missing_or_malformed_day_head_reads_as_none(text):
    assert DayHead.from_metadata(text) is None
    if text is not None:
        with pytest.raises(ValueError, match="day head"):
            DayHead(text)


def test_an_unreadable_head_counts_as_moved():
    def record(**metadata):
        return SimpleNamespace(asset_materialization=SimpleNamespace(
            metadata={k: MetadataValue.text(v) for k, v in metadata.items()}))

    head = DayHead.of(*_trades(3)).to_metadata()
    assert not _head_moved(record(head_fingerprint=head), record(next_day_head=head))
    assert not _head_moved(record(head_fingerprint=""), record(next_day_head=""))  # no trades, read as none
    assert _head_moved(record(head_fingerprint=head), record(next_day_head=""))
    assert _head_moved(record(head_fingerprint=head), None)  # no Gold of the day before yet
    assert _head_moved(record(head_fingerprint="garbled"), record(next_day_head="garbled"))
    assert _head_moved(record(), record(next_day_head=""))  # a Silver materialization without a head
