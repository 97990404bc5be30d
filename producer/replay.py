"""Reading a recording back for replay: one entry per line, and no line stops the replay.

A line is either `{"received_at": RFC3339, "connection_id": str, "frame": str}` (what `--record`
writes; `"frame_encoding": "base64"` marks a frame that was not UTF-8) or a bare Coinbase frame,
whose envelope timestamp then stands in for the ingest time. Each line becomes an entry
`(ingest epoch ms, frame, connection id, problem)`; `problem` is None for a usable line.

A line without a usable time (not UTF-8, not JSON, not a JSON object, neither received_at+frame
nor an envelope timestamp, a time that does not parse, a bad base64 frame) still becomes an
entry, named by `problem` (the pipeline dead-letters it with that reason): it takes the previous
line's time, and its connection unless it is a recorder line naming its own; before the first
usable line, the first usable line's; in a file without any, the time the replay starts (the
only true ingest time such a line has) and the file's session. Blank lines are skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from json.decoder import scanstring
from pathlib import Path

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

# Why a line has no usable time; each is the `reason` header of its dead letter.
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
NOT_JSON_OBJECT = "not_json_object"
NO_TIMESTAMP = "no_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
BAD_FRAME_ENCODING = "bad_frame_encoding"

Entry = tuple[int, str | bytes, str, str | None]


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    text = text.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, tail = text.partition(".")
    if sep:
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def datetime_to_ms(dt: datetime) -> int:
    """Exact epoch milliseconds (float timestamps can be one ms off)."""
    return (dt - _EPOCH) // _MS


_SECOND_CACHE: dict[str, int] = {}


def rfc3339_to_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 UTC time, exactly; fast for `...:SS[.fraction]Z`, the recorder's form."""
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and (len(text) == 20 or text[19] == "."):
        head = text[:19]
        sec = _SECOND_CACHE.get(head)
        if sec is None:
            try:
                sec = int(datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp())
            except ValueError:
                return datetime_to_ms(parse_rfc3339(text))
            if len(_SECOND_CACHE) > 4096:
                _SECOND_CACHE.clear()
            _SECOND_CACHE[head] = sec
        frac = text[20:-1]
        if frac and not frac.isdigit():
            return datetime_to_ms(parse_rfc3339(text))
        return sec * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)
    return datetime_to_ms(parse_rfc3339(text))


def _usable_ms(text) -> int | None:
    """Epoch ms of an RFC 3339 time, or None if it is not one a Kafka timestamp can carry."""
    try:
        ms = rfc3339_to_ms(text)
    except (ValueError, TypeError, OverflowError):
        return None
    return ms if ms >= 0 else None


def session_id(path: str | Path) -> str:
    """The connection id of a recording's bare frames: one per file, the same on every replay."""
    return f"replay-{uuid.uuid5(uuid.NAMESPACE_URL, str(Path(path).resolve()))}"


_REC_HEAD = '{"received_at":"'
_REC_CONN = '","connection_id":"'
_REC_FRAME = '","frame":"'
_REC_TAILS = ("}\n", "}", "}\r\n")


def _fast_line(line: str):
    """(received_at, connection_id, frame) of a line exactly as the recorder writes it, else None.

    Skips building a dict per line: the strings are decoded where they stand.
    """
    if not line.startswith(_REC_HEAD):
        return None
    try:
        received, i = scanstring(line, 16)
        if not line.startswith(_REC_CONN, i - 1):
            return None
        connection_id, i = scanstring(line, i + len(_REC_CONN) - 1)
        if not line.startswith(_REC_FRAME, i - 1):
            return None
        frame, i = scanstring(line, i + len(_REC_FRAME) - 1)
    except ValueError:
        return None
    return (received, connection_id, frame) if line[i:] in _REC_TAILS else None


