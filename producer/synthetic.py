"""Deterministic synthetic market speaking the Coinbase Advanced Trade WebSocket format.

``generate_frames(SyntheticConfig(...))`` yields :class:`Frame` objects: the exact JSON
text of each WebSocket frame a client subscribed to ``market_trades``, ``ticker`` and
``heartbeats`` would receive, plus the (simulated) time it was received.

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

Market model: per-product geometric random walk of the mid (in ticks) whose volatility
follows a market-wide calm / burst regime; Poisson taker orders per product (rate scaled
by ``rate_multiplier`` and multiplied during bursts); each taker order fills one or more
resting levels at the same microsecond (sweeps; bigger in bursts) and moves the mid;
the maker side is autocorrelated; sizes are lognormal in notional with a Pareto tail.
The exchange publishes trades in ~100 ms batches (as the samples show); a batch frame
usually carries one product, with a small probability two.

Everything is driven by ``random.Random`` instances seeded from ``config.seed`` (and,
per product, from the product name through SHA-256): the same config always yields a
byte-identical frame sequence. No wall clock, global random state or ``hash()`` is used.

Trade ids: the id of the first trade after ``start`` is anchored in time (a realistic id
at a reference instant plus the product's nominal trade rate times the seconds since
then), so runs that start at different times do not reuse ``(product_id, trade_id)``
pairs (unless they overlap in time or use a ``rate_multiplier`` well above 1).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

UTC = timezone.utc  # datetime.UTC needs Python 3.11; the package supports 3.10

__all__ = [
    "Frame",
    "ProductProfile",
    "SyntheticConfig",
    "format_rfc3339_nanos",
    "format_trade_time",
    "generate_frames",
    "product_profile",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_S = 1_000_000_000
_SIZE_SCALE = 100_000_000  # sizes are integers of 1e-8 base units
_SIZE_DECIMALS = 8


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


@dataclass(frozen=True)
class ProductProfile:
    """Static market parameters of one product (defaults for unknown products are derived
    deterministically from the product name)."""

    product_id: str
    price_level: float  # typical price in quote currency
    price_decimals: int  # tick = 10 ** -price_decimals
    trades_per_s: float  # mean trade (fill) rate at rate_multiplier 1
    annual_vol: float  # calm-regime volatility, annualised
    trade_id_anchor: int  # trade id around _ID_ANCHOR_NS
    median_notional: float  # median trade notional in quote currency


# The BTC-USD anchor is the trade id seen at this instant in the recorded samples.
_ID_ANCHOR_NS = int(datetime(2026, 7, 15, 3, 40, 10, tzinfo=UTC).timestamp()) * _NS_PER_S

_KNOWN_PRODUCTS = {
    "BTC-USD": ProductProfile("BTC-USD", 95_000.0, 2, 7.0, 0.50, 1_056_309_461, 30.0),
    "ETH-USD": ProductProfile("ETH-USD", 3_500.0, 2, 4.5, 0.65, 601_873_215, 25.0),
    "SOL-USD": ProductProfile("SOL-USD", 180.0, 2, 3.0, 0.85, 148_212_977, 20.0),
    "XRP-USD": ProductProfile("XRP-USD", 2.4, 4, 2.5, 0.90, 95_140_388, 15.0),
    "DOGE-USD": ProductProfile("DOGE-USD", 0.32, 5, 2.0, 1.00, 120_775_302, 12.0),
    "LTC-USD": ProductProfile("LTC-USD", 95.0, 2, 1.0, 0.80, 231_660_514, 15.0),
}


def product_profile(product_id: str) -> ProductProfile:
    """Market parameters for ``product_id`` (known defaults or derived from its name)."""
    known = _KNOWN_PRODUCTS.get(product_id)
    if known is not None:
        return known
    h = zlib.crc32(product_id.encode("utf-8"))
    h2 = zlib.crc32(product_id.encode("utf-8"), 0x5EED)
    u1 = (h & 0xFFFF) / 65535.0
    u2 = (h >> 16) / 65535.0
    level = 10.0 ** (-1.0 + 4.0 * u1)  # 0.1 .. 1000
    level = float(f"{level:.4g}")
    return ProductProfile(
        product_id=product_id,
        price_level=level,
        price_decimals=min(8, max(2, math.ceil(4.0 - math.log10(level)))),  # tick <= ~1 bp
        trades_per_s=round(0.5 + 2.5 * u2, 3),
        annual_vol=0.9,
        trade_id_anchor=10_000_000 + h2 % 400_000_000,
        median_notional=15.0,
    )


# --------------------------------------------------------------------------- formatting

_SEC_CACHE: dict[int, tuple[str, str]] = {}


def _sec_fields(sec: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "HH:MM:SS") of a UTC epoch second, cached."""
    hit = _SEC_CACHE.get(sec)
    if hit is None:
        if len(_SEC_CACHE) > 4096:
            _SEC_CACHE.clear()
        d = _EPOCH + timedelta(seconds=sec)
        hit = (f"{d.year:04d}-{d.month:02d}-{d.day:02d}", f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}")
        _SEC_CACHE[sec] = hit
    return hit


