"""A local WebSocket server speaking the Coinbase Advanced Trade protocol, for tests and benchmarks.

Standard library only (socket, threading, RFC 6455 handshake and framing). It behaves like the
real endpoint where the producer can tell: a client must subscribe within `subscribe_timeout_s`
or is closed; each `subscribe` is acknowledged with a cumulative `subscriptions` message (the
market_trades one after its snapshot, as on the live feed); a `market_trades` snapshot of the
latest trades and a `ticker` snapshot per product come first, then updates and heartbeats;
`sequence_num` is one counter per connection across channels.

The market is a synthetic session (producer/synthetic.py, the exact Coinbase format) that keeps
running across connections: what happens while a client is away is lost to it, apart from
what the next snapshot repeats. A plan per connection injects faults after a number of
messages: close codes (1001 ...), abrupt TCP close (the client sees 1006), skipped sequence
numbers, lost messages, Coinbase errors, garbage, unknown channels, silence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from producer.coinbase_text import format_rfc3339_nanos
from producer.synthetic import SyntheticConfig, generate_frames

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAMPLES = Path(__file__).resolve().parents[2] / "producer" / "samples" / "samples_advanced_trade.ndjson"
SAMPLE_LINES = SAMPLES.read_text().splitlines()
ERROR_SAMPLE = SAMPLE_LINES[19]  # a real Coinbase error message
L2_SAMPLE = SAMPLE_LINES[20]  # a real l2_data message: a channel the producer did not ask for


# ---- RFC 6455 framing ------------------------------------------------------------------------


def encode_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed the connection")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    b1, b2 = _recv_exact(sock, 2)
    opcode = b1 & 0x0F
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _recv_exact(sock, 8))[0]
    mask = _recv_exact(sock, 4) if b2 & 0x80 else None
    payload = _recv_exact(sock, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


# ---- the market --------------------------------------------------------------------------------


class Market:
    """The synthetic session's update messages in order, plus what a snapshot needs at any point."""

    def __init__(self, products=("BTC-USD", "ETH-USD"), seed: int = 7, duration_s: float = 60.0,
                 rate_multiplier: float = 1.0, start: datetime | None = None, snapshot_trades: int = 50):
        config = SyntheticConfig(
            products=tuple(products), seed=seed, duration_s=duration_s, rate_multiplier=rate_multiplier,
            start=start or datetime(2026, 11, 24, 23, 50, tzinfo=timezone.utc), snapshot_trades=snapshot_trades,
        )
        self.products = tuple(products)
        self.snapshot_trades = snapshot_trades
        self.updates: list[dict] = []
        self.history: dict[str, deque] = {p: deque(maxlen=snapshot_trades) for p in products}
        self.latest_ticker: dict[str, dict] = {}
        for frame in generate_frames(config):
            msg = json.loads(frame.text)
            channel = msg["channel"]
            if channel == "subscriptions":
                continue
            event = msg["events"][0]
            if event.get("type") == "snapshot":  # the session's opening state
                if channel == "market_trades":
                    for trade in reversed(event["trades"]):
                        self.history[trade["product_id"]].append(trade)
                else:
                    for tk in event["tickers"]:
                        self.latest_ticker[tk["product_id"]] = tk
                continue
            self.updates.append(msg)
        self.cursor = 0
        self._lock = threading.Lock()

    def take(self) -> dict | None:
        """The next update message (the market moves on whether anyone listens or not)."""
        with self._lock:
            if self.cursor >= len(self.updates):
                return None
            msg = self.updates[self.cursor]
            self.cursor += 1
            self._remember(msg)
            return msg

    def _remember(self, msg: dict) -> None:
        if msg["channel"] == "market_trades":
            for event in msg["events"]:
                for trade in reversed(event["trades"]):  # oldest first into the history
                    self.history[trade["product_id"]].append(trade)
        elif msg["channel"] == "ticker":
            for event in msg["events"]:
                for tk in event["tickers"]:
                    self.latest_ticker[tk["product_id"]] = tk

    def snapshot_trades_newest_first(self, products) -> list[dict]:
        with self._lock:
            trades = [t for p in products for t in self.history[p]]
        return sorted(trades, key=lambda t: (t["time"], int(t["trade_id"])), reverse=True)

    def end_now(self) -> None:
        """The session ends here: what was not sent yet never will be."""
        with self._lock:
            del self.updates[self.cursor:]

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.updates)


# ---- connections -------------------------------------------------------------------------------


@dataclass
class Action:
    """Something the server does on a connection after `after` update messages were sent on it."""

    after: int
    kind: str  # close | abrupt | skip_seq | lose | error | garbage | binary_garbage | unknown_channel | pause
    arg: object = None


@dataclass
class ServerConnection:
    index: int
    opened: float
    subscribes: list[tuple[float, dict]] = field(default_factory=list)  # (seconds after open, message)
    sent: list[str] = field(default_factory=list)  # every text frame sent, in order
    sent_binary: list[bytes] = field(default_factory=list)
    updates_sent: int = 0
    skipped_seq: int = 0
    lost_messages: list[dict] = field(default_factory=list)
    ended: str = ""
    closed_by_server: bool = False


