"""The synthetic market model behind ``producer.synthetic``: products, their prices and trades.

Per product (:class:`SimulatedProduct`): a geometric random walk of the mid (in ticks) whose
volatility follows a market-wide calm / burst regime (the regime itself is switched by the
run loop in ``producer.synthetic``); Poisson taker orders (rate scaled by ``rate_multiplier``
and multiplied during bursts); each taker order fills one or more resting levels at the same
microsecond (sweeps; bigger in bursts) and moves the mid; the maker side is autocorrelated;
sizes are lognormal in notional with a Pareto tail. A product also keeps its 24 h / 52 w
statistics and renders its own trades and ticker as the JSON objects inside ``events``.

Static parameters per product (:class:`ProductProfile`, :func:`product_profile`) are known
defaults for the major pairs and derived deterministically from the name for any other.

Every draw comes from ``random.Random`` instances seeded through :func:`derive_seed`
(SHA-256 of the run's seed and a label, per product the product name): no wall clock,
global random state or ``hash()``.

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
from dataclasses import dataclass
from datetime import datetime

from producer.coinbase_text import (
    NS_PER_S,
    SIZE_DECIMALS,
    SIZE_SCALE,
    UTC,
    format_pct,
    format_size,
    format_trade_time,
    format_units,
)

__all__ = [
    "BURST_RATE_MULT",
    "BURST_TO_CALM_PER_S",
    "BURST_VOL_MULT",
    "CALM_TO_BURST_PER_S",
    "ProductProfile",
    "SimulatedProduct",
    "derive_seed",
    "product_profile",
]

Fill = tuple[int, int, int, int, str]  # (trade_id, price in ticks, size in 1e-8 units, time in us, maker side)


# --------------------------------------------------------------------------- profiles

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
_ID_ANCHOR_NS = int(datetime(2026, 7, 15, 3, 40, 10, tzinfo=UTC).timestamp()) * NS_PER_S

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


# --------------------------------------------------------------------------- model constants

# market-wide regime (switched by the run loop): calm <-> burst
CALM_TO_BURST_PER_S = 1.0 / 240.0
BURST_TO_CALM_PER_S = 1.0 / 25.0
BURST_RATE_MULT = 3.0
BURST_VOL_MULT = 4.0
_SIDE_PERSIST = (0.75, 0.85)  # P(same maker side as previous order), calm / burst
# fills per taker order: 1 with prob p1, else 2 + Geometric(q) failures
_FILLS_P1 = (0.70, 0.40)
_FILLS_Q = (0.50, 0.30)
_LEVEL_STEP_PROB = (0.30, 0.45)  # a sweep moves to the next price level
_SECONDS_PER_YEAR = 365.0 * 86400.0


def _mean_fills(regime: int) -> float:
    p1, q = _FILLS_P1[regime], _FILLS_Q[regime]
    return p1 + (1.0 - p1) * (2.0 + (1.0 - q) / q)


_P_BURST = CALM_TO_BURST_PER_S / (CALM_TO_BURST_PER_S + BURST_TO_CALM_PER_S)
# mean fills per unit of calm order rate, averaged over the regimes
_FILLS_PER_ORDER_RATE = (1.0 - _P_BURST) * _mean_fills(0) + _P_BURST * BURST_RATE_MULT * _mean_fills(1)


def derive_seed(seed: int, label: str) -> int:
    """A 64-bit seed for one random stream of a run: SHA-256 of the run's seed and ``label``."""
    digest = hashlib.sha256(f"{seed}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --------------------------------------------------------------------------- per product state


class SimulatedProduct:
    """The market of one product: mid and quote, taker orders and their fills, 24 h statistics.

    Fills of orders not yet published wait in ``pending`` (oldest first) until the run loop
    publishes them; ``next_arrival`` / ``next_quote`` are the run loop's schedule for this product.
    """

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
        self.rng = random.Random(derive_seed(seed, "product/" + pid))
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
        elapsed_s = (start_ns - _ID_ANCHOR_NS) / NS_PER_S
        self.next_id = max(1_000_000, profile.trade_id_anchor + int(elapsed_s * profile.trades_per_s))
        self.next_arrival = math.inf
        self.next_quote = math.inf
        self.pending: list[Fill] = []
        p = self.mid
        self.last_price = int(p)
        notional_24h = 300e6 * profile.trades_per_s / 7.0 * math.exp(r.gauss(0.0, 0.25))
        self.volume = int(notional_24h / (p / self.scale) * SIZE_SCALE)
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
            text = cache[ticks] = format_units(ticks, self.scale, self.dec)
        return text

    def _render_range(self) -> None:
        scale, dec = self.scale, self.dec
        self.range_text = (
            f'","low_24_h":"{format_units(self.low24, scale, dec)}'
            f'","high_24_h":"{format_units(self.high24, scale, dec)}'
            f'","low_52_w":"{format_units(self.low52, scale, dec)}'
            f'","high_52_w":"{format_units(self.high52, scale, dec)}'
        )

    # -- dynamics ---------------------------------------------------------------

    def advance(self, t_ns: int, vol_mult: float) -> None:
        dt = t_ns - self.last_t
        if dt > 0:
            self.mid *= math.exp(self.sigma_s * vol_mult * math.sqrt(dt / NS_PER_S) * self.rng.gauss(0.0, 1.0))
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
        vol_mult = BURST_VOL_MULT if regime else 1.0
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
        units_per_quote = SIZE_SCALE / price_float
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

    def history(self, n: int, last_ns: int) -> list[Fill]:
        """The last ``n`` trades before the run starts, the newest at ``last_ns``, published.

        Calm-regime orders going back in time; trade ids end just below the first live id.
        """
        r = self.rng
        log_q = math.log(1.0 - _FILLS_Q[0])
        ks: list[int] = []
        total = 0
        while total < n:
            k = 1 if r.random() < _FILLS_P1[0] else 2 + int(math.log(1.0 - r.random()) / log_q)
            ks.append(k)
            total += k
        rate = max(self.order_rate, 0.05)
        t = last_ns
        times = []
        for _ in ks:
            times.append(t)
            t -= int(r.expovariate(rate) * NS_PER_S) + 1_000
        times.reverse()
        self.next_id -= total
        self.last_t = times[0]
        for t_i, k in zip(times, ks):
            self.order(t_i, 0, k)
        fills = self.pending[-n:]
        self.pending = []
        self.publish(fills)
        return fills

    def publish(self, fills: list[Fill]) -> None:
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

    def render_trades(self, fills: list[Fill]) -> list[str]:
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
                f'{prefix}{tid}","price":"{price_str(price)}","size":"{format_size(units)}",'
                f'"time":"{time_text}","side":"{side}"}}'
            )
        return out

    def render_ticker(self) -> str:
        getrandbits = self.rng.getrandbits
        price_str = self.price_str
        bid, ask = self.bid_ask()
        units_per_quote = SIZE_SCALE * self.scale / self.mid
        table = self.quote_notional
        bq = int(table[getrandbits(8)] * units_per_quote) or 1
        aq = int(table[getrandbits(8)] * units_per_quote) or 1
        last = self.last_price
        if last != self.pct_key:
            self.pct_key = last
            self.pct_text = format_pct((last / self.scale - self.open24 / self.scale) / (self.open24 / self.scale) * 100.0)
        return (
            f'{self.ticker_prefix}{price_str(last)}'
            f'","volume_24_h":"{format_units(self.volume, SIZE_SCALE, SIZE_DECIMALS)}'
            f'{self.range_text}'
            f'","price_percent_chg_24_h":"{self.pct_text}'
            f'","best_bid":"{price_str(bid)}'
            f'","best_ask":"{price_str(ask)}'
            f'","best_bid_quantity":"{format_size(bq)}'
            f'","best_ask_quantity":"{format_size(aq)}"}}'
        )

