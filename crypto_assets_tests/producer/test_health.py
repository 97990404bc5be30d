"""The gap tracker: sequence_num gaps per connection, trade_id gaps per product, snapshot overlap."""

from __future__ import annotations

import json

from crypto_assets_tests.support.records import ticker_frame, trades_frame
from producer.health import FeedHealth

WHEN = "2026-11-24T23:50:00.123456789Z"


def trades(product, ids, seq, event_type="update"):
    return json.loads(trades_frame(product, ids, WHEN, seq=seq, event_type=event_type))


def heartbeat(seq, counter):
    return {"channel": "heartbeats", "client_id": "", "timestamp": WHEN, "sequence_num": seq,
            "events": [{"current_time": "2026-11-24 23:50:00 +0000 UTC m=+1.0", "heartbeat_counter": counter}]}


def test_sequence_numbers_one_counter_across_channels():
    h = FeedHealth()
    h.start_connection("c1")
    msgs = [heartbeat(0, 5), trades("BTC-USD", [10], 1), json.loads(ticker_frame("BTC-USD", WHEN, seq=2)),
            heartbeat(3, 6)]
    assert [g for m in msgs for g in h.observe(m)] == []
    gaps = h.observe(trades("BTC-USD", [11], 7))  # 4, 5, 6 never arrived
    assert [(g.kind, g.first_missing, g.last_missing, g.size, g.connection_id) for g in gaps] == [
        ("sequence", 4, 6, 3, "c1")]
    assert "4..6 missing (3 messages lost)" in gaps[0].describe()
    assert h.observe(heartbeat(8, 7)) == ()
    assert (h.sequence_gaps, h.sequence_missing) == (1, 3)


def test_a_new_connection_starts_its_own_sequence():
    h = FeedHealth()
    h.start_connection("c1")
    for seq in range(5):
        h.observe(heartbeat(seq, seq))
    h.start_connection("c2")
    assert h.observe(heartbeat(0, 10)) == ()  # not a regression, not a gap: a new counter
    assert h.observe(heartbeat(1, 11)) == ()
    assert (h.sequence_gaps, h.sequence_out_of_order) == (0, 0)


def test_repeated_or_older_sequence_number_is_out_of_order_not_gap():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(heartbeat(0, 1))
    h.observe(heartbeat(1, 2))
    assert h.observe(heartbeat(1, 2)) == ()
    assert (h.sequence_gaps, h.sequence_out_of_order) == (0, 1)


def test_trade_ids_newest_first_within_a_message_are_not_gaps():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100], 0))
    msg = trades("BTC-USD", [101, 102, 103, 104], 1)
    assert [t["trade_id"] for t in msg["events"][0]["trades"]] == ["104", "103", "102", "101"]  # as on the wire
    assert h.observe(msg) == ()
    assert h.last_trade_id["BTC-USD"] == 104


def test_trade_id_gap_counted_with_its_size_per_product():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100, 101], 0))
    h.observe(trades("ETH-USD", [7000], 1))
    gaps = h.observe(trades("BTC-USD", [105, 106], 2))
    assert [(g.kind, g.product_id, g.first_missing, g.last_missing, g.size) for g in gaps] == [
        ("trade_id", "BTC-USD", 102, 104, 3)]
    assert "trade_id gap BTC-USD: 102..104 missing (3 trades lost" in gaps[0].describe()
    gaps = h.observe(trades("ETH-USD", [7002], 3))
    assert [(g.product_id, g.size) for g in gaps] == [("ETH-USD", 1)]
    assert dict(h.trade_id_gaps) == {"BTC-USD": 1, "ETH-USD": 1}
    assert dict(h.trades_missing) == {"BTC-USD": 3, "ETH-USD": 1}
    assert (h.trade_id_gap_count, h.trades_missing_count) == (2, 4)


def test_gap_inside_one_message_is_found():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100], 0))
    gaps = h.observe(trades("BTC-USD", [104, 101], 1))
    assert [(g.first_missing, g.last_missing) for g in gaps] == [(102, 103)]