class FakeCoinbase:
    """Serves one `Market` to any number of successive connections; `plans[i]` scripts connection i."""

    def __init__(self, market: Market, plans: dict[int, list[Action]] | None = None, *,
                 rate: float | None = None, subscribe_timeout_s: float = 5.0, heartbeat_idle_s: float = 0.5,
                 client_id_absent: bool = False):
        self.market = market
        self.plans = plans or {}
        self.rate = rate
        self.subscribe_timeout_s = subscribe_timeout_s
        self.heartbeat_idle_s = heartbeat_idle_s
        self.client_id_absent = client_id_absent
        self.connections: list[ServerConnection] = []
        self.exhausted = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, name="fake-coinbase-accept", daemon=True)
        self._open_socks: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> FakeCoinbase:
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            for s in self._open_socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> FakeCoinbase:  # noqa: PYI034 (typing.Self needs 3.11)
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what was sent (the truth the tests compare Kafka with) -----------------------------

    def sent_messages(self) -> list[tuple[int, str]]:
        """(connection index, text) of every text frame sent, in order."""
        return [(c.index, text) for c in self.connections for text in c.sent]

    def sent_data_messages(self) -> list[tuple[int, dict, str]]:
        out = []
        for c in self.connections:
            for text in c.sent:
                try:
                    msg = json.loads(text)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("channel") in ("market_trades", "ticker"):
                    out.append((c.index, msg, text))
        return out

    # ---- server ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = ServerConnection(len(self.connections), time.monotonic())
            self.connections.append(conn)
            with self._lock:
                self._open_socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock, conn), name=f"fake-coinbase-{conn.index}", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket, conn: ServerConnection) -> None:
        try:
            handshake(sock)
        except (OSError, ConnectionError, ValueError):
            conn.ended = "handshake failed"
            sock.close()
            return
        session = _Session(self, sock, conn)
        session.run()


