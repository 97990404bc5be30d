"""The pipeline's accounting: sequence numbers of every frame, empty snapshots as health, rate-limited logs."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from crypto_assets_tests.support.fake_sinks import RecordingSink, parse_exposition
from crypto_assets_tests.support.records import ticker_frame, trades_frame
from producer.metrics import render
from producer.pipeline import FeedPipeline, LogLimiter
from producer.run import TimedFrame, publish_frames

SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "samples_advanced_trade.ndjson"
LINES = SAMPLES.read_text().splitlines()
L2_192 = LINES[31]  # the live l2_data frame with sequence_num 192, between market_trades 191 and 193
WHEN = "2026-07-15T03:40:11.5Z"


def _l2(seq: int) -> str:
    msg = json.loads(L2_192)
    msg["sequence_num"] = seq
    return json.dumps(msg, separators=(",", ":"))


def _empty_snapshot(channel: str, seq: int) -> str:
    items = "trades" if channel == "market_trades" else "tickers"
    return json.dumps({"channel": channel, "client_id": "", "timestamp": WHEN, "sequence_num": seq,
                       "events": [{"type": "snapshot", items: []}]}, separators=(",", ":"))


def _feed(frames, pipeline=None) -> FeedPipeline:
    pipeline = pipeline or FeedPipeline("trades", "ticker", "dead", RecordingSink(), "coinbase")
    for i, frame in enumerate(frames):
        pipeline.handle(frame, (1_784_086_811_000 + i) * 1_000_000, "conn-1")
    return pipeline


def test_dead_lettered_frames_count_for_the_sequence():
    # The live capture's own order: trades 191, l2_data 192, trades 193. Then an l2 frame with
    # seq 195 and a frame the router rejects (no product_id) with seq 196, then trades 198:
    # only 194 and 197 never arrived.
    no_product = json.dumps({"channel": "market_trades", "timestamp": WHEN, "sequence_num": 196,
                             "events": [{"type": "update", "trades": [{"trade_id": "1"}]}]})
    p = _feed([LINES[28], L2_192, LINES[29], _l2(195), no_product,
               trades_frame("BTC-USD", [1056309470], WHEN, seq=198)])
    h = p.health
    assert (h.sequence_gaps, h.sequence_missing) == (2, 2)
    assert dict(p.deadletters) == {"unknown_channel": 2, "missing_product_id": 1}
    # trade_id tracking stays on published data: the rejected frame's trade "1" did not count.
    assert h.last_trade_id == {"BTC-USD": 1056309470} and h.trade_id_gap_count == 0


def test_a_dead_letter_first_sets_the_baseline():
    p = _feed([_l2(40), _l2(41), trades_frame("BTC-USD", [7], WHEN, seq=42)])
    assert (p.health.sequence_gaps, p.health.sequence_missing) == (0, 0)
    p = _feed([_l2(40), trades_frame("BTC-USD", [7], WHEN, seq=43)])
    assert (p.health.sequence_gaps, p.health.sequence_missing) == (1, 2)


def test_empty_snapshots_are_health_frames_counted_not_dead_letters():
    frames = [_empty_snapshot("market_trades", 0), _empty_snapshot("ticker", 1),
              trades_frame("BTC-USD", [100], WHEN, seq=2), ticker_frame("BTC-USD", WHEN, seq=3)]
    p = _feed(frames)
    assert dict(p.deadletters) == {}
    assert [r.topic for r in p.sink.records] == ["trades", "ticker"]
    assert p.messages["empty_snapshots"] == 2 and p.by_kind["empty_snapshot"] == 2
    assert (p.health.sequence_gaps, p.health.sequence_missing) == (0, 0)
    assert dict(p.health.snapshots) == {"market_trades": 1, "ticker": 1}
    assert "empty_snapshots=2" in p.status_line()
    assert "empty_snapshots 2" in p.summary_line(1.0) and "dead letters 0" in p.summary_line(1.0)
    metrics = parse_exposition(render(p.metric_families()))
    assert metrics[("crypto_producer_messages_total",
                    frozenset({("source", "coinbase"), ("channel", "empty_snapshots")}))] == 2
    assert not [k for k in metrics if k[0] == "crypto_producer_deadletters_total"]


def test_an_empty_update_is_still_a_dead_letter_and_its_sequence_counts():
    empty_update = json.dumps({"channel": "market_trades", "timestamp": WHEN, "sequence_num": 1,
                               "events": [{"type": "update", "trades": []}]})
    p = _feed([trades_frame("BTC-USD", [100], WHEN, seq=0), empty_update, trades_frame("BTC-USD", [101], WHEN, seq=2)])
    assert dict(p.deadletters) == {"no_trades": 1}
    assert p.health.sequence_gaps == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _suppressed(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "suppressed" in r.getMessage()]


def test_suppressed_lines_are_reported_when_the_window_ends(caplog):
    clock = Clock()
    limiter = LogLimiter(burst=10, window_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"):
        assert [limiter.allow("sequence_gap") for _ in range(21)] == [True] * 10 + [False] * 11
        assert limiter.allow("deadletter")
        clock.now += 9.5
        limiter.report_expired()
        assert _suppressed(caplog) == []  # the window is not over yet
        clock.now += 0.5
        limiter.report_expired()
        limiter.report_expired()
        assert _suppressed(caplog) == ["(11 more sequence_gap lines suppressed in the last 10 s)"]
        assert limiter.allow("sequence_gap")  # a new window
    assert len(_suppressed(caplog)) == 1


def test_the_final_flush_reports_what_an_open_window_suppressed(caplog):
    clock = Clock()
    limiter = LogLimiter(burst=2, window_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"):
        for _ in range(5):
            limiter.allow("deadletter")
        for _ in range(3):
            limiter.allow("sequence_gap")
        clock.now += 3
        limiter.report_all()
        limiter.report_all()  # said once
    assert sorted(_suppressed(caplog)) == ["(1 more sequence_gap lines suppressed in the last 3 s)",
                                           "(3 more deadletter lines suppressed in the last 3 s)"]


def test_pipeline_reports_suppressed_gap_lines_from_its_poll(caplog):
    clock = Clock()
    p = FeedPipeline("trades", "ticker", "dead", RecordingSink(), "coinbase", log_limiter=LogLimiter(clock=clock))
    frames = [trades_frame("BTC-USD", [100 + i], WHEN, seq=2 * i) for i in range(22)]  # 21 sequence gaps
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"):
        _feed(frames, p)
        gap_lines = [r for r in caplog.records if r.getMessage().startswith("sequence_num gap")]
        assert len(gap_lines) == 10 and p.health.sequence_gaps == 21
        clock.now += 10
        p.poll()
    assert _suppressed(caplog) == ["(11 more sequence_gap lines suppressed in the last 10 s)"]


def test_the_end_of_a_replay_reports_suppressed_gap_lines(caplog):
    when = datetime(2026, 7, 15, tzinfo=timezone.utc)
    frames = [TimedFrame(when, trades_frame("BTC-USD", [100 + i], WHEN, seq=2 * i), "c1") for i in range(22)]
    topics = SimpleNamespace(trades_topic="trades", ticker_topic="ticker", deadletter_topic="dead")
    with caplog.at_level(logging.WARNING, logger="producer.pipeline"):
        summary = publish_frames(frames, topics, "replay", sink=RecordingSink())  # far quicker than a window
    assert summary.pipeline.health.sequence_gaps == 21
    assert _suppressed(caplog) == ["(11 more sequence_gap lines suppressed in the last 1 s)"]
