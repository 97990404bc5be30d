"""One received frame -> Kafka: routing, feed health, the sink, the recorder, and the counters.

Shared by every source (live WebSocket, replay, synthetic), so a replayed recording goes
through exactly the code the live run did and yields the same Kafka records. The counters
kept here feed the periodic status line and the Prometheus metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from producer.health import FeedHealth, Gap
from producer.metrics import Family
from producer.routing import Routed, Router

log = logging.getLogger(__name__)

# Routed kinds whose messages are tracked in full (trade ids, heartbeats, acks); the others (dead
# letters, Coinbase errors) only count their sequence_num.
_OBSERVED_KINDS = frozenset({"data", "heartbeat", "subscriptions", "empty_snapshot"})


class LogLimiter:
    """At most `burst` lines per key and window, so a flood of bad input cannot flood the log.

    What it holds back is counted and always said, one line per key: when a window is over
    (`report_expired`, called once a second, or the key's next line) and at the end (`report_all`).
    """

    def __init__(self, burst: int = 10, window_s: float = 10.0, clock=time.monotonic):
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[str, list] = {}  # key -> [window start, lines, suppressed]
        self._lock = threading.Lock()  # the feed thread asks, the housekeeping thread reports

    def allow(self, key: str) -> bool:
        with self._lock:
            now = self.clock()
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.window_s:
                if w is not None and w[2]:
                    _report_suppressed(key, w[2], now - w[0])
                self._windows[key] = [now, 1, 0]
                return True
            if w[1] < self.burst:
                w[1] += 1
                return True
            w[2] += 1
            return False

    def report_expired(self) -> None:
        """Says what was suppressed in every window that is over, and forgets those windows."""
        with self._lock:
            now = self.clock()
            for key, w in list(self._windows.items()):
                if now - w[0] >= self.window_s:
                    if w[2]:
                        _report_suppressed(key, w[2], now - w[0])
                    del self._windows[key]

    def report_all(self) -> None:
        """Says what was suppressed so far in every window, over or not (at the end of a run)."""
        with self._lock:
            now = self.clock()
            for key, w in self._windows.items():
                if w[2]:
                    _report_suppressed(key, w[2], now - w[0])
                    w[2] = 0


def _report_suppressed(key: str, count: int, seconds: float) -> None:
    log.warning("(%d more %s lines suppressed in the last %d s)", count, key, max(1, round(seconds)))


class FeedPipeline:
    """Implements the connection's listener interface (on_connect / on_frame / on_disconnect)."""

    def __init__(self, trades_topic: str, ticker_topic: str, deadletter_topic: str, sink, source: str,
                 recorder=None, log_limiter: LogLimiter | None = None):
        self.router = Router(trades_topic, ticker_topic, deadletter_topic)
        self.health = FeedHealth()
        self.sink = sink
        self.source = source
        self.recorder = recorder
        self.connection = None  # the live FeedConnection, for its reconnect counters
        self.connection_id: str | None = None
        self.frames = 0
        self.records = 0
        self.by_kind: dict[str, int] = defaultdict(int)
        self.messages: dict[str, int] = defaultdict(int)  # by channel
        self.deadletters: dict[str, int] = defaultdict(int)  # by reason
        self.coinbase_errors = 0
        self.processing_errors = 0
        self.untimed = 0  # replayed lines without a usable time (dead-lettered)
        self.first_ts_ms: int | None = None
        self.last_ts_ms: int | None = None
        self.last_frame_mono: float | None = None
        self.started_mono = time.monotonic()
        self._limit = log_limiter or LogLimiter()

    @classmethod
    def from_settings(cls, settings, sink, source: str, recorder=None) -> FeedPipeline:
        return cls(settings.trades_topic, settings.ticker_topic, settings.deadletter_topic, sink, source, recorder)

    # ---- listener interface ----------------------------------------------------------------

    def on_connect(self, connection_id: str) -> None:
        self.connection_id = connection_id
        self.health.start_connection(connection_id)

    def on_disconnect(self, connection_id: str, reason: str) -> None:
        pass  # the connection logs and counts it; the health baseline resets on the next connect

    def on_frame(self, frame: bytes | str, recv_ns: int, mono_ns: int, connection_id: str) -> None:
        self.handle(frame, recv_ns, connection_id, mono_ns)

    # ---- the hot path ------------------------------------------------------------------------

    def handle(self, frame: bytes | str, recv_ns: int, connection_id: str, t0_ns: int | None = None,
               untimed: str | None = None) -> None:
        """Routes one frame received at `recv_ns` (epoch ns); `t0_ns` (monotonic) times it to the Kafka ack.

        `untimed` names why the frame's receive time is not known (a replayed line without a usable
        time, `recv_ns` borrowed from its neighbour): it is dead-lettered with that reason, a
        Coinbase error frame keeping its own; its sequence_num still counts.
        """
        if connection_id != self.connection_id:
            self.on_connect(connection_id)
        if self.recorder is not None:
            self.recorder.write(frame, recv_ns, connection_id)
        ts_ms = recv_ns // 1_000_000
        self.frames += 1
        if self.first_ts_ms is None:
            self.first_ts_ms = ts_ms
        self.last_ts_ms = ts_ms
        try:
            routed = self.router.route(frame, ts_ms, self.source, connection_id)
        except Exception:  # a bug must not cost the frame: keep it as a dead letter
            routed = self._routing_failed(frame, ts_ms, connection_id)
        if untimed is not None:
            routed = self._untimed(routed, frame, ts_ms, connection_id, untimed)
        kind = routed.kind
        self.by_kind[kind] += 1
        msg = routed.message
        if kind == "data":
            self.messages[msg["channel"]] += 1
        elif kind == "heartbeat":
            self.messages["heartbeats"] += 1
        elif kind == "subscriptions":
            self.messages["subscriptions"] += 1
            if self._limit.allow("subscriptions"):
                log.info("subscriptions acknowledged on %s: %s", connection_id, _subs_text(msg))
        elif kind == "empty_snapshot":
            self.messages["empty_snapshots"] += 1
        else:
            self._bad_frame(routed, frame, connection_id)
        if msg is not None:
            try:  # sequence numbers of every message (shared by all channels); the rest only of non-dead letters
                gaps = self.health.observe(msg) if kind in _OBSERVED_KINDS else self.health.observe_sequence(msg)
            except Exception:
                gaps = self._health_failed(msg)
            if gaps:
                self._log_gaps(gaps)
        sink = self.sink
        for record in routed.records:
            sink.send(record, t0_ns)
            self.records += 1
        if t0_ns is not None:
            self.last_frame_mono = t0_ns / 1e9

    def _routing_failed(self, frame: bytes | str, ts_ms: int, connection_id: str) -> Routed:
        self.processing_errors += 1
        if self._limit.allow("processing_error"):
            log.exception("routing failed; frame kept as a dead letter")
        return self.router.dead_letter(_raw(frame), ts_ms, self.source, connection_id, "processing_error")

    def _untimed(self, routed: Routed, frame: bytes | str, ts_ms: int, connection_id: str, reason: str) -> Routed:
        self.untimed += 1
        if routed.kind == "error":
            return routed
        return self.router.dead_letter(_raw(frame), ts_ms, self.source, connection_id, reason, routed.message)

    def _health_failed(self, msg: dict) -> tuple:
        self.processing_errors += 1
        if self._limit.allow("health_error"):
            log.exception("feed health check failed on a %s message", msg.get("channel"))
        return ()

    def _bad_frame(self, routed, frame, connection_id: str) -> None:
        reason = routed.reason or "unknown"
        self.deadletters[reason] += 1
        if routed.kind == "error":
            self.coinbase_errors += 1
            self.messages["error"] += 1
            if self._limit.allow("coinbase_error"):
                log.warning("Coinbase error on %s: %s (kept in the dead-letter topic)",
                            connection_id, (routed.message or {}).get("message"))
            return
        self.messages["other" if reason == "unknown_channel" else "invalid"] += 1
        if self._limit.allow("deadletter"):
            shown = frame[:160] if isinstance(frame, (bytes, str)) else frame
            log.warning("dead letter (%s) on %s: %r", reason, connection_id, shown)

    def _log_gaps(self, gaps) -> None:
        for gap in gaps:
            if self._limit.allow(f"{gap.kind}_gap"):
                log.warning(gap.describe())

    # ---- reporting -------------------------------------------------------------------------

    def poll(self) -> None:
        """Once a second from the status loop: the sink's health logs, the recording's flush, suppressed log lines."""
        self.sink.poll()
        if self.recorder is not None:
            self.recorder.flush()
        self._limit.report_expired()

    def flush_log(self) -> None:
        """At the end of a run: says how many log lines the rate limit held back."""
        self._limit.report_all()

    def _reconnects(self) -> tuple[int, dict[str, int]]:
        conn = self.connection
        if conn is None:
            return 0, {}
        return conn.reconnects, dict(conn.reconnects_by_reason)

    def status_line(self) -> str:
        stats = self.sink.stats
        h = self.health
        order = ("market_trades", "ticker", "heartbeats", "subscriptions", "empty_snapshots", "error", "invalid",
                 "other")
        msgs = " ".join(f"{c}={self.messages[c]:,}" for c in order if self.messages.get(c))
        reconnects, _ = self._reconnects()
        dead = sum(self.deadletters.values())
        errors = dead + stats.failed + self.processing_errors
        latency = ""
        hist = getattr(self.sink, "latency", None)
        if hist is not None and hist.count:
            p50, p99 = hist.quantile_s(0.5), hist.quantile_s(0.99)
            latency = f" | send latency p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms"
        return (
            f"status: messages {msgs or 0} | kafka sent={stats.sent:,} acked={stats.acked:,} lost={stats.lost:,}"
            f" | errors={errors:,} (dead letters {dead:,}, coinbase {self.coinbase_errors:,}, kafka {stats.failed:,})"
            f" | reconnects={reconnects:,}"
            f" | gaps sequence={h.sequence_gaps:,} ({h.sequence_missing:,} msgs)"
            f" trade_id={h.trade_id_gap_count:,} ({h.trades_missing_count:,} trades"
            f"{', ' + format(sum(h.trades_recovered.values()), ',') + ' recovered' if h.trades_recovered else ''})"
            f" | buffer {stats.in_flight:,} records {stats.in_flight_bytes / 2**20:.1f} MiB{latency}"
        )

    def summary_line(self, seconds: float | None = None) -> str:
        stats = self.sink.stats
        h = self.health
        seconds = time.monotonic() - self.started_mono if seconds is None else seconds
        reconnects, by_reason = self._reconnects()
        msgs = ", ".join(f"{c} {n:,}" for c, n in sorted(self.messages.items())) or "none"
        lost = dict(self.sink.losses.by_reason)
        dead = ", ".join(f"{r} {n:,}" for r, n in sorted(self.deadletters.items()))
        rate = self.frames / seconds if seconds > 0 else 0.0
        return (
            f"summary: {self.source}: {self.frames:,} messages in {seconds:.1f} s ({rate:,.0f}/s) [{msgs}]"
            f" -> {stats.sent:,} Kafka records, {stats.acked:,} acknowledged, {stats.lost:,} lost"
            f"{' ' + str(lost) if lost else ''}; dead letters {sum(self.deadletters.values()):,}"
            f"{' (' + dead + ')' if dead else ''}; reconnects {reconnects:,}"
            f"{' ' + str(by_reason) if by_reason else ''}; sequence gaps {h.sequence_gaps:,}"
            f" ({h.sequence_missing:,} messages); trade_id gaps {h.trade_id_gap_count:,}"
            f" ({h.trades_missing_count:,} trades, {sum(h.trades_recovered.values()):,} recovered later)"
        )

    def metric_families(self) -> list[Family]:
        stats = self.sink.stats
        h = self.health
        P = "crypto_producer_"
        fams = []
        f = Family(P + "messages_total", "counter", "WebSocket messages received, by channel (empty_snapshots = "
                   "snapshots without trades or tickers, error = Coinbase error messages, invalid = not routable, "
                   "other = unknown channel)")
        for channel, n in sorted(self.messages.items()):
            f.add(n, source=self.source, channel=channel)
        fams.append(f)
        f = Family(P + "records_sent_total", "counter", "Kafka records handed to the Kafka client, by topic")
        for topic, n in sorted(stats.by_topic.items()):
            f.add(n, topic=topic)
        fams.append(f)
        fams.append(Family(P + "records_acked_total", "counter", "Kafka records acknowledged by the broker (acks=all)")
                    .add(stats.acked))
        f = Family(P + "records_lost_total", "counter",
                   "Kafka records lost, by reason (buffer_full, kafka_error, send_error, not_delivered_at_exit)")
        for reason, n in sorted(self.sink.losses.by_reason.items()):
            f.add(n, reason=reason)
        fams.append(f)
        f = Family(P + "deadletters_total", "counter", "Frames published to the dead-letter topic, by reason")
        for reason, n in sorted(self.deadletters.items()):
            f.add(n, reason=reason)
        fams.append(f)
        fams.append(Family(P + "coinbase_errors_total", "counter", "Coinbase error messages received")
                    .add(self.coinbase_errors))
        fams.append(Family(P + "processing_errors_total", "counter", "Frames the producer failed to process (bugs)")
                    .add(self.processing_errors))
        conn = self.connection
        if conn is not None:
            fams.append(Family(P + "connections_total", "counter", "WebSocket connections opened").add(conn.connections))
            f = Family(P + "reconnects_total", "counter", "Reconnections, by the reason the previous connection ended")
            for reason, n in sorted(conn.reconnects_by_reason.items()):
                f.add(n, reason=reason)
            fams.append(f)
            fams.append(Family(P + "connected", "gauge", "1 while a WebSocket connection is open").add(int(conn.connected)))
        fams.append(Family(P + "sequence_gaps_total", "counter", "Jumps in sequence_num (messages lost by the feed)")
                    .add(h.sequence_gaps))
        fams.append(Family(P + "sequence_gap_messages_total", "counter", "Messages missing according to sequence_num")
                    .add(h.sequence_missing))
        f = Family(P + "trade_id_gaps_total", "counter", "Jumps in trade_id per product")
        g = Family(P + "trade_id_gap_trades_total", "counter", "Trades missing according to trade_id, per product")
        for pid in sorted(set(h.trade_id_gaps) | set(h.last_trade_id)):
            f.add(h.trade_id_gaps.get(pid, 0), product_id=pid)
            g.add(h.trades_missing.get(pid, 0), product_id=pid)
        r = Family(P + "trade_id_recovered_trades_total", "counter",
                   "Trades counted missing that a later message (a snapshot) delivered after all, per product")
        for pid in sorted(set(h.trade_id_gaps) | set(h.last_trade_id)):
            r.add(h.trades_recovered.get(pid, 0), product_id=pid)
        fams += [f, g, r]
        f = Family(P + "trade_id_repeats_total", "counter",
                   "Trades received again (snapshot = the market_trades snapshot overlapping earlier trades)")
        for pid, n in sorted(h.snapshot_overlap.items()):
            f.add(n, product_id=pid, event_type="snapshot")
        for pid, n in sorted(h.trade_id_repeats.items()):
            f.add(n, product_id=pid, event_type="update")
        fams.append(f)
        f = Family(P + "snapshots_total", "counter", "Snapshot events received, by channel")
        for channel, n in sorted(h.snapshots.items()):
            f.add(n, channel=channel)
        fams.append(f)
        if h.last_heartbeat_counter is not None:
            fams.append(Family(P + "heartbeat_counter", "gauge", "Last heartbeat_counter received")
                        .add(h.last_heartbeat_counter))
        if self.last_frame_mono is not None:
            fams.append(Family(P + "last_message_age_seconds", "gauge", "Seconds since the last WebSocket message")
                        .add(round(time.monotonic() - self.last_frame_mono, 3)))
        fams.append(Family(P + "buffer_records", "gauge", "Kafka records sent but not yet acknowledged")
                    .add(stats.in_flight))
        fams.append(Family(P + "buffer_bytes", "gauge", "Bytes of Kafka record values not yet acknowledged")
                    .add(stats.in_flight_bytes))
        fams.append(Family(P + "buffer_limit_records", "gauge", "Bound of the in-memory buffer, records")
                    .add(self.sink.max_buffered_records))
        fams.append(Family(P + "buffer_limit_bytes", "gauge", "Bound of the in-memory buffer, bytes")
                    .add(self.sink.max_buffered_bytes))
        hist = getattr(self.sink, "latency", None)
        if hist is not None:
            name = P + "send_latency_seconds"
            fam = Family(name, "histogram", "Time from receiving a message to Kafka acknowledging its record")
            fam.samples = hist.samples(name)
            fams.append(fam)
        return fams


def _raw(frame: bytes | str) -> bytes:
    return frame.encode("utf-8", "surrogateescape") if isinstance(frame, str) else bytes(frame)


def _subs_text(msg: dict | None) -> str:
    for event in (msg or {}).get("events") or ():
        subs = event.get("subscriptions") if isinstance(event, dict) else None
        if isinstance(subs, dict):
            return ", ".join(f"{k} {v}" for k, v in subs.items())
    return "?"


__all__ = ["FeedPipeline", "Gap", "LogLimiter"]
