"""The Arrow rules under Silver, without Spark: parsing (`contracts.values`), the owner of a row
(`contracts.ownership`), the content hash, and which copy dedup keeps."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from crypto_assets.contracts.ownership import owner_products
from crypto_assets.contracts.values import _DECIMAL, _INTEGER, _TIMESTAMP, parse_double, parse_int64, parse_timestamp
from crypto_assets.silver.transforms import content_hash, duplicate_flags


def reference_timestamp(text: str | None) -> datetime | None:
    """What `parse_timestamp` promises, written the slow, obvious way."""
    if text is None or not re.fullmatch(_TIMESTAMP.strip("^$"), text.strip()):
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d(?::?\d\d)?)?", text.strip())
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0")[:6].ljust(6, "0")),
                     tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        t -= sign * timedelta(hours=hours, minutes=minutes)
    return t


TIMES = [
    "2026-03-10T05:35:45.435813533Z", "2026-03-10T05:35:45.43581Z", "2026-03-10T05:35:45.3Z", " 2026-03-10T05:35:45Z\t",
    "2026-03-10 05:35:45", "2026-03-10T05:35:45", "2026-03-10T05:35:45.123456", "2026-03-10T05:35:45+01",
    "2026-03-10T05:35:45+0130", "2026-03-10T05:35:45-01:30", "2026-03-10T00:00:00.5-05", "2026-03-10T23:59:59.9999999+23:59",
    "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-03-00T00:00:00Z", "2026-03-10T24:00:00Z", "2026-03-10T23:60:00Z",
    "2026-03-10T23:59:60Z", "2026-03-10T05:35:45+24:00", "2026-03-10T05:35:45+01:60", "1969-12-31T23:59:59.999999999Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-03-10", "2026-03-10T05:35Z", "2026-03-10T05:35:45.Z",
    "2026-03-10t05:35:45z", "yesterday", "", "2026-03-10T05:35:45ZZ", "2026-03-10T05:35:45 Z", "２０２６-03-10T05:35:45Z", None,
]


def test_timestamps_parse_as_the_reference_says():
    got = parse_timestamp(pa.array(TIMES, pa.string())).to_pylist()
    for text, value in zip(TIMES, got):
        assert value == reference_timestamp(text), text
    assert got[0] == datetime(2026, 3, 10, 5, 35, 45, 435813, tzinfo=timezone.utc)  # cut, not rounded


def test_timestamps_parse_the_same_wherever_they_sit_in_the_column():
    """Fixed-width reads near the ends of the string buffer and across blocks of rows."""
    rng = np.random.default_rng(7)
    texts = [TIMES[i] for i in rng.integers(0, len(TIMES), 300_000)]
    got = parse_timestamp(pa.array(texts, pa.string())).to_pylist()
    expected = {t: reference_timestamp(t) for t in TIMES}
    assert got == [expected[t] for t in texts]


NUMBERS = ["64589.41", "1", "+1", " -1.5 ", "1.", ".5", "+.5", "-.5e-3", "1.e5", "1E+05", "00.1", "0", "-0",
           "1e-400", "1e400", "NaN", "nan", "Infinity", "-inf", "1e", "e5", ".", "1.5.5", "1,5", "0x1p3", "1d", "1_0",
           "١", "½", "", "--", None, "123456789012345678901234567890"]


def reference_double(text: str | None) -> float | None:
    if text is None or not re.fullmatch(_DECIMAL.strip("^$"), text.strip()):
        return None
    value = float(text.strip())
    return value if math.isfinite(value) else None


@pytest.mark.parametrize("text", NUMBERS)
def test_doubles_parse_the_same_alone_and_beside_garbage(text):
    """A column that casts whole skips the pattern; one with garbage runs it. Both give the same."""
    alone = parse_double(pa.array([text], pa.string())).to_pylist()[0]
    beside = parse_double(pa.array([text, "garbage"], pa.string())).to_pylist()[0]
    assert alone == beside == reference_double(text)


def test_trade_ids_are_decimal_64_bit_integers():
    texts = ["42", "00042", " 7 ", "-5", "+42", "0x1A", "1.0", "1e3", "9223372036854775807", "9223372036854775808",
             "99999999999999999999", "", None]
    got = parse_int64(pa.array(texts, pa.string())).to_pylist()
    assert got == [42, 42, 7, -5, None, None, None, None, 2**63 - 1, None, None, None, None]
    assert re.fullmatch(_INTEGER.strip("^$"), "0x1A") is None  # Arrow's cast alone would read hex


def test_owner_product_needs_the_whole_string_well_formed():
    owners = owner_products(pa.array(["BTC-USD", "BTC-USD\n", "btc-usd", None, None]),
                            pa.array(["ETH-USD", "BTC-USD", "BTC-USD", "SOL-USD", "garbage"]))
    assert owners.to_pylist() == ["BTC-USD", "BTC-USD", "BTC-USD", "SOL-USD", "UNKNOWN"]


def test_content_hash_is_sha256_of_the_fields_joined_with_a_null_marker():
    item = pa.array([{"type": "ticker", "price": "1.5"}, {"type": "ticker", "price": None}],
                    pa.struct([("type", pa.string()), ("price", pa.string())]))
    got = content_hash(pa.array(["2026-03-10T00:00:00Z", "2026-03-10T00:00:00Z"]), pa.array(["update", None]), item)
    expected = [hashlib.sha256("\x01".join(fields).encode()).hexdigest()
                for fields in (["2026-03-10T00:00:00Z", "update", "ticker", "1.5"],
                               ["2026-03-10T00:00:00Z", "\x00", "ticker", "\x00"])]
    assert got.to_pylist() == expected


def test_dedup_keeps_the_earliest_ingested_valid_copy():
    valid = np.array([True, True, True, True, False, True])
    key = np.array([0, 0, 0, 1, 1, 2])
    ingest = np.array([5, 3, 3, 9, 1, 4])  # row 4 is earlier for key 1 but invalid: it does not count
    partition = np.array([0, 1, 0, 0, 0, 0])
    offset = np.array([0, 0, 7, 0, 0, 0])
    is_dup, kept = duplicate_flags(valid, key, [ingest, partition, offset])
    # key 0: rows 1 and 2 tie on ingest time; the lower Kafka partition (row 2) wins.
    assert is_dup.tolist() == [True, True, False, False, False, False]
    assert kept[:2].tolist() == [2, 2]
