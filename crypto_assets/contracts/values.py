"""Coinbase's values as the exchange sends them (text) -> typed Arrow arrays, with null for anything
that does not parse; the rules every layer that reads Bronze items applies the same way.

What parses (the exchange sends only the first form of each; anything else is null):
- numbers: decimal text, optionally signed, with an optional exponent (`64589.41`, `1e-8`);
  NaN, infinities and values beyond a double are not numbers;
- trade ids: decimal digits (an optional sign, leading zeros allowed) within a signed 64-bit integer;
- times: ISO 8601 `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM]` (a space for `T` is accepted, no zone
  means UTC); digits past the microsecond are truncated;
- every value may carry surrounding whitespace.

Also the small Arrow <-> NumPy helpers the rules built on these share (`one_chunk`, `null_unless`,
`flags`, `ints`). Arrow and NumPy only: no Spark.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

UTC_MICROS = pa.timestamp("us", tz="UTC")  # every time the rules produce

_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER = r"^-?[0-9]+$"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"


def one_chunk(values) -> pa.Array:
    """An array, or a chunked array as one contiguous array."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def null_unless(values: pa.Array, keep: np.ndarray) -> pa.Array:
    """`values` with null where `keep` is False, sharing its buffers (no copy of the strings)."""
    keep = keep & flags(pc.is_valid(values))
    if keep.all():
        return values
    bits = np.packbits(np.concatenate([np.zeros(values.offset, dtype=bool), keep]), bitorder="little")
    return pa.Array.from_buffers(values.type, len(values), [pa.py_buffer(bits), *values.buffers()[1:]],
                                 null_count=int(len(keep) - keep.sum()), offset=values.offset)


def _cast_or_null(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast, with null wherever a value does not convert. Callers pass only text their pattern
    accepted, so this rarely fails; when it does the cast is bisected down to the offending values."""
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, OverflowError):
        if len(values) == 1:
            return pa.nulls(1, target)
        mid = len(values) // 2
        return pa.concat_arrays([_cast_or_null(values.slice(0, mid), target), _cast_or_null(values.slice(mid), target)])


def _matching(text, pattern: str) -> tuple[pa.Array, np.ndarray]:
    """(trimmed text, which of it matches `pattern`)."""
    text = pc.utf8_trim_whitespace(one_chunk(text))
    return text, flags(pc.match_substring_regex(text, pattern))


def parse_double(text) -> pa.Array:
    """Finite doubles from trimmed decimal text (`_DECIMAL`); anything else, NaN, infinities and
    overflow become null. Arrow's parser accepts exactly `_DECIMAL` plus NaN and infinities, so when
    a whole column casts the pattern need not be run (a test keeps the two in step)."""
    text = pc.utf8_trim_whitespace(one_chunk(text))
    try:
        values = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, OverflowError):
        values = _cast_or_null(null_unless(text, flags(pc.match_substring_regex(text, _DECIMAL))), pa.float64())
    return null_unless(values, flags(pc.is_finite(values)))


def parse_int64(text) -> pa.Array:
    """Decimal integers within 64 bits (`_INTEGER`: a `-` parses and the caller rejects negative
    ids; `+`, hex (which Arrow's cast would take) and anything else become null)."""
    text, ok = _matching(text, _INTEGER)
    return _cast_or_null(null_unless(text, ok), pa.int64())


def _digits(block: np.ndarray, start: int, width: int) -> np.ndarray:
    """The decimal number in columns [start, start + width) of a block of digit values."""
    value = block[:, start].astype(np.int64)
    for i in range(start + 1, start + width):
        value = value * 10 + block[:, i]
    return value


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_CHUNK = 1 << 18  # rows per block of the timestamp parser (bounds its scratch memory)


def _iso_micros(head: np.ndarray, tail: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(UTC microseconds, valid) of ISO 8601 strings given as their first 26 and last 6 bytes (minus
    '0'), for strings that match `_TIMESTAMP`, so every field's place is known."""
    year, month, day = _digits(head, 0, 4), _digits(head, 5, 2), _digits(head, 8, 2)
    hour, minute, second = _digits(head, 11, 2), _digits(head, 14, 2), _digits(head, 17, 2)
    sign = (tail == ord("+") - 48) | (tail == ord("-") - 48)
    zone_len = np.where(tail[:, 5] == ord("Z") - 48, 1, np.where(sign[:, 3], 3, np.where(
        sign[:, 1], 5, np.where(sign[:, 0] & (tail[:, 3] == ord(":") - 48), 6, 0))))
    zone_sign = np.where(tail[np.arange(len(tail)), np.clip(6 - zone_len, 0, 5)] == ord("-") - 48, -1, 1)
    zone_h = np.where(zone_len == 3, _digits(tail, 4, 2), np.where(zone_len == 5, _digits(tail, 2, 2), np.where(
        zone_len == 6, _digits(tail, 1, 2), 0)))
    zone_m = np.where(zone_len >= 5, _digits(tail, 4, 2), 0)
    fraction_len = np.where(head[:, 19] == ord(".") - 48, length - zone_len - 20, 0)
    micros = np.zeros(len(head), dtype=np.int64)
    for i in range(6):
        micros = micros * 10 + np.where(fraction_len > i, head[:, 20 + i], 0)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _MONTH_DAYS[np.clip(month, 1, 12) - 1] + (leap & (month == 2))
    valid = ((month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59)
             & (second <= 59) & (zone_h <= 23) & (zone_m <= 59))
    seconds = (_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
               - zone_sign * (zone_h * 3600 + zone_m * 60))
    return seconds * 1_000_000 + micros, valid


def parse_timestamp(text) -> pa.Array:
    """ISO 8601 text (`_TIMESTAMP`) -> UTC microseconds, null for anything else. The pattern fixes
    where every field sits, so the fields are read straight from the UTF-8 bytes, a block of rows
    at a time; digits past the microsecond are cut, as Spark does."""
    text, ok = _matching(text, _TIMESTAMP)
    out = np.zeros(len(text), dtype=np.int64)
    rows = np.flatnonzero(ok)
    if len(rows):
        wide = pa.types.is_large_string(text.type)
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[text.offset: text.offset + len(text) + 1].astype(np.int64) + 32
        # Padded, so fixed-width reads past either end of a short string stay inside the buffer.
        data = np.concatenate([np.zeros(32, np.uint8), np.frombuffer(text.buffers()[2], np.uint8), np.zeros(32, np.uint8)])
        data = data.astype(np.int16) - 48
        for lo in range(0, len(rows), _CHUNK):
            part = rows[lo: lo + _CHUNK]
            start, end = offsets[part], offsets[part + 1]
            head = data[start[:, None] + np.arange(26)]
            tail = data[end[:, None] + np.arange(-6, 0)]
            out[part], ok[part] = _iso_micros(head, tail, end - start)
    return pa.array(out, UTC_MICROS, mask=~ok)


def flags(values) -> np.ndarray:
    """A boolean Arrow array as NumPy, null counted as False."""
    return np.array(pc.fill_null(one_chunk(values), False).to_numpy(zero_copy_only=False), dtype=bool)


def ints(values, fill: int = 0) -> np.ndarray:
    """An integer Arrow array as NumPy, null as `fill`."""
    return np.asarray(pc.fill_null(one_chunk(values), fill).to_numpy(zero_copy_only=False))