def format_rfc3339_nanos(epoch_ns: int) -> str:
    """UTC RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano).

    >>> format_rfc3339_nanos(1784086810698612180)
    '2026-07-15T03:40:10.69861218Z'
    """
    sec, frac = divmod(epoch_ns, _NS_PER_S)
    day, hms = _sec_fields(sec)
    if frac:
        return f"{day}T{hms}.{frac:09d}".rstrip("0") + "Z"
    return f"{day}T{hms}Z"


def format_trade_time(epoch_us: int) -> str:
    """UTC RFC 3339 with microseconds, trailing zeros trimmed (trade ``time`` field).

    >>> format_trade_time(1784086811451540)
    '2026-07-15T03:40:11.45154Z'
    """
    sec, frac = divmod(epoch_us, 1_000_000)
    day, hms = _sec_fields(sec)
    if frac:
        return f"{day}T{hms}.{frac:06d}".rstrip("0") + "Z"
    return f"{day}T{hms}Z"


def _format_go_time(epoch_ns: int, mono_ns: int) -> str:
    """Go ``time.Time.String()`` with a monotonic reading, as in heartbeat ``current_time``."""
    sec, frac = divmod(epoch_ns, _NS_PER_S)
    day, hms = _sec_fields(sec)
    wall = f"{day} {hms}.{frac:09d}".rstrip("0").rstrip(".") if frac else f"{day} {hms}"
    msec, mfrac = divmod(mono_ns, _NS_PER_S)
    return f"{wall} +0000 UTC m=+{msec}.{mfrac:09d}"


def _fmt_units(value: int, scale: int, decimals: int) -> str:
    """Non-negative fixed-point integer (``value / scale``, ``scale == 10**decimals``) ->
    decimal string without exponent, trailing zeros trimmed."""
    s = str(value)
    if not decimals:
        return s
    if len(s) <= decimals:
        s = s.rjust(decimals + 1, "0")
    frac = s[-decimals:].rstrip("0")
    if frac:
        return s[:-decimals] + "." + frac
    return s[:-decimals]


def _fmt_size(units: int) -> str:
    """Size in 1e-8 base units -> decimal string (fast path for sizes below 1)."""
    if 0 < units < _SIZE_SCALE:
        return "0." + str(units + _SIZE_SCALE)[1:].rstrip("0")
    return _fmt_units(units, _SIZE_SCALE, _SIZE_DECIMALS)


def _fmt_pct(x: float) -> str:
    s = f"{x:.14f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# --------------------------------------------------------------------------- model constants

_WINDOW_NS = 100_000_000  # the exchange publishes trades in ~100 ms batches
_FLUSH_JITTER_NS = 8_000_000
_MULTI_PRODUCT_PROB = 0.02  # a batch frame carries two products
_CALM_TO_BURST_PER_S = 1.0 / 240.0
_BURST_TO_CALM_PER_S = 1.0 / 25.0
_BURST_RATE_MULT = 3.0
_BURST_VOL_MULT = 4.0
_SIDE_PERSIST = (0.75, 0.85)  # P(same maker side as previous order), calm / burst
# fills per taker order: 1 with prob p1, else 2 + Geometric(q) failures
_FILLS_P1 = (0.70, 0.40)
_FILLS_Q = (0.50, 0.30)
_LEVEL_STEP_PROB = (0.30, 0.45)  # a sweep moves to the next price level
_SECONDS_PER_YEAR = 365.0 * 86400.0


def _mean_fills(regime: int) -> float:
    p1, q = _FILLS_P1[regime], _FILLS_Q[regime]
    return p1 + (1.0 - p1) * (2.0 + (1.0 - q) / q)


