"""Deterministic synthetic market speaking the Coinbase Advanced Trade WebSocket format.

``generate_frames(SyntheticConfig(...))`` yields :class:`Frame` objects: the exact JSON
text of each WebSocket frame a client subscribed to ``market_trades``, ``ticker`` and
``heartbeats`` would receive, plus the (simulated) time it was received.

This module owns the connection the client sees: the config, the frame envelopes and their
order, the snapshots and subscription acks, heartbeats, the market-wide calm / burst regime
and the ~100 ms publication windows. The products' prices, orders and trades are the market
model of ``producer.synthetic_market``; times and numbers are written as in
``producer.coinbase_text``.

Format (see ``data/coinbase/samples_advanced_trade.ndjson``):

* envelope keys in order ``channel, client_id, timestamp, sequence_num, events``;
  ``timestamp`` is RFC 3339 with up to 9 fractional digits, trailing zeros trimmed
  (Go's RFC3339Nano); ``sequence_num`` is one counter per connection shared by every
  channel (subscription acks and heartbeats included), starting at 0;
* compact JSON (no spaces), every price / size / id inside ``events`` is a string,
  ``heartbeat_counter`` is an integer;
* ``market_trades``: one snapshot frame with the latest ``snapshot_trades`` trades of
  every product, then updates; trades within a frame newest first; trade ids per product
  rise by exactly one per trade; trade ``time`` has microseconds, trailing zeros trimmed;
  ``side`` is the maker side as on Coinbase (a ``BUY`` trade prints at the bid);
* ``ticker``: a snapshot frame per product, then one update per published trade batch of
  that product plus Poisson quote-only updates;
* ``subscriptions`` acks are cumulative, keys sorted; the first one arrives after the
  ``market_trades`` snapshot, as it does on the real feed.

The exchange publishes trades in ~100 ms batches (as the samples show); a batch frame
usually carries one product, with a small probability two.

Everything is driven by ``random.Random`` instances seeded from ``config.seed`` (and,
per product, from the product name through SHA-256): the same config always yields a
byte-identical frame sequence. No wall clock, global random state or ``hash()`` is used.
"""
from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from producer.coinbase_text import EPOCH, NS_PER_S, UTC, format_go_time, format_rfc3339_nanos
from producer.synthetic_market import (
    BURST_RATE_MULT,
    BURST_TO_CALM_PER_S,
    BURST_VOL_MULT,
    CALM_TO_BURST_PER_S,
    SimulatedProduct,
    derive_seed,
    product_profile,
)

__all__ = ["Frame", "SyntheticConfig", "generate_frames"]

_WINDOW_NS = 100_000_000  # the exchange publishes trades in ~100 ms batches
_FLUSH_JITTER_NS = 8_000_000
_MULTI_PRODUCT_PROB = 0.02  # a batch frame carries two products


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SyntheticConfig:
    products: tuple[str, ...] = ("BTC-USD", "ETH-USD")
    seed: int = 7
    start: datetime = datetime(2026, 11, 24, 23, 50, tzinfo=UTC)  # receive time of frame 0
    duration_s: float | None = 600.0  # None = endless (live-like)
    rate_multiplier: float = 1.0  # scales every product's mean trade rate
    snapshot_trades: int = 50
    heartbeat_interval_s: float = 1.0
    ticker_only_rate: float = 0.5  # extra quote-only ticker updates per second per product


@dataclass(frozen=True, slots=True)
class Frame:
    received_at: datetime  # tz-aware UTC, when the client received the frame
    text: str  # exact JSON text of the WebSocket frame


def _to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


# --------------------------------------------------------------------------- generator


def _validate(config: SyntheticConfig) -> None:
    if not config.products:
        raise ValueError("SyntheticConfig.products must not be empty")
    if len(set(config.products)) != len(config.products):
        raise ValueError("SyntheticConfig.products must be unique")
    for p in config.products:
        if not isinstance(p, str) or not p:
            raise ValueError(f"invalid product id {p!r}")
    if config.duration_s is not None and not config.duration_s >= 0:
        raise ValueError("duration_s must be >= 0 or None")
    if not config.rate_multiplier >= 0:
        raise ValueError("rate_multiplier must be >= 0")
    if config.snapshot_trades < 0:
        raise ValueError("snapshot_trades must be >= 0")
    if not config.heartbeat_interval_s > 0:
        raise ValueError("heartbeat_interval_s must be > 0")
    if not config.ticker_only_rate >= 0:
        raise ValueError("ticker_only_rate must be >= 0")


