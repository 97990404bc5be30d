"""`--record FILE`: the live stream saved as NDJSON, one received frame per line, for `replay`.

Line format (read back by `producer.replay.read_entries`):
`{"received_at": RFC 3339 with nanoseconds, "connection_id": str, "frame": str}`; a frame that
is not UTF-8 (it can only be garbage) is kept as base64 with `"frame_encoding": "base64"`.
Every frame is recorded, heartbeats and garbage included, so a replay meets the same input.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from producer.coinbase_text import format_rfc3339_nanos

log = logging.getLogger(__name__)


def format_received_at(epoch_ns: int) -> str:
    return format_rfc3339_nanos(epoch_ns)


class Recorder:
    """Appends frames to a file; buffered, flushed by `flush()` (the status loop calls it each second)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1 << 20)  # noqa: SIM115 - open for the session
        self.frames = 0
        log.info("recording every received frame to %s (appending)", self.path)

    def write(self, frame: str | bytes, recv_ns: int, connection_id: str) -> None:
        entry = {"received_at": format_received_at(recv_ns), "connection_id": connection_id}
        if isinstance(frame, (bytes, bytearray)):
            try:
                entry["frame"] = bytes(frame).decode("utf-8")
            except UnicodeDecodeError:
                entry["frame"] = base64.b64encode(frame).decode("ascii")
                entry["frame_encoding"] = "base64"
        else:
            entry["frame"] = frame
        self._fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.frames += 1

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
            log.info("recorded %s frames to %s", f"{self.frames:,}", self.path)