def _recorded(obj: dict, frame: str, received: str, line: str, session: str) -> tuple:
    connection_id = obj.get("connection_id")
    connection_id = connection_id if isinstance(connection_id, str) and connection_id else session
    if obj.get("frame_encoding") == "base64":
        try:
            frame = base64.b64decode(frame, validate=True)
        except (binascii.Error, ValueError):
            return None, line, connection_id, BAD_FRAME_ENCODING
    ms = _usable_ms(received)
    return ms, frame, connection_id, None if ms is not None else BAD_TIMESTAMP


def _other_line(line: str, session: str) -> tuple:
    """A line not in the recorder's exact form: a recorded line written otherwise, a bare frame, or junk."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None, line, None, NOT_JSON
    if not isinstance(obj, dict):
        return None, line, None, NOT_JSON_OBJECT
    frame, received = obj.get("frame"), obj.get("received_at")
    if isinstance(frame, str) and isinstance(received, str):
        return _recorded(obj, frame, received, line, session)
    if "timestamp" not in obj:
        return None, line, None, NO_TIMESTAMP
    ms = _usable_ms(obj["timestamp"])
    if ms is None:
        return None, line, None, BAD_TIMESTAMP
    return ms, line, session, None


def parse_line(raw: bytes, session: str) -> tuple:
    """(ingest ms or None, frame, connection id or None, problem) of one line; frame None for a blank line."""
    try:
        line = raw.decode()
    except UnicodeDecodeError:
        return None, raw.rstrip(b"\r\n"), None, NOT_UTF8
    hit = _fast_line(line)
    if hit is not None:
        received, connection_id, frame = hit
        ms = _usable_ms(received)
        return ms, frame, connection_id or session, None if ms is not None else BAD_TIMESTAMP
    text = line.rstrip("\r\n")
    if not text.strip():
        return None, None, None, None
    return _other_line(text, session)


def check_readable(path: str | Path) -> None:
    """Raises an OSError saying in one line why the recording cannot be read (the CLI prints it)."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise FileNotFoundError(f"recording {path} not found") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"recording {path} is a directory: give the NDJSON file to replay") from None
    except PermissionError:
        raise PermissionError(f"recording {path} cannot be read (permission denied): check its permissions") from None
    except OSError as exc:
        raise OSError(f"recording {path} cannot be read: {exc.strerror or exc}") from None


def _first_usable(fh, session: str) -> tuple[int | None, str | None]:
    """Time and connection of the first line that has a usable time, or (None, None)."""
    for raw in fh:
        ms, _, connection_id, _ = parse_line(raw, session)
        if ms is not None:
            return ms, connection_id
    return None, None


def _entries(path: Path, session: str, start_ms: int) -> Iterator[Entry]:
    fast, to_ms = _fast_line, rfc3339_to_ms
    with open(path, "rb") as fh:
        last_ms, last_conn = _first_usable(fh, session)
        if last_ms is None:
            last_ms = start_ms
        last_conn = last_conn or session
        fh.seek(0)
        for raw in fh:
            try:  # the recorder's own lines, inline: the hot path
                hit = fast(raw.decode())
                ms = -1 if hit is None else to_ms(hit[0])
            except (ValueError, OverflowError):
                ms = -1
            if ms >= 0:
                last_ms, last_conn = ms, hit[1] or session
                yield ms, hit[2], last_conn, None
                continue
            ms, frame, connection_id, problem = parse_line(raw, session)
            if ms is not None:
                last_ms, last_conn = ms, connection_id
                yield ms, frame, connection_id, None
            elif frame is not None:
                yield last_ms, frame, connection_id or last_conn, problem


def read_entries(path: str | Path) -> Iterator[Entry]:
    """(ingest epoch ms, frame, connection id, problem) per line; the replay hot path.

    Checks at once that the file can be read (OSError with a one-line message); reads lazily.
    """
    check_readable(path)
    return _entries(Path(path), session_id(path), time.time_ns() // 1_000_000)