class _Session:
    def __init__(self, server: FakeCoinbase, sock: socket.socket, conn: ServerConnection):
        self.server = server
        self.sock = sock
        self.conn = conn
        self.seq = 0
        self.subscribed: dict[str, list[str]] = {}
        self.send_lock = threading.Lock()
        self.closed = threading.Event()
        self.plan = sorted(server.plans.get(conn.index, []), key=lambda a: a.after)
        self.client_id = None if server.client_id_absent else ""
        self._pending: list[tuple[str, list[str]]] = []  # subscribes read, not yet answered

    # -- sending
    def _send_raw(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self._send_raw(encode_frame(0x1, text.encode()))
        self.conn.sent.append(text)

    def send_msg(self, channel: str, events: list, timestamp: str | None = None) -> None:
        msg = {"channel": channel}
        if self.client_id is not None:
            msg["client_id"] = self.client_id
        msg["timestamp"] = timestamp or format_rfc3339_nanos(time.time_ns())
        msg["sequence_num"] = self.seq
        msg["events"] = events
        self.seq += 1
        self.send_text(json.dumps(msg, separators=(",", ":")))

    def close(self, code: int, reason: str = "") -> None:
        try:
            self._send_raw(encode_frame(0x8, struct.pack("!H", code) + reason.encode()))
        except OSError:
            pass
        self.conn.closed_by_server = True
        self.conn.ended = f"close {code}"
        self.closed.wait(1.0)  # the client answers with its close frame
        self._drop()

    def abrupt(self) -> None:
        self.conn.closed_by_server = True
        self.conn.ended = "abrupt"
        self._drop()

    def _drop(self) -> None:
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- client messages
    def _reader(self) -> None:
        try:
            while not self.closed.is_set():
                opcode, payload = read_frame(self.sock)
                if opcode == 0x8:
                    if not self.conn.closed_by_server:
                        try:
                            self._send_raw(encode_frame(0x8, payload[:2]))
                        except OSError:
                            pass
                        self.conn.ended = self.conn.ended or "client closed"
                    break
                if opcode == 0x9:
                    self._send_raw(encode_frame(0xA, payload))
                    continue
                if opcode == 0x1:
                    self._on_client_message(payload.decode())
        except (OSError, ConnectionError):
            pass
        finally:
            self.closed.set()

    def _on_client_message(self, text: str) -> None:
        msg = json.loads(text)
        self.conn.subscribes.append((time.monotonic() - self.conn.opened, msg))
        if msg.get("type") != "subscribe":
            return
        channel = msg["channel"]
        self._pending.append((channel, msg.get("product_ids") or []))

    def _ack(self) -> None:
        subs = {k: (v if k != "heartbeats" else ["heartbeats"]) for k, v in sorted(self.subscribed.items())}
        self.send_msg("subscriptions", [{"subscriptions": subs}])

    def _apply_subscribe(self, channel: str, products: list[str]) -> None:
        market = self.server.market
        if channel == "market_trades":
            self.subscribed[channel] = products
            trades = market.snapshot_trades_newest_first(products)
            self.send_msg("market_trades", [{"type": "snapshot", "trades": trades}])
            self._ack()
        elif channel == "ticker":
            self.subscribed[channel] = products
            self._ack()
            for p in products:
                tk = market.latest_ticker.get(p)
                if tk is not None:
                    self.send_msg("ticker", [{"type": "snapshot", "tickers": [tk]}])
        elif channel == "heartbeats":
            self.subscribed[channel] = []
            self._ack()
        else:
            self.send_text(json.dumps({"type": "error", "message": f"unknown channel {channel}"}))

    # -- the session
    def run(self) -> None:
        reader = threading.Thread(target=self._reader, daemon=True)
        reader.start()
        conn = self.conn
        deadline = conn.opened + self.server.subscribe_timeout_s
        try:
            while not self._pending:  # Coinbase closes a connection that does not subscribe in time
                if self.closed.wait(0.01):
                    return
                if time.monotonic() > deadline:
                    self.close(1008, "no subscribe message within 5 s")
                    return
            self._stream()
        except (OSError, ConnectionError):
            conn.ended = conn.ended or "send failed"
        finally:
            if not self.closed.is_set():
                self._drop()
            reader.join(timeout=2)

    def _stream(self) -> None:
        server, market, conn = self.server, self.server.market, self.conn
        interval = 1.0 / server.rate if server.rate else 0.0
        next_send = time.monotonic()
        last_heartbeat = time.monotonic()
        while not self.closed.is_set() and not server._stop.is_set():
            while self._pending:
                self._apply_subscribe(*self._pending.pop(0))
            while self.plan and self.plan[0].after <= conn.updates_sent:
                if self._act(self.plan.pop(0)):
                    return
            if not {"market_trades", "ticker", "heartbeats"} <= set(self.subscribed):
                time.sleep(0.005)  # the remaining subscribes are on their way
                continue
            msg = market.take()
            if msg is None:
                server.exhausted.set()
                if time.monotonic() - last_heartbeat >= server.heartbeat_idle_s:
                    last_heartbeat = time.monotonic()
                    self.send_msg("heartbeats", [{"current_time": "idle", "heartbeat_counter": self.seq}])
                time.sleep(0.02)
                continue
            if not self._wanted(msg):
                continue
            if interval:
                next_send += interval
                delay = next_send - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self.send_msg(msg["channel"], msg["events"], msg["timestamp"])
            conn.updates_sent += 1
            if msg["channel"] == "heartbeats":
                last_heartbeat = time.monotonic()

    def _wanted(self, msg: dict) -> bool:
        channel = msg["channel"]
        if channel == "heartbeats":
            return True
        products = self.subscribed.get(channel) or []
        key = "trades" if channel == "market_trades" else "tickers"
        return any(i["product_id"] in products for e in msg["events"] for i in e[key])

    def _act(self, action: Action) -> bool:
        """Returns True when the connection is over."""
        kind, arg = action.kind, action.arg
        if kind == "close":
            code, *rest = arg if isinstance(arg, tuple) else (arg or 1001,)
            self._advance(rest[0] if rest else 0)
            self.close(code, "going away" if code == 1001 else "")
            return True
        if kind == "abrupt":
            self._advance(arg or 0)
            self.abrupt()
            return True
        if kind == "skip_seq":
            self.seq += arg
            self.conn.skipped_seq += arg
        elif kind == "lose":  # messages the exchange numbered but the client never got
            for _ in range(arg):
                msg = self.server.market.take()
                if msg is None:
                    break
                if self._wanted(msg):
                    self.conn.lost_messages.append(msg)
                    self.seq += 1
                    self.conn.skipped_seq += 1
        elif kind == "error":
            self.send_text(arg or ERROR_SAMPLE)
        elif kind == "garbage":
            self.send_text(arg)
        elif kind == "binary_garbage":
            self._send_raw(encode_frame(0x2, arg))
            self.conn.sent_binary.append(arg)
        elif kind == "unknown_channel":
            self.send_text(L2_SAMPLE)
        elif kind == "pause":
            time.sleep(arg)
        return False

    def _advance(self, n: int) -> None:
        """The market moves on by `n` messages while nobody is connected."""
        for _ in range(n):
            if self.server.market.take() is None:
                break


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def _read_http_request(sock: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        data += chunk
        if len(data) > 65536:
            raise ValueError("request too large")
    return data.decode("latin-1")


def handshake(sock: socket.socket) -> None:
    request = _read_http_request(sock)
    headers = {}
    for line in request.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    key = headers.get("sec-websocket-key")
    if not key or headers.get("upgrade", "").lower() != "websocket":
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        raise ValueError("not a WebSocket upgrade")
    sock.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_accept_key(key)}\r\n\r\n"
        ).encode()
    )

