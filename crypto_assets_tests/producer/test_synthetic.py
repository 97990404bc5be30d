"""Tests of producer.synthetic: a seeded market in the Coinbase Advanced Trade WebSocket format."""
from __future__ import annotations

import itertools
import json
import re
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from producer.coinbase_text import format_rfc3339_nanos, format_trade_time
from producer.synthetic import Frame, SyntheticConfig, generate_frames
from producer.synthetic_market import product_profile

UTC = timezone.utc  # datetime.UTC needs Python 3.11; the package supports 3.10
ENVELOPE_KEYS = ["channel", "client_id", "timestamp", "sequence_num", "events"]
TRADE_KEYS = ["product_id", "trade_id", "price", "size", "time", "side"]
TICKER_KEYS = [
    "type", "product_id", "price", "volume_24_h", "low_24_h", "high_24_h", "low_52_w", "high_52_w",
    "price_percent_chg_24_h", "best_bid", "best_ask", "best_bid_quantity", "best_ask_quantity",
]
# Go RFC3339Nano: 1-9 fractional digits, never a trailing zero, or no fraction at all
RE_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
RE_MICROS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,5}[1-9])?Z$")
RE_GO_TIME = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{0,8}[1-9])? \+0000 UTC m=\+(\d+)\.(\d{9})$"
)
RE_DECIMAL = re.compile(r"^(0|[1-9]\d*)(\.\d*[1-9])?$")  # no sign, no exponent, trimmed
RE_PCT = re.compile(r"^-?(0|[1-9]\d*)(\.\d*[1-9])?$")

DEFAULT = SyntheticConfig()


