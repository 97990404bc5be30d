"""Kafka goes away and comes back while the feed keeps streaming: buffered, delivered, or lost and reported.

Runs its own broker (own ports, own state folder) so stopping it leaves the session broker alone.
Two producers stream through the same outage: one whose buffer bound is large enough (nothing
may be lost) and one with a tiny bound (the loss must be exactly what the log reports).
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from crypto_assets.contracts.settings import Settings
from crypto_assets.tools.broker import LocalBroker
from crypto_assets_tests.conftest import REPO, free_port
from crypto_assets_tests.support.fake_exchange import FakeCoinbase, Market
from crypto_assets_tests.support.live_producer import (
    LiveRun,
    by_key,
    consume_all,
    expected_records,
    fast_options,
)


@pytest.fixture
def private_broker(base_settings, kafka_broker, tmp_path):
    kafka_port = free_port()
    controller_port = free_port()
    while controller_port == kafka_port:
        controller_port = free_port()
    settings = Settings.from_env(
        environ={}, home=str(REPO), state_dir=str(tmp_path / "state"), jvm_dir=base_settings.jvm_dir,
        kafka_port=kafka_port, kafka_controller_port=controller_port, kafka_partitions=2,
    )
    broker = LocalBroker(settings)
    broker.up()
    yield settings, broker
    broker.down()


def _delivered(run: LiveRun, server: FakeCoinbase):
    def done():
        stats = run.pipeline.sink.stats
        sent = sum(len(c.sent) for c in server.connections)
        return server.exhausted.is_set() and run.pipeline.frames >= sent and stats.in_flight == 0
    return done


def test_broker_outage_within_the_bound_loses_nothing_beyond_it_reports_exactly(private_broker, caplog):
    settings, broker = private_broker
    small = settings.replace(trades_topic="small.trades", ticker_topic="small.ticker",
                                deadletter_topic="small.dead")
    LocalBroker(small).ensure_topics()
    bound = 100
    # Markets long enough to outlast a slow broker stop and start; ended once the broker is back.
    market_a, market_b = Market(duration_s=600, seed=21), Market(duration_s=600, seed=22)
    with FakeCoinbase(market_a, rate=250) as server_a, FakeCoinbase(market_b, rate=250) as server_b, \
            caplog.at_level(logging.WARNING, logger="producer.kafka_sink"):
        roomy = LiveRun(settings, fast_options(server_a.url, buffer_records=100_000))
        tight = LiveRun(small, fast_options(server_b.url, buffer_records=bound))
        roomy.wait_for(lambda: roomy.pipeline.sink.stats.acked >= 100, what="first records acknowledged")
        tight.wait_for(lambda: tight.pipeline.sink.stats.acked >= 100, what="first records acknowledged")

        broker.down()
        acked_at_down = roomy.pipeline.sink.stats.acked
        # While the broker is away, the feed goes on: records wait in memory ...
        roomy.wait_for(lambda: roomy.pipeline.sink.stats.in_flight >= 300, what="records buffered during the outage")
        # ... up to the bound; beyond it they are lost, and counted.
        tight.wait_for(lambda: tight.pipeline.sink.stats.dropped >= 100, what="records dropped at the bound")
        assert roomy.pipeline.sink.stats.acked - acked_at_down < 50  # nothing acknowledged by a stopped broker
        assert tight.pipeline.sink.stats.in_flight == bound
        # The outage lasts until the roomy producer has said so (a broker that stops and starts
        # faster than the stall warning would leave nothing to say "acknowledges again" about).
        roomy.wait_for(lambda: roomy.pipeline.sink.stalled, timeout_s=30, what="the stall warning")
        assert "has not acknowledged anything" in caplog.text
        broker.up()
        roomy.wait_for(lambda: not roomy.pipeline.sink.stalled, timeout_s=60, what="delivery resumed")
        market_a.end_now()
        market_b.end_now()

        roomy.wait_for(_delivered(roomy, server_a), timeout_s=60, what="the buffer drained after the restart")
        tight.wait_for(_delivered(tight, server_b), timeout_s=60, what="the buffer drained after the restart")
        roomy_p = roomy.stop()
        tight_p = tight.stop()

    # The roomy producer lost nothing: Kafka holds every message the server sent.
    assert roomy_p.sink.stats.lost == 0
    data = consume_all(settings.kafka_bootstrap, [settings.trades_topic, settings.ticker_topic])
    sent = [(m, t) for _, m, t in server_a.sent_data_messages()]
    assert by_key(data) == expected_records(sent, settings.trades_topic, settings.ticker_topic)
    assert "acknowledges again" in caplog.text

    # The tight one lost exactly what it reported: count, topics and products, trade_id ranges.
    stats = tight_p.sink.stats
    assert stats.dropped >= 100 and stats.failed == 0
    expected = expected_records([(m, t) for _, m, t in server_b.sent_data_messages()],
                                small.trades_topic, small.ticker_topic)
    got = by_key(consume_all(small.kafka_bootstrap, [small.trades_topic, small.ticker_topic]))
    missing: dict[tuple[str, bytes], list[bytes]] = {}
    for key, values in expected.items():
        have = got.get(key, [])
        assert all(v in values for v in have)
        missing[key] = [v for v in values if v not in have]
        assert have == [v for v in values if v in have]  # what arrived kept its order
    assert sum(map(len, missing.values())) == stats.dropped == tight_p.sink.losses.by_reason["buffer_full"]

    # Each loss episode is reported when it ends (a loaded machine can also fill so small a buffer
    # before the outage): together the reports account for every missing record, key and trade.
    reports = [r.message for r in caplog.records if r.message.startswith("LOST")]
    assert reports
    reported_records: dict[str, int] = {}
    reported_ranges: dict[str, list[tuple[int, int]]] = {}
    total = 0
    for report in reports:
        m = re.match(r"LOST ([\d,]+) Kafka records \(buffer_full ([\d,]+)\)", report)
        assert m and m.group(1) == m.group(2), report
        total += int(m.group(1).replace(",", ""))
        for key, n, lo, hi in re.findall(r"(\S+ \S+): ([\d,]+) records(?:, [\d,]+ trades, trade_id (\d+)\.\.(\d+))?", report):
            reported_records[key] = reported_records.get(key, 0) + int(n.replace(",", ""))
            if lo:
                reported_ranges.setdefault(key, []).append((int(lo), int(hi)))
        assert re.search(r"sequence_num \d+\.\.\d+ on connection ", report)
    assert total == stats.dropped
    assert reported_records == {f"{t} {k.decode()}": len(v) for (t, k), v in missing.items() if v}
    for (topic, key), values in missing.items():
        if topic != small.trades_topic or not values:
            continue
        lost_ids = {int(t["trade_id"]) for v in values for e in json.loads(v)["events"] for t in e["trades"]}
        ranges = reported_ranges[f"{topic} {key.decode()}"]
        assert all(any(lo <= tid <= hi for lo, hi in ranges) for tid in lost_ids)
        assert all(lo in lost_ids and hi in lost_ids for lo, hi in ranges)  # ranges are exact, not padded
