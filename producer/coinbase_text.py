"""The text forms Coinbase's Advanced Trade WebSocket feed uses for times and numbers.

Times are integers of epoch nanoseconds (or microseconds) and decimals are fixed-point
integers, so formatting is exact and never goes through ``float``:

* envelope ``timestamp``: RFC 3339 with up to 9 fractional digits, trailing zeros trimmed
  (Go's RFC3339Nano), :func:`format_rfc3339_nanos`; recordings stamp receive times the same way;
* trade ``time``: microseconds, trailing zeros trimmed, :func:`format_trade_time`;
* heartbeat ``current_time``: Go's ``time.Time.String()`` with a monotonic reading,
  :func:`format_go_time`;
* prices and sizes: decimal strings without exponent, trailing zeros trimmed
  (:func:`format_units`, :func:`format_size` for sizes in 1e-8 base units), and the ticker's
  percent change (:func:`format_pct`).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC = timezone.utc  # datetime.UTC needs Python 3.11; the package supports 3.10

__all__ = [
    "EPOCH",
    "NS_PER_S",
    "SIZE_DECIMALS",
    "SIZE_SCALE",
    "UTC",
    "format_go_time",
    "format_pct",
    "format_rfc3339_nanos",
    "format_size",
    "format_trade_time",
    "format_units",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_S = 1_000_000_000
SIZE_SCALE = 100_000_000  # sizes are integers of 1e-8 base units
SIZE_DECIMALS = 8

_SEC_CACHE: dict[int, tuple[str, str]] = {}


def _sec_fields(sec: int) -> tuple[str, str]:
    """("YYYY-MM-DD", "HH:MM:SS") of a UTC epoch second, cached."""
    hit = _SEC_CACHE.get(sec)
    if hit is None:
        if len(_SEC_CACHE) > 4096:
            _SEC_CACHE.clear()
        d = EPOCH + timedelta(seconds=sec)
        hit = (f"{d.year:04d}-{d.month:02d}-{d.day:02d}", f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}")
        _SEC_CACHE[sec] = hit
    return hit


def format_rfc3339_nanos(epoch_ns: int) -> str:
    """UTC RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano).

    >>> format_rfc3339_nanos(1784086810698612180)
    '2026-07-15T03:40:10.69861218Z'
    """
    sec, frac = divmod(epoch_ns, NS_PER_S)
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


def format_go_time(epoch_ns: int, mono_ns: int) -> str:
    """Go ``time.Time.String()`` with a monotonic reading, as in heartbeat ``current_time``."""
    sec, frac = divmod(epoch_ns, NS_PER_S)
    day, hms = _sec_fields(sec)
    wall = f"{day} {hms}.{frac:09d}".rstrip("0").rstrip(".") if frac else f"{day} {hms}"
    msec, mfrac = divmod(mono_ns, NS_PER_S)
    return f"{wall} +0000 UTC m=+{msec}.{mfrac:09d}"


def format_units(value: int, scale: int, decimals: int) -> str:
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


def format_size(units: int) -> str:
    """Size in 1e-8 base units -> decimal string (fast path for sizes below 1)."""
    if 0 < units < SIZE_SCALE:
        return "0." + str(units + SIZE_SCALE)[1:].rstrip("0")
    return format_units(units, SIZE_SCALE, SIZE_DECIMALS)


def format_pct(x: float) -> str:
    """A percentage as the ticker writes it: fixed-point, trailing zeros trimmed, never "-0"."""
    s = f"{x:.14f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s