_P_BURST = _CALM_TO_BURST_PER_S / (_CALM_TO_BURST_PER_S + _BURST_TO_CALM_PER_S)
# mean fills per unit of calm order rate, averaged over the regimes
_FILLS_PER_ORDER_RATE = (1.0 - _P_BURST) * _mean_fills(0) + _P_BURST * _BURST_RATE_MULT * _mean_fills(1)


def _derive_seed(seed: int, label: str) -> int:
    digest = hashlib.sha256(f"{seed}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1000


# --------------------------------------------------------------------------- per product state


class _Product:
    __slots__ = (
        "dec",
        "high24",
        "high52",
        "last_price",
        "last_t",
        "low24",
        "low52",
        "median_notional",
        "mid",
        "next_arrival",
        "next_id",
        "next_quote",
        "open24",
        "order_rate",
        "pct_key",
        "pct_text",
        "pending",
        "pid",
        "price_cache",
        "quote_notional",
        "range_text",
        "rng",
        "scale",
        "side",
        "sigma_s",
        "spread",
        "ticker_prefix",
        "trade_prefix",
        "volume",
    )

    def __init__(self, pid: str, profile: ProductProfile, seed: int, rate_multiplier: float, start_ns: int):
        self.pid = pid
        self.rng = random.Random(_derive_seed(seed, "product/" + pid))
        r = self.rng
        self.dec = profile.price_decimals
        self.scale = 10 ** self.dec
        qpid = json.dumps(pid)
        self.trade_prefix = '{"product_id":' + qpid + ',"trade_id":"'
        self.ticker_prefix = '{"type":"ticker","product_id":' + qpid + ',"price":"'
        self.order_rate = profile.trades_per_s * rate_multiplier / _FILLS_PER_ORDER_RATE
        self.sigma_s = profile.annual_vol / math.sqrt(_SECONDS_PER_YEAR)
        self.median_notional = profile.median_notional
        level = profile.price_level * math.exp(r.gauss(0.0, 0.01))
        self.mid = max(level * self.scale, 20.0)  # in ticks
        self.spread = 1
        self.last_t = start_ns
        self.side = "BUY" if r.random() < 0.5 else "SELL"
        elapsed_s = (start_ns - _ID_ANCHOR_NS) / _NS_PER_S
        self.next_id = max(1_000_000, profile.trade_id_anchor + int(elapsed_s * profile.trades_per_s))
        self.next_arrival = math.inf
        self.next_quote = math.inf
        self.pending: list[tuple[int, int, int, int, str]] = []
        p = self.mid
        self.last_price = int(p)
        notional_24h = 300e6 * profile.trades_per_s / 7.0 * math.exp(r.gauss(0.0, 0.25))
        self.volume = int(notional_24h / (p / self.scale) * _SIZE_SCALE)
        self.low24 = int(p * (1.0 - r.uniform(0.004, 0.03)))
        self.high24 = int(p * (1.0 + r.uniform(0.004, 0.03))) + 1
        self.open24 = r.uniform(self.low24, self.high24)
        self.low52 = int(p * r.uniform(0.55, 0.8))
        self.high52 = int(p * r.uniform(1.2, 1.6))
        self.range_text = ""
        self._render_range()
        self.price_cache: dict[int, str] = {}
        self.pct_key = -1
        self.pct_text = ""
        # resting quantities at the touch, as notionals (lognormal, median ~ $3000)
        self.quote_notional = [math.exp(r.gauss(8.0, 1.3)) for _ in range(256)]

    def price_str(self, ticks: int) -> str:
        cache = self.price_cache
        text = cache.get(ticks)
        if text is None:
            if len(cache) > 4096:
                cache.clear()
            text = cache[ticks] = _fmt_units(ticks, self.scale, self.dec)
        return text

    def _render_range(self) -> None:
        scale, dec = self.scale, self.dec
        self.range_text = (
            f'","low_24_h":"{_fmt_units(self.low24, scale, dec)}'
            f'","high_24_h":"{_fmt_units(self.high24, scale, dec)}'
            f'","low_52_w":"{_fmt_units(self.low52, scale, dec)}'
            f'","high_52_w":"{_fmt_units(self.high52, scale, dec)}'
        )

    # -- dynamics ---------------------------------------------------------------

    def advance(self, t_ns: int, vol_mult: float) -> None:
        dt = t_ns - self.last_t
        if dt > 0:
            self.mid *= math.exp(self.sigma_s * vol_mult * math.sqrt(dt / _NS_PER_S) * self.rng.gauss(0.0, 1.0))
            self.mid = max(self.mid, 20.0)
            self.last_t = t_ns

    def refresh_quote(self, regime: int) -> None:
        r = self.rng
        if r.random() < (0.7 if regime == 0 else 0.4):
            self.spread = 1
        else:
            bps = min(r.expovariate(2.0 if regime == 0 else 0.7), 5.0)
            self.spread = max(1, int(self.mid * bps * 1e-4 + 0.5))

    def bid_ask(self) -> tuple[int, int]:
        bid = int(self.mid - self.spread / 2.0)
        bid = max(bid, 1)
        return bid, bid + self.spread

    def order(self, t_ns: int, regime: int, n_fills: int = 0) -> None:
        """One taker order at t_ns: appends its fills (oldest first) to ``pending``."""
        r = self.rng
        vol_mult = _BURST_VOL_MULT if regime else 1.0
        self.advance(t_ns, vol_mult)
        if r.random() >= _SIDE_PERSIST[regime]:
            self.side = "SELL" if self.side == "BUY" else "BUY"
        side = self.side
        if n_fills <= 0:
            n_fills = 1
            if r.random() >= _FILLS_P1[regime]:
                q = _FILLS_Q[regime]
                n_fills = 2
                while r.random() >= q and n_fills < 60:
                    n_fills += 1
        bid, ask = self.bid_ask()
        t_us = t_ns // 1000
        step_p = _LEVEL_STEP_PROB[regime]
        price_float = self.mid / self.scale
        units_per_quote = _SIZE_SCALE / price_float
        ln_med = math.log(self.median_notional)
        price = bid if side == "BUY" else ask
        pending = self.pending
        for i in range(n_fills):
            if i and r.random() < step_p:
                step = 1 if r.random() < 0.7 else 1 + int(r.expovariate(0.5))
                if side == "BUY":
                    price = max(1, price - step)
                else:
                    price += step
            if r.random() < 0.12:  # dust
                notional = math.exp(r.gauss(-4.0, 1.5))
            else:
                notional = math.exp(r.gauss(ln_med, 2.3))
                if r.random() < 0.005:
                    notional *= r.paretovariate(1.2)
            units = int(notional * units_per_quote + 0.5)
            units = max(units, 1)
            pending.append((self.next_id, price, units, t_us, side))
            self.next_id += 1
        # market impact: a sweep that emptied levels leaves the touch at its last fill
        # (symmetric, so impact alone adds no drift)
        if side == "BUY":
            if price < bid:
                self.mid = price + self.spread / 2.0 + 0.5
        elif price > ask:
            self.mid = price + 0.5 - self.spread / 2.0

    def publish(self, fills: list[tuple[int, int, int, int, str]]) -> None:
        vol = 0
        lo, hi = self.low24, self.high24
        for _, price, units, _, _ in fills:
            vol += units
            lo = min(lo, price)
            hi = max(hi, price)
        if lo != self.low24 or hi != self.high24:
            self.low24, self.high24 = lo, hi
            self.low52 = min(self.low52, lo)
            self.high52 = max(self.high52, hi)
            self._render_range()
        self.volume += vol
        self.last_price = fills[-1][1]

    # -- rendering ----------------------------------------------------------------

    def render_trades(self, fills) -> list[str]:
        """Fills oldest-first -> JSON objects newest-first."""
        prefix, price_str = self.trade_prefix, self.price_str
        out = []
        last_us = -1
        time_text = ""
        for tid, price, units, t_us, side in reversed(fills):
            if t_us != last_us:  # sweeps share one time
                last_us = t_us
                time_text = format_trade_time(t_us)
            out.append(
                f'{prefix}{tid}","price":"{price_str(price)}","size":"{_fmt_size(units)}",'
                f'"time":"{time_text}","side":"{side}"}}'
            )
        return out

    def render_ticker(self) -> str:
        getrandbits = self.rng.getrandbits
        price_str = self.price_str
        bid, ask = self.bid_ask()
        units_per_quote = _SIZE_SCALE * self.scale / self.mid
        table = self.quote_notional
        bq = int(table[getrandbits(8)] * units_per_quote) or 1
        aq = int(table[getrandbits(8)] * units_per_quote) or 1
        last = self.last_price
        if last != self.pct_key:
            self.pct_key = last
            self.pct_text = _fmt_pct((last / self.scale - self.open24 / self.scale) / (self.open24 / self.scale) * 100.0)
        return (
            f'{self.ticker_prefix}{price_str(last)}'
            f'","volume_24_h":"{_fmt_units(self.volume, _SIZE_SCALE, _SIZE_DECIMALS)}'
            f'{self.range_text}'
            f'","price_percent_chg_24_h":"{self.pct_text}'
            f'","best_bid":"{price_str(bid)}'
            f'","best_ask":"{price_str(ask)}'
            f'","best_bid_quantity":"{_fmt_size(bq)}'
            f'","best_ask_quantity":"{_fmt_size(aq)}"}}'
        )


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
    rng = random.Random(_derive_seed(seed, "connection"))
    regime_rng = random.Random(_derive_seed(seed, "regime"))
    start_ns = _to_ns(config.start)
    duration = config.duration_s
    end_ns = math.inf if duration is None or math.isinf(duration) else start_ns + round(duration * _NS_PER_S)
    products = [
        _Product(pid, product_profile(pid), seed, config.rate_multiplier, start_ns) for pid in config.products
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
    epoch = _EPOCH
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
    log_q = math.log(1.0 - _FILLS_Q[0])
    for ps in products:
        r = ps.rng
        if n_snap:
            ks: list[int] = []
            total = 0
            while total < n_snap:
                k = 1 if r.random() < _FILLS_P1[0] else 2 + int(math.log(1.0 - r.random()) / log_q)
                ks.append(k)
                total += k
            rate = max(ps.order_rate, 0.05)
            t = snap_ns - randint(1_000_000, 400_000_000)
            times = []
            for _ in ks:
                times.append(t)
                t -= int(r.expovariate(rate) * _NS_PER_S) + 1_000
            times.reverse()
            first_live_id = ps.next_id
            ps.next_id = first_live_id - total
            ps.last_t = times[0]
            for t_i, k in zip(times, ks):
                ps.order(t_i, 0, k)
            fills = ps.pending[-n_snap:]
            ps.pending = []
            ps.publish(fills)
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
    hb_interval = round(config.heartbeat_interval_s * _NS_PER_S)
    hb_next = start_ns + randint(5_000_000, _NS_PER_S)
    hb_mono = randint(20_000, 200_000) * _NS_PER_S + randint(0, _NS_PER_S - 1)  # server uptime
    hb_counter = hb_mono // _NS_PER_S
    quote_rate = config.ticker_only_rate
    for ps in products:
        r = ps.rng
        ps.next_arrival = start_ns + int(r.expovariate(ps.order_rate) * _NS_PER_S) if ps.order_rate > 0 else math.inf
        ps.next_quote = start_ns + int(r.expovariate(quote_rate) * _NS_PER_S) if quote_rate > 0 else math.inf

    regime = 0  # 0 calm, 1 burst (market wide)
    regime_rates = (_CALM_TO_BURST_PER_S / _NS_PER_S, _BURST_TO_CALM_PER_S / _NS_PER_S)
    regime_switch = start_ns + int(regime_rng.expovariate(regime_rates[0]))
    w_end = start_ns + randint(1, _WINDOW_NS)
    multi_prob = _MULTI_PRODUCT_PROB
    while True:
        w_start = w_end - _WINDOW_NS
        if w_start >= regime_switch:
            regime ^= 1
            regime_switch = w_start + int(regime_rng.expovariate(regime_rates[regime]))
        rate_mult = _BURST_RATE_MULT if regime else 1.0
        vol_mult = _BURST_VOL_MULT if regime else 1.0
        events: list[tuple[int, int, str]] = []  # (nominal ns, tie-break, events json)

        for pi, ps in enumerate(products):
            r = ps.rng
            while True:
                ta, tq = ps.next_arrival, ps.next_quote
                if ta <= tq:
                    if ta >= w_end:
                        break
                    ps.order(ta, regime)
                    ps.next_arrival = ta + 1 + int(r.expovariate(ps.order_rate * rate_mult) * _NS_PER_S)
                else:
                    if tq >= w_end:
                        break
                    ps.advance(tq, vol_mult)
                    ps.refresh_quote(regime)
                    events.append(
                        (tq + 100_000 + int(r.random() * 1_400_000), pi, '[{"type":"update","tickers":[' + ps.render_ticker() + "]}]")
                    )
                    ps.next_quote = tq + 1 + int(r.expovariate(quote_rate) * _NS_PER_S)

        while hb_next < w_end:
            body = (
                '[{"current_time":"' + _format_go_time(hb_next, hb_mono)
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
