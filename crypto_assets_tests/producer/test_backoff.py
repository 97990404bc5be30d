"""Reconnect backoff: exponential, capped, jittered, reset after data; connection attempts spaced."""

from __future__ import annotations

import itertools
import random
import statistics
import threading
import time

import pytest

from producer.connection import Backoff, FeedConnection, _reason_label


def test_delays_grow_exponentially_within_their_jitter_band():
    b = Backoff(base_s=1.0, cap_s=1000.0, rng=random.Random(1))
    for attempt in range(8):
        ceiling = 2.0**attempt
        d = b.next_delay()
        assert ceiling / 2 <= d <= ceiling, (attempt, d)


def test_delays_are_capped():
    b = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(2))
    delays = [b.next_delay() for _ in range(200)]
    assert max(delays) <= 8.0
    assert min(delays[10:]) >= 4.0  # at the cap the band is [cap/2, cap]


def test_delays_are_jittered_not_lockstep():
    """Clients dropped together (a server restart) must not come back together."""
    firsts = [Backoff(base_s=1.0, cap_s=30.0).next_delay() for _ in range(50)]
    assert len({round(d, 6) for d in firsts}) > 40
    assert statistics.pstdev(firsts) > 0.05
    capped = Backoff(base_s=1.0, cap_s=4.0, rng=random.Random(3))
    for _ in range(5):
        capped.next_delay()
    tail = [capped.next_delay() for _ in range(100)]
    assert statistics.pstdev(tail) > 0.3


def test_reset_starts_over_and_floor_is_respected():
    b = Backoff(base_s=1.0, cap_s=60.0, floor_s=0.75, rng=random.Random(4))
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.attempt == 0
    d = b.next_delay()
    assert 0.75 <= d <= 1.0
    tiny = Backoff(base_s=0.01, cap_s=0.02, floor_s=0.5)
    assert all(tiny.next_delay() == 0.5 for _ in range(10))


def test_invalid_backoff_rejected():
    with pytest.raises(ValueError):
        Backoff(base_s=0)
    with pytest.raises(ValueError):
        Backoff(base_s=2, cap_s=1)


class _Listener:
    def on_connect(self, connection_id):
        pass

    def on_frame(self, frame, recv_ns, mono_ns, connection_id):
        pass

    def on_disconnect(self, connection_id, reason):
        pass


def test_connection_attempts_are_spaced_by_the_minimum_interval():
    """Against a port that refuses connections, attempts are never closer than min_interval_s."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    attempts = []
    conn = FeedConnection(f"ws://127.0.0.1:{port}", list, _Listener(),
                          backoff=Backoff(base_s=0.001, cap_s=0.002), min_interval_s=0.1, connect_timeout_s=1)
    real_session = conn._session

    def session(stop):
        attempts.append(conn.last_attempt_mono)  # when the loop decided to connect
        return real_session(stop)

    conn._session = session
    stop = threading.Event()
    t = threading.Thread(target=conn.run, args=(stop,))
    t.start()
    time.sleep(0.75)
    stop.set()
    t.join(5)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) >= 4
    assert min(gaps) >= 0.1
    assert conn.reconnects_by_reason["connect_failed"] == conn.reconnects >= 3


@pytest.mark.parametrize("reason, label", [
    ("closed by server with code 1001 (going away)", "close_1001"),
    ("closed by server with code 4000", "close_other"),
    ("connection lost without a close frame (1006)", "close_1006"),
    ("watchdog: nothing received for 10 s", "watchdog"),
    ("connect failed: ConnectionRefusedError", "connect_failed"),
    ("error: ssl", "error"),
])
def test_reconnect_reason_labels(reason, label):
    assert _reason_label(reason) == label
