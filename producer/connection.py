"""A WebSocket connection that stays up: reconnects with capped, jittered backoff, resubscribes, watchdog.

Knows nothing about Coinbase's message format or Kafka: it opens the socket, sends the
subscribe messages it is given (made fresh for every connection, so a JWT is always new),
hands every data frame to its listener with the receive time, and reconnects on any close,
error or silence longer than the watchdog allows. Connection attempts are spaced by at least
`min_interval_s`, which keeps a flapping server from pushing us over an exchange's
connections-per-second limit.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

log = logging.getLogger(__name__)


class Listener(Protocol):
    def on_connect(self, connection_id: str) -> None: ...

    def on_frame(self, frame: bytes, recv_ns: int, mono_ns: int, connection_id: str) -> None: ...

    def on_disconnect(self, connection_id: str, reason: str) -> None: ...


class Backoff:
    """Capped exponential backoff with "equal jitter": attempt n waits in [c/2, c], c = min(cap, base * 2**n).

    Half the delay is random so many clients dropped at once (a server restart) do not return
    in lockstep; the other half keeps the exponential growth. `floor_s` is never undercut.
    """

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, floor_s: float = 0.0,
                 rng: random.Random | None = None):
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base ({base_s}) <= cap ({cap_s})")
        self.base_s = base_s
        self.cap_s = cap_s
        self.floor_s = floor_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 62)))
        self.attempt += 1
        return max(self.floor_s, ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    def reset(self) -> None:
        self.attempt = 0


def close_code(frame_data: bytes) -> int | None:
    return int.from_bytes(frame_data[:2], "big") if len(frame_data) >= 2 else None


def new_connection_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class FeedConnection:
    """Runs until `stop` is set: connect, subscribe, receive, and on any failure wait and start over."""

    def __init__(
        self,
        url: str,
        subscribe_messages: Callable[[], list[str]],
        listener: Listener,
        *,
        watchdog_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        min_interval_s: float = 0.5,
        poll_s: float = 0.25,
    ):
        self.url = url
        self.subscribe_messages = subscribe_messages
        self.listener = listener
        self.watchdog_s = watchdog_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff = backoff or Backoff()
        self.min_interval_s = min_interval_s
        self.poll_s = poll_s
        self.connections = 0
        self.reconnects = 0
        self.reconnects_by_reason: dict[str, int] = defaultdict(int)
        self.connected = False
        self.connection_id: str | None = None
        self.last_attempt_mono: float | None = None
        self.opened_mono: float | None = None
        self.listener_errors = 0
        self._ws = None

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        reason = None
        while not stop.is_set():
            if reason is not None:
                self.reconnects += 1
                self.reconnects_by_reason[_reason_label(reason)] += 1
                delay = self.backoff.next_delay()
                log.warning("reconnecting to %s in %.2f s (attempt %d; %s)", self.url, delay, self.backoff.attempt, reason)
                if stop.wait(delay):
                    break
            if self.last_attempt_mono is not None:  # connection rate limit, whatever the backoff says
                wait = self.last_attempt_mono + self.min_interval_s - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    break
            self.last_attempt_mono = time.monotonic()
            reason = self._session(stop)
        log.info("feed stopped (%d connections, %d reconnects)", self.connections, self.reconnects)

    def _session(self, stop: threading.Event) -> str | None:
        """One connection from open to close; returns why it ended (None if we were asked to stop)."""
        import websocket

        try:
            ws = websocket.create_connection(
                self.url,
                timeout=self.connect_timeout_s,
                skip_utf8_validation=True,  # json.loads rejects bad UTF-8 at C speed; a dead letter, not a disconnect
                enable_multithread=True,
                suppress_origin=True,
            )
        except (OSError, websocket.WebSocketException) as exc:
            return f"connect failed: {_describe(exc)}"
        connection_id = new_connection_id()
        self._ws = ws
        self.connection_id = connection_id
        self.connections += 1
        self.connected = True
        opened = self.opened_mono = time.monotonic()
        frames = 0
        reason: str | None = None
        log.info("connected to %s (connection %s)", self.url, connection_id)
        self.listener.on_connect(connection_id)
        try:
            for message in self.subscribe_messages():
                ws.send(message)
            ws.settimeout(self.poll_s)
            last_activity = time.monotonic()
            recv = ws.recv_data_frame
            on_frame = self.listener.on_frame
            while not stop.is_set():
                try:
                    opcode, frame = recv(True)
                except websocket.WebSocketTimeoutException:
                    if time.monotonic() - last_activity > self.watchdog_s:
                        reason = f"watchdog: nothing received for {self.watchdog_s:g} s"
                        break
                    continue
                mono = time.monotonic_ns()
                last_activity = mono / 1e9
                if opcode == 0x1 or opcode == 0x2:  # text or binary
                    frames += 1
                    if frames == 1:
                        self.backoff.reset()  # data flows: the next failure starts the backoff afresh
                    try:
                        on_frame(frame.data, time.time_ns(), mono, connection_id)
                    except Exception:  # a bug downstream must not end the feed
                        self.listener_errors += 1
                        if self.listener_errors <= 10 or self.listener_errors % 1000 == 0:
                            log.exception("processing a frame failed (%d so far); the feed goes on",
                                          self.listener_errors)
                elif opcode == 0x8:
                    code = close_code(frame.data)
                    text = frame.data[2:].decode(errors="replace") if len(frame.data) > 2 else ""
                    reason = f"closed by server with code {code}" + (f" ({text})" if text else "")
                    break
                # ping (answered by websocket-client) and pong only count as activity
        except websocket.WebSocketConnectionClosedException:
            reason = "connection lost without a close frame (1006)"
        except (OSError, websocket.WebSocketException) as exc:
            reason = f"error: {_describe(exc)}"
        finally:
            self.connected = False
            self._ws = None
            try:
                if reason is None:
                    ws.close(status=1000, timeout=1)
                else:
                    ws.shutdown()
            except Exception:  # noqa: BLE001, S110 - closing a broken socket may fail; it is gone either way
                pass
            lived = time.monotonic() - opened
            if reason is not None:
                log.warning("disconnected from %s after %.1f s and %d messages: %s", self.url, lived, frames, reason)
            self.listener.on_disconnect(connection_id, reason or "stopped")
        return reason

    def interrupt(self) -> None:
        """Breaks the current connection at once (tests, and stop requests that cannot wait for a poll)."""
        ws = self._ws
        if ws is not None and ws.sock is not None:
            try:
                ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if exc.__class__.__name__ not in text else text


def _reason_label(reason: str) -> str:
    """A small, fixed set of values for the metrics label."""
    if reason.startswith("closed by server with code"):
        code = reason.split("code", 1)[1].split()[0]
        return f"close_{code}" if code in ("1000", "1001", "1006", "1008", "1011") else "close_other"
    if reason.startswith("connection lost"):
        return "close_1006"
    if reason.startswith("watchdog"):
        return "watchdog"
    if reason.startswith("connect failed"):
        return "connect_failed"
    return "error"