def generate_frames(config: SyntheticConfig) -> Iterator[Frame]:
    """Frames of one simulated connection, in receive order (see the module docstring).

    Validates ``config`` eagerly, then returns a lazy iterator; ``duration_s=None``
    makes it endless.
    """
    _validate(config)
    return _run(config)


def _run(config: SyntheticConfig) -> Iterator[Frame]:
    seed = config.seed
    rng = random.Random(derive_seed(seed, "connection"))
    regime_rng = random.Random(derive_seed(seed, "regime"))
    start_ns = _to_ns(config.start)
    duration = config.duration_s
    end_ns = math.inf if duration is None or math.isinf(duration) else start_ns + round(duration * NS_PER_S)
    products = [
        SimulatedProduct(pid, product_profile(pid), seed, config.rate_multiplier, start_ns) for pid in config.products
    ]
    n_products = len(products)
    qproducts = "[" + ",".join(json.dumps(p) for p in config.products) + "]"

    buf: list[Frame] = []
    seq = 0
    last_ts = start_ns - 10_000_000
    last_recv = start_ns
    stopped = False
    randint = rng.randint
    rnd = rng.random
    log = math.log
    epoch = EPOCH
    td = timedelta
    fmt_ts = format_rfc3339_nanos

    def emit(channel_head: str, nominal_ns: int, events: str, latency_ns: int = -1) -> None:
        """Stamp and buffer one frame: envelope timestamps strictly increase, receive
        times never decrease and are always a little after the envelope timestamp."""
        nonlocal seq, last_ts, last_recv, stopped
        if stopped:
            return
        ts = nominal_ns if nominal_ns > last_ts else last_ts + 8_000 + int(rnd() * 112_000)
        if latency_ns < 0:  # 1.5 ms + exponential (mean 2.5 ms), capped
            latency_ns = 1_500_000 + min(int(-2_500_000.0 * log(1.0 - rnd())), 20_000_000)
        recv = ts + latency_ns
        recv = max(recv, last_recv)
        if recv > end_ns:
            stopped = True
            return
        last_ts = ts
        last_recv = recv
        buf.append(
            Frame(
                epoch + td(microseconds=recv // 1000),
                f'{channel_head}{fmt_ts(ts)}","sequence_num":{seq},"events":{events}}}',
            )
        )
        seq += 1

    H_TRADES = '{"channel":"market_trades","client_id":"","timestamp":"'
    H_TICKER = '{"channel":"ticker","client_id":"","timestamp":"'
    H_SUBS = '{"channel":"subscriptions","client_id":"","timestamp":"'
    H_HB = '{"channel":"heartbeats","client_id":"","timestamp":"'

    # ---- snapshot history: the last `snapshot_trades` trades of each product, before start
    lat0 = 2_000_000 + randint(0, 3_000_000)
    snap_ns = start_ns - lat0
    n_snap = config.snapshot_trades
    snapshot_parts: list[str] = []
    for ps in products:
        if n_snap:
            fills = ps.history(n_snap, snap_ns - randint(1_000_000, 400_000_000))
            snapshot_parts.extend(ps.render_trades(fills))
        ps.advance(snap_ns, 1.0)
        ps.refresh_quote(0)

    # the market_trades snapshot is received exactly at config.start
    emit(H_TRADES, snap_ns, '[{"type":"snapshot","trades":[' + ",".join(snapshot_parts) + "]}]", start_ns - snap_ns)
    subs_mt = '"market_trades":' + qproducts
    emit(H_SUBS, snap_ns + 400_000, '[{"subscriptions":{' + subs_mt + "}}]", 900_000)
    t0 = snap_ns + 1_500_000
    for i, ps in enumerate(products):
        emit(H_TICKER, t0 + i * 60_000, '[{"type":"snapshot","tickers":[' + ps.render_ticker() + "]}]")
    subs_tk = subs_mt + ',"ticker":' + qproducts
    emit(H_SUBS, t0 + 900_000, '[{"subscriptions":{' + subs_tk + "}}]")
    emit(H_SUBS, t0 + 1_000_000, '[{"subscriptions":{"heartbeats":["heartbeats"],' + subs_tk + "}}]")
    yield from buf
    buf.clear()

    # ---- live simulation, in ~100 ms publication windows (empty windows are skipped)
    hb_interval = round(config.heartbeat_interval_s * NS_PER_S)
    hb_next = start_ns + randint(5_000_000, NS_PER_S)
    hb_mono = randint(20_000, 200_000) * NS_PER_S + randint(0, NS_PER_S - 1)  # server uptime
    hb_counter = hb_mono // NS_PER_S
    quote_rate = config.ticker_only_rate
    for ps in products:
        r = ps.rng
        ps.next_arrival = start_ns + int(r.expovariate(ps.order_rate) * NS_PER_S) if ps.order_rate > 0 else math.inf
        ps.next_quote = start_ns + int(r.expovariate(quote_rate) * NS_PER_S) if quote_rate > 0 else math.inf

    regime = 0  # 0 calm, 1 burst (market wide)
    regime_rates = (CALM_TO_BURST_PER_S / NS_PER_S, BURST_TO_CALM_PER_S / NS_PER_S)
    regime_switch = start_ns + int(regime_rng.expovariate(regime_rates[0]))
    w_end = start_ns + randint(1, _WINDOW_NS)
    multi_prob = _MULTI_PRODUCT_PROB
    while True:
        w_start = w_end - _WINDOW_NS
        if w_start >= regime_switch:
            regime ^= 1
            regime_switch = w_start + int(regime_rng.expovariate(regime_rates[regime]))
        rate_mult = BURST_RATE_MULT if regime else 1.0
        vol_mult = BURST_VOL_MULT if regime else 1.0
        events: list[tuple[int, int, str]] = []  # (nominal ns, tie-break, events json)

        for pi, ps in enumerate(products):
            r = ps.rng
            while True:
                ta, tq = ps.next_arrival, ps.next_quote
                if ta <= tq:
                    if ta >= w_end:
                        break
                    ps.order(ta, regime)
                    ps.next_arrival = ta + 1 + int(r.expovariate(ps.order_rate * rate_mult) * NS_PER_S)
                else:
                    if tq >= w_end:
                        break
                    ps.advance(tq, vol_mult)
                    ps.refresh_quote(regime)
                    events.append(
                        (tq + 100_000 + int(r.random() * 1_400_000), pi, '[{"type":"update","tickers":[' + ps.render_ticker() + "]}]")
                    )
                    ps.next_quote = tq + 1 + int(r.expovariate(quote_rate) * NS_PER_S)

        while hb_next < w_end:
            body = (
                '[{"current_time":"' + format_go_time(hb_next, hb_mono)
                + '","heartbeat_counter":' + str(hb_counter) + "}]"
            )
            events.append((hb_next + 1_000_000 + int(rnd() * 3_000_000), -1, body))
            hb_next += hb_interval
            hb_mono += hb_interval
            hb_counter += 1

        if events:
            if len(events) > 1:
                events.sort()
            for t, pi, body in events:
                emit(H_HB if pi < 0 else H_TICKER, t, body)

        # ---- publish this window's trades (one frame per product, rarely two products)
        pending_idx = [i for i in range(n_products) if products[i].pending]
        if pending_idx:
            groups: list[tuple[int, ...]] = [(i,) for i in pending_idx]
            if len(pending_idx) >= 2 and rng.random() < multi_prob:
                a, b = sorted(rng.sample(pending_idx, 2))
                groups = [g for g in groups if g[0] != a and g[0] != b]
                groups.append((a, b))
                groups.sort()
            t_flush = w_end + int(rnd() * _FLUSH_JITTER_NS)
            for g in groups:
                if len(g) == 1:
                    ps = products[g[0]]
                    fills = ps.pending
                    ps.pending = []
                    ps.publish(fills)
                    parts = ps.render_trades(fills)
                else:
                    merged: list[tuple[int, int, str]] = []
                    for i in g:
                        ps = products[i]
                        fills = ps.pending
                        ps.pending = []
                        ps.publish(fills)
                        base = len(merged)
                        for j, (fill, text) in enumerate(zip(reversed(fills), ps.render_trades(fills))):
                            merged.append((-fill[3], base + j, text))
                    merged.sort()  # newest first; equal times keep each product's order
                    parts = [m[2] for m in merged]
                emit(H_TRADES, t_flush, '[{"type":"update","trades":[' + ",".join(parts) + "]}]")
                for i in g:
                    ps = products[i]
                    ps.advance(w_end, vol_mult)
                    ps.refresh_quote(regime)
                    emit(H_TICKER, t_flush + 200_000, '[{"type":"update","tickers":[' + ps.render_ticker() + "]}]")

        if buf:
            yield from buf
            buf.clear()
        if stopped or w_end > end_ns:
            return
        # jump to the next window that has something to do
        t_next = min(hb_next, regime_switch)
        for ps in products:
            t_next = min(t_next, ps.next_arrival)
            t_next = min(t_next, ps.next_quote)
        if t_next < w_end:
            w_end += _WINDOW_NS
        else:
            w_end += _WINDOW_NS * ((t_next - w_end) // _WINDOW_NS + 1)