def _parse_ns(text: str) -> int:
    """RFC 3339 UTC 'Z' timestamp with up to 9 fractional digits -> epoch ns (exact)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$", text)
    assert m, text
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    frac = (m.group(2) or "").ljust(9, "0")
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


def _dt_ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


class Run:
    def __init__(self, config: SyntheticConfig):
        self.config = config
        self.frames: list[Frame] = list(generate_frames(config))
        self.msgs = [json.loads(f.text) for f in self.frames]

    def channel(self, name: str):
        return [(f, m) for f, m in zip(self.frames, self.msgs) if m["channel"] == name]

    def trades(self):
        """(frame index, event type, trade) in frame order, trades as they appear."""
        out = []
        for i, m in enumerate(self.msgs):
            if m["channel"] == "market_trades":
                for ev in m["events"]:
                    out.extend((i, ev["type"], t) for t in ev["trades"])
        return out


@pytest.fixture(scope="module")
def run() -> Run:
    return Run(DEFAULT)


@pytest.fixture(scope="module")
def run3() -> Run:
    return Run(SyntheticConfig(products=("BTC-USD", "ETH-USD", "SOL-USD"), seed=11, duration_s=900.0))


# --------------------------------------------------------------------------- formatting helpers


def test_format_rfc3339_nanos_matches_go_rfc3339nano():
    # values from recorded Coinbase frames
    for text in [
        "2026-07-15T03:40:10.69861218Z",
        "2026-07-15T03:40:11.184966387Z",
        "2024-10-04T07:04:40.812675707Z",
        "2026-07-15T03:40:11.78485046Z",
    ]:
        assert format_rfc3339_nanos(_parse_ns(text)) == text
    base = _parse_ns("2026-11-24T23:50:00Z")
    assert format_rfc3339_nanos(base) == "2026-11-24T23:50:00Z"
    assert format_rfc3339_nanos(base + 1) == "2026-11-24T23:50:00.000000001Z"
    assert format_rfc3339_nanos(base + 500_000_000) == "2026-11-24T23:50:00.5Z"
    assert format_rfc3339_nanos(base + 999_999_999) == "2026-11-24T23:50:00.999999999Z"
    assert format_rfc3339_nanos(_parse_ns("2028-02-29T23:59:59Z") + 10**9) == "2028-03-01T00:00:00Z"


def test_format_trade_time_trims_microseconds():
    for text in ["2026-07-15T03:40:11.45154Z", "2026-07-15T03:40:11.494341Z", "2019-08-14T20:42:27.265Z"]:
        assert format_trade_time(_parse_ns(text) // 1000) == text
    us = _parse_ns("2026-11-24T23:50:00Z") // 1000
    assert format_trade_time(us) == "2026-11-24T23:50:00Z"
    assert format_trade_time(us + 1) == "2026-11-24T23:50:00.000001Z"
    assert format_trade_time(us + 120_000) == "2026-11-24T23:50:00.12Z"


# --------------------------------------------------------------------------- determinism


def test_same_config_gives_identical_frames():
    cfg = replace(DEFAULT, duration_s=120.0)
    a = list(generate_frames(cfg))
    b = list(generate_frames(cfg))
    assert len(a) > 500
    assert [f.text for f in a] == [f.text for f in b]
    assert [f.received_at for f in a] == [f.received_at for f in b]


def test_different_seed_differs():
    a = [f.text for f in generate_frames(replace(DEFAULT, duration_s=60.0))]
    b = [f.text for f in generate_frames(replace(DEFAULT, duration_s=60.0, seed=8))]
    assert a != b
    assert a[0] != b[0]  # even the snapshot


def test_prefix_of_a_longer_run_is_identical():
    """The duration only cuts the stream: a longer run starts with the same frames."""
    short = [f.text for f in generate_frames(replace(DEFAULT, duration_s=30.0))]
    long = [f.text for f in itertools.islice(generate_frames(replace(DEFAULT, duration_s=None)), len(short) + 50)]
    assert long[: len(short)] == short


# --------------------------------------------------------------------------- envelope


def test_envelope_key_order_compact_json_and_sequence(run: Run):
    assert len(run.frames) > 3000
    for i, (frame, msg) in enumerate(zip(run.frames, run.msgs)):
        assert list(msg) == ENVELOPE_KEYS, frame.text[:200]
        assert msg["client_id"] == ""
        assert msg["sequence_num"] == i
        assert isinstance(msg["events"], list) and msg["events"]
        # compact serialisation, same bytes as json.dumps(..., separators=(",", ":"))
        assert frame.text == json.dumps(msg, separators=(",", ":"))
    assert {m["channel"] for m in run.msgs} == {"subscriptions", "market_trades", "ticker", "heartbeats"}


def test_timestamp_formats(run: Run):
    for msg in run.msgs:
        assert RE_NANOS.match(msg["timestamp"]), msg["timestamp"]
    for _, _, trade in run.trades():
        assert RE_MICROS.match(trade["time"]), trade["time"]
    # nanosecond precision is actually used (not only microseconds)
    assert any(len(m["timestamp"]) > len("2026-11-24T23:50:00.123456Z") for m in run.msgs)


def test_received_at_order_and_latency(run: Run):
    start = DEFAULT.start
    assert run.frames[0].received_at == start
    prev = None
    prev_ts = None
    for frame, msg in zip(run.frames, run.msgs):
        assert frame.received_at.tzinfo is not None and frame.received_at.utcoffset() == timedelta(0)
        recv_ns = _dt_ns(frame.received_at)
        ts_ns = _parse_ns(msg["timestamp"])
        assert recv_ns > ts_ns
        assert recv_ns - ts_ns < 50_000_000  # a few ms of simulated latency
        if prev is not None:
            assert frame.received_at >= prev
            assert ts_ns > prev_ts  # the server stamps frames in sequence order
        prev, prev_ts = frame.received_at, ts_ns


def test_duration_is_respected(run: Run):
    end = DEFAULT.start + timedelta(seconds=DEFAULT.duration_s)
    assert run.frames[-1].received_at <= end
    assert run.frames[-1].received_at >= end - timedelta(seconds=2)
    short = list(generate_frames(replace(DEFAULT, duration_s=5.0)))
    assert short[-1].received_at <= DEFAULT.start + timedelta(seconds=5)
    assert len(short) < len(run.frames) / 50


def test_endless_mode_keeps_going():
    cfg = replace(DEFAULT, duration_s=None)
    frames = list(itertools.islice(generate_frames(cfg), 15_000))
    assert len(frames) == 15_000
    assert frames[-1].received_at > DEFAULT.start + timedelta(seconds=700)
    assert [json.loads(f.text)["sequence_num"] for f in frames[-3:]] == [14_997, 14_998, 14_999]


# --------------------------------------------------------------------------- connection start


def test_first_frames_snapshots_and_cumulative_acks(run3: Run):
    products = list(run3.config.products)
    msgs = run3.msgs
    first = msgs[0]
    assert first["channel"] == "market_trades"
    assert first["events"][0]["type"] == "snapshot"
    snap = first["events"][0]["trades"]
    assert len(snap) == 50 * len(products)
    assert {t["product_id"] for t in snap} == set(products)
    for p in products:
        assert sum(t["product_id"] == p for t in snap) == 50

    # first ack arrives after the first snapshot, then the acks grow cumulatively
    acks = [m["events"][0]["subscriptions"] for m in msgs if m["channel"] == "subscriptions"]
    assert msgs[1]["channel"] == "subscriptions"
    assert acks == [
        {"market_trades": products},
        {"market_trades": products, "ticker": products},
        {"heartbeats": ["heartbeats"], "market_trades": products, "ticker": products},
    ]
    ack_texts = [f.text for f, m in zip(run3.frames, msgs) if m["channel"] == "subscriptions"]
    assert '"subscriptions":{"heartbeats":["heartbeats"],"market_trades":' in ack_texts[-1]

    # the first ticker frame of every product is its snapshot, before any ticker update
    ticker_msgs = [m for m in msgs if m["channel"] == "ticker"]
    snaps = ticker_msgs[: len(products)]
    assert [m["events"][0]["type"] for m in snaps] == ["snapshot"] * len(products)
    assert [m["events"][0]["tickers"][0]["product_id"] for m in snaps] == products
    assert all(m["events"][0]["type"] == "update" for m in ticker_msgs[len(products):])
    # and all live market_trades frames are updates
    assert all(m["events"][0]["type"] == "update" for m in msgs[1:] if m["channel"] == "market_trades")
    # acks all come before the first heartbeat
    first_hb = next(i for i, m in enumerate(msgs) if m["channel"] == "heartbeats")
    last_ack = max(i for i, m in enumerate(msgs) if m["channel"] == "subscriptions")
    assert last_ack < first_hb


def test_snapshot_trades_setting():
    frames = list(generate_frames(replace(DEFAULT, duration_s=1.0, snapshot_trades=3)))
    trades = json.loads(frames[0].text)["events"][0]["trades"]
    assert [t["product_id"] for t in trades].count("BTC-USD") == 3
    assert [t["product_id"] for t in trades].count("ETH-USD") == 3


# --------------------------------------------------------------------------- trades


def test_trade_ids_consecutive_and_newest_first(run3: Run):
    by_product: dict[str, list[int]] = defaultdict(list)
    for _, m in run3.channel("market_trades"):
        for ev in m["events"]:
            in_frame: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for t in ev["trades"]:
                assert list(t) == TRADE_KEYS
                assert re.fullmatch(r"[1-9]\d*", t["trade_id"])
                in_frame[t["product_id"]].append((int(t["trade_id"]), _parse_ns(t["time"])))
            for p, items in in_frame.items():
                ids = [i for i, _ in items]
                times = [ts for _, ts in items]
                assert all(a > b for a, b in itertools.pairwise(ids)), ids  # newest first
                assert all(a >= b for a, b in itertools.pairwise(times))
                by_product[p].extend(reversed(ids))
    assert set(by_product) == set(run3.config.products)
    for p, ids in by_product.items():
        assert len(ids) > 1000
        assert ids == list(range(ids[0], ids[0] + len(ids))), p  # no gap, no repeat
        assert ids[0] > 1_000_000


def test_trade_times_before_envelope_and_monotonic(run3: Run):
    last_time: dict[str, int] = {}
    for frame, m in run3.channel("market_trades"):
        ts = _parse_ns(m["timestamp"])
        for ev in m["events"]:
            for t in reversed(ev["trades"]):
                tt = _parse_ns(t["time"])
                assert tt <= ts
                assert tt >= last_time.get(t["product_id"], 0)
                last_time[t["product_id"]] = tt


def test_trade_values(run3: Run):
    sizes = defaultdict(list)
    for _, _, t in run3.trades():
        for key in TRADE_KEYS:
            assert isinstance(t[key], str)
        assert t["side"] in ("BUY", "SELL")
        assert RE_DECIMAL.match(t["price"]) and Decimal(t["price"]) > 0
        assert RE_DECIMAL.match(t["size"]) and Decimal(t["size"]) > 0
        assert -Decimal(t["price"]).as_tuple().exponent <= 2  # tick 0.01
        assert -Decimal(t["size"]).as_tuple().exponent <= 8
        sizes[t["product_id"]].append(Decimal(t["size"]))
    btc = sorted(sizes["BTC-USD"])
    median = btc[len(btc) // 2]
    assert btc[0] < Decimal("0.000001")  # dust trades exist
    assert btc[-1] / median > 1000  # heavy tail
    sides = [t["side"] for _, _, t in run3.trades()]
    assert 0.3 < sides.count("BUY") / len(sides) < 0.7


def test_side_persistence(run3: Run):
    sides = [t["side"] for _, _, t in run3.trades() if t["product_id"] == "BTC-USD"]
    same = sum(a == b for a, b in itertools.pairwise(sides)) / (len(sides) - 1)
    assert same > 0.65  # autocorrelated, not a coin flip


def test_sweeps_share_a_time(run: Run):
    shared = 0
    for _, m in run.channel("market_trades"):
        for ev in m["events"]:
            times = [(t["product_id"], t["time"]) for t in ev["trades"]]
            shared += len(times) - len(set(times))
    assert shared > 100


def test_multi_product_update_frames_exist(run: Run):
    multi = [
        m for _, m in run.channel("market_trades")
        if m["events"][0]["type"] == "update" and len({t["product_id"] for t in m["events"][0]["trades"]}) > 1
    ]
    assert multi
    single = [
        m for _, m in run.channel("market_trades")
        if len({t["product_id"] for t in m["events"][0]["trades"]}) == 1
    ]
    assert len(multi) < 0.05 * len(single)  # rare
    for m in multi:  # newest first across the products too
        times = [_parse_ns(t["time"]) for t in m["events"][0]["trades"]]
        assert times == sorted(times, reverse=True)


def test_mean_trade_rate_matches_configuration():
    counts = defaultdict(int)
    seeds = (1, 2, 3, 4)
    for seed in seeds:
        r = Run(replace(DEFAULT, seed=seed))
        for _, kind, t in r.trades():
            if kind == "update":
                counts[t["product_id"]] += 1
    seconds = 600.0 * len(seeds)
    btc_rate = counts["BTC-USD"] / seconds
    eth_rate = counts["ETH-USD"] / seconds
    assert 7.0 * 0.6 < btc_rate < 7.0 * 1.5, btc_rate
    assert 1.0 < eth_rate < btc_rate


def test_rate_multiplier_scales_trade_count():
    def n_trades(mult: float) -> int:
        frames = generate_frames(replace(DEFAULT, seed=5, rate_multiplier=mult, duration_s=1200.0))
        return sum(
            len(ev["trades"])
            for m in (json.loads(f.text) for f in frames)
            if m["channel"] == "market_trades"
            for ev in m["events"]
            if ev["type"] == "update"
        )

    base, double = n_trades(1.0), n_trades(2.0)
    assert 1.5 < double / base < 2.6
    assert n_trades(0.0) == 0


def test_price_levels_realistic(run3: Run):
    last = {}
    for _, _, t in run3.trades():
        last[t["product_id"]] = float(t["price"])
    assert 95_000 * 0.9 < last["BTC-USD"] < 95_000 * 1.1
    assert 3_500 * 0.9 < last["ETH-USD"] < 3_500 * 1.1
    assert 180 * 0.85 < last["SOL-USD"] < 180 * 1.15


# --------------------------------------------------------------------------- ticker


def test_ticker_values_and_consistency_with_trades(run3: Run):
    last_trade_price: dict[str, Decimal] = {}
    traded: dict[str, Decimal] = defaultdict(Decimal)
    first_volume: dict[str, Decimal] = {}
    updates_after_trades = 0
    for _, m in zip(run3.frames, run3.msgs):
        if m["channel"] == "market_trades":
            for ev in m["events"]:
                newest = {}  # trades are newest first: the first one of a product is its last
                for t in ev["trades"]:
                    newest.setdefault(t["product_id"], Decimal(t["price"]))
                    if ev["type"] == "update":
                        traded[t["product_id"]] += Decimal(t["size"])
                last_trade_price.update(newest)
        elif m["channel"] == "ticker":
            assert len(m["events"]) == 1
            tickers = m["events"][0]["tickers"]
            assert len(tickers) == 1
            tk = tickers[0]
            assert list(tk) == TICKER_KEYS
            assert tk["type"] == "ticker"
            for key in TICKER_KEYS:
                assert isinstance(tk[key], str), key
            for key in TICKER_KEYS[2:]:
                if key != "price_percent_chg_24_h":
                    assert RE_DECIMAL.match(tk[key]), (key, tk[key])
            assert RE_PCT.match(tk["price_percent_chg_24_h"])
            p = tk["product_id"]
            price = Decimal(tk["price"])
            bid, ask = Decimal(tk["best_bid"]), Decimal(tk["best_ask"])
            assert price > 0 and Decimal(tk["best_bid_quantity"]) > 0 and Decimal(tk["best_ask_quantity"]) > 0
            assert 0 < bid < ask
            assert (ask - bid) / ask < Decimal("0.0010")  # at most a few bps
            assert (ask - bid) / ask < Decimal("0.0006") or p != "BTC-USD"
            assert Decimal(tk["low_24_h"]) <= price <= Decimal(tk["high_24_h"])
            assert Decimal(tk["low_52_w"]) <= Decimal(tk["low_24_h"])
            assert Decimal(tk["high_24_h"]) <= Decimal(tk["high_52_w"])
            # price is the last published trade's price
            assert price == last_trade_price[p]
            # volume grows exactly by the traded size
            vol = Decimal(tk["volume_24_h"])
            first_volume.setdefault(p, vol - traded[p])
            assert vol == first_volume[p] + traded[p]
            updates_after_trades += 1
    assert updates_after_trades > 1000


def test_one_ticker_update_per_trade_batch_plus_quote_updates(run: Run):
    n_trade_batches = 0
    n_ticker_updates = 0
    for m in run.msgs:
        if m["channel"] == "market_trades" and m["events"][0]["type"] == "update":
            n_trade_batches += len({t["product_id"] for t in m["events"][0]["trades"]})
        if m["channel"] == "ticker" and m["events"][0]["type"] == "update":
            n_ticker_updates += 1
    quote_only = n_ticker_updates - n_trade_batches
    expected = DEFAULT.ticker_only_rate * len(DEFAULT.products) * DEFAULT.duration_s
    assert 0.7 * expected < quote_only < 1.3 * expected


def test_typical_btc_spread_is_one_tick(run: Run):
    spreads = [
        Decimal(tk["best_ask"]) - Decimal(tk["best_bid"])
        for m in run.msgs if m["channel"] == "ticker"
        for tk in m["events"][0]["tickers"] if tk["product_id"] == "BTC-USD"
    ]
    one_tick = sum(s == Decimal("0.01") for s in spreads) / len(spreads)
    assert 0.4 < one_tick < 0.95


# --------------------------------------------------------------------------- heartbeats


def test_heartbeats_every_second(run: Run):
    hbs = [m for m in run.msgs if m["channel"] == "heartbeats"]
    assert abs(len(hbs) - DEFAULT.duration_s) <= 2
    counters = []
    times = []
    for m in hbs:
        (ev,) = m["events"]
        assert list(ev) == ["current_time", "heartbeat_counter"]
        assert isinstance(ev["heartbeat_counter"], int)
        mt = RE_GO_TIME.match(ev["current_time"])
        assert mt, ev["current_time"]
        assert int(mt.group(2)) == ev["heartbeat_counter"]  # counter = whole seconds of uptime
        wall = ev["current_time"].split(" +0000")[0].replace(" ", "T") + "Z"
        assert _parse_ns(wall) < _parse_ns(m["timestamp"])
        counters.append(ev["heartbeat_counter"])
        times.append(_parse_ns(m["timestamp"]))
    assert counters == list(range(counters[0], counters[0] + len(counters)))
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    assert all(0.9 < g < 1.1 for g in gaps)


def test_heartbeat_interval_setting():
    frames = list(generate_frames(replace(DEFAULT, duration_s=60.0, heartbeat_interval_s=5.0)))
    hbs = [f for f in frames if json.loads(f.text)["channel"] == "heartbeats"]
    assert 11 <= len(hbs) <= 13


# --------------------------------------------------------------------------- products and config


def test_unknown_product_is_deterministic():
    prof = product_profile("FOO-USD")
    assert prof == product_profile("FOO-USD")
    assert prof.price_level > 0 and prof.trades_per_s > 0 and prof.trade_id_anchor > 1_000_000
    assert product_profile("BAR-USD") != prof
    cfg = SyntheticConfig(products=("FOO-USD",), duration_s=120.0)
    texts = [f.text for f in generate_frames(cfg)]
    assert texts == [f.text for f in generate_frames(cfg)]
    prices = [
        Decimal(t["price"])
        for m in map(json.loads, texts) if m["channel"] == "market_trades"
        for t in m["events"][0]["trades"]
    ]
    assert prices and all(p > 0 for p in prices)
    tick_decimals = prof.price_decimals
    assert all(-p.as_tuple().exponent <= tick_decimals for p in prices)
    mid = sorted(prices)[len(prices) // 2]
    assert Decimal(prof.price_level) * Decimal("0.8") < mid < Decimal(prof.price_level) * Decimal("1.2")


def test_btc_trade_ids_are_realistic(run: Run):
    first_id = int(json.loads(run.frames[0].text)["events"][0]["trades"][0]["trade_id"])
    assert 1_000_000_000 < first_id < 1_300_000_000


def test_invalid_config_rejected():
    with pytest.raises(ValueError):
        generate_frames(SyntheticConfig(products=()))
    with pytest.raises(ValueError):
        generate_frames(SyntheticConfig(products=("BTC-USD", "BTC-USD")))
    with pytest.raises(ValueError):
        generate_frames(SyntheticConfig(rate_multiplier=-1.0))
    with pytest.raises(ValueError):
        generate_frames(SyntheticConfig(heartbeat_interval_s=0.0))