def test_snapshot_after_reconnect_overlapping_seen_trades_is_not_a_gap():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", list(range(100, 151)), 0, "snapshot"))
    h.observe(trades("BTC-USD", [151, 152], 5))
    h.start_connection("c2")
    # The reconnect's snapshot repeats the latest 50 trades and adds 153, 154 that happened meanwhile.
    gaps = h.observe(trades("BTC-USD", list(range(105, 155)), 0, "snapshot"))
    assert gaps == ()
    assert h.snapshot_overlap["BTC-USD"] == 48  # 105..152 seen before
    assert h.trade_id_gap_count == 0 and h.snapshots["market_trades"] == 2
    assert h.observe(trades("BTC-USD", [155], 1)) == ()


def test_snapshot_that_does_not_reach_back_far_enough_reveals_the_lost_trades():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100, 101], 0))
    h.start_connection("c2")
    gaps = h.observe(trades("BTC-USD", list(range(160, 210)), 0, "snapshot"))
    assert [(g.first_missing, g.last_missing, g.size) for g in gaps] == [(102, 159, 58)]
    assert h.snapshot_overlap["BTC-USD"] == 0


def test_multi_product_message_checks_each_product():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100], 0))
    h.observe(trades("ETH-USD", [500], 1))
    msg = trades("BTC-USD", [101], 2)
    eth = dict(msg["events"][0]["trades"][0], product_id="ETH-USD", trade_id="503")
    msg["events"][0]["trades"].insert(0, eth)
    gaps = h.observe(msg)
    assert [(g.product_id, g.first_missing, g.last_missing) for g in gaps] == [("ETH-USD", 501, 502)]


def test_heartbeat_counter_number_or_string_and_bad_trade_ids_counted():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(heartbeat(0, "3049"))
    assert h.last_heartbeat_counter == 3049
    h.observe(heartbeat(1, 3050))
    assert h.last_heartbeat_counter == 3050 and h.heartbeats == 2
    msg = trades("BTC-USD", [1], 2)
    msg["events"][0]["trades"][0]["trade_id"] = "abc"
    assert h.observe(msg) == ()
    assert h.bad_trade_ids == 1


def test_subscription_acks_tell_what_is_missing():
    h = FeedHealth()
    h.start_connection("c1")
    wanted = {"market_trades": ["BTC-USD", "ETH-USD"], "ticker": ["BTC-USD", "ETH-USD"], "heartbeats": []}
    h.observe({"channel": "subscriptions", "sequence_num": 0,
               "events": [{"subscriptions": {"market_trades": ["BTC-USD"]}}]})
    assert h.missing_subscriptions(wanted) == {"market_trades": ["ETH-USD"], "ticker": ["BTC-USD", "ETH-USD"],
                                                "heartbeats": []}
    h.observe({"channel": "subscriptions", "sequence_num": 1, "events": [{"subscriptions": {
        "heartbeats": ["heartbeats"], "market_trades": ["BTC-USD", "ETH-USD"], "ticker": ["BTC-USD", "ETH-USD"]}}]})
    assert h.missing_subscriptions(wanted) == {}


def test_trades_delivered_later_by_a_snapshot_are_recovered_not_missing():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100], 0))
    h.observe(trades("BTC-USD", [104], 1))  # 101..103 missing
    h.start_connection("c2")
    gaps = h.observe(trades("BTC-USD", list(range(102, 107)), 0, "snapshot"))
    assert gaps == ()
    assert h.trades_missing["BTC-USD"] == 3 and h.trades_recovered["BTC-USD"] == 2  # 102, 103
    assert h.trades_still_missing == {"BTC-USD": 1}  # 101 never came
    assert h.snapshot_overlap["BTC-USD"] == 1  # 104 was already there


def test_dead_letters_count_for_the_sequence_only():
    h = FeedHealth()
    h.start_connection("c1")
    h.observe(trades("BTC-USD", [100], 0))
    l2 = {"channel": "l2_data", "timestamp": WHEN, "sequence_num": 1, "events": []}
    assert h.observe_sequence(l2) == ()
    rejected = trades("BTC-USD", [900], 2)  # a market_trades frame the router dead-lettered
    assert h.observe_sequence(rejected) == ()
    assert h.observe_sequence({"type": "error", "message": "authentication failure"}) == ()  # no number
    gaps = h.observe(trades("BTC-USD", [101], 4))
    assert [(g.first_missing, g.last_missing) for g in gaps] == [(3, 3)]
    assert h.last_trade_id == {"BTC-USD": 101} and h.trade_id_gap_count == 0  # trade 900 not tracked
