"""Bronze rows of a small Kafka window without a JVM: kafka-python reads the records, Python maps them.

`read_bronze_window` gives exactly what `bronze.transforms.kafka_to_bronze(filter_ingest_day(...))`
gives for the same records (the Arrow schema `contracts.tables.bronze_schema(kind)`), including
Spark's `from_json` behaviour in PERMISSIVE mode with partial results: a value of any JSON type
given to a string field becomes its text as Jackson re-writes it (numbers as Java prints a double,
nested objects compact), a field of the wrong type leaves the fields already parsed and flags the
record `not_json`, a syntax error nulls the whole envelope, content after the first JSON value is
ignored. A record whose reading Spark might do differently (single-quoted strings, non-finite
numbers, doubles Java may print with other digits, text that is not UTF-8, ...) makes the whole
window `None`: the caller then takes the Spark path, so the Arrow path never guesses.
No Spark import here.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa

from crypto_assets.bronze.kafka_source import KafkaAccess, KafkaUnavailableError, OffsetWindow
from crypto_assets.contracts.names import EXPECTED_CHANNEL
from crypto_assets.contracts.partitioning import day_bounds
from crypto_assets.contracts.tables import BRONZE_ITEMS_COLUMN, TICKER_ITEM_FIELDS, TRADE_ITEM_FIELDS, bronze_schema

log = logging.getLogger(__name__)

STALL_SECONDS = 30.0  # no new record for this long while the window is not fully read: the broker is gone


class Ambiguous(Exception):
    """A record Spark might read differently from this module."""


class _Fail(Exception):
    """A value of the wrong type for its field; `partial` is what Spark keeps of it (`_NONE`: nothing)."""

    def __init__(self, partial=None, has_partial=False):
        self.partial, self.has_partial = partial, has_partial


class _Obj(list):
    """A JSON object as its (key, value) pairs in order (duplicates kept, as Jackson reads them)."""


class _Float(str):
    """A JSON number with a fraction or exponent, as its text."""


# ---- JSON values as Spark's StringType gives them -------------------------------------------------------

_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"})


def _java_double(text: str) -> str:
    """Java's Double.toString of a JSON float token, when certain (JDK 17's FloatingDecimal prints
    some doubles with extra digits: outside [1e-3, 1e7) or beyond 15 digits it is `Ambiguous`)."""
    value = float(text)
    if value == 0.0:
        return "-0.0" if str(value).startswith("-") else "0.0"
    if value != value or value in (float("inf"), float("-inf")) or not 1e-3 <= abs(value) < 1e7:
        raise Ambiguous(text)
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    if len(digits) > 15:
        raise Ambiguous(text)
    plain = format(Decimal(repr(value)), "f")
    if "." not in plain:
        plain += ".0"
    return plain


def _text(value) -> str:
    """Jackson's compact re-writing of a JSON value (what a string field gets for a non-string token)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _Float):
        return _java_double(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, _Obj):
        return "{" + ",".join(_text(k) + ":" + _text(v) for k, v in value) + "}"
    return "[" + ",".join(_text(v) for v in value) + "]"


def _string(value):
    if value is None or type(value) is str:
        return value
    return _text(value)


def _struct(fields: dict):
    def convert(value):
        if value is None:
            return None
        if not isinstance(value, _Obj):
            raise _Fail()
        row, bad = dict.fromkeys(fields), False
        for key, item in value:
            conv = fields.get(key)
            if conv is None:
                continue
            try:
                row[key] = conv(item)
            except _Fail as exc:  # Spark keeps what it parsed, and what it had (an earlier duplicate)
                bad = True
                if exc.has_partial:
                    row[key] = exc.partial
        if bad:
            raise _Fail(row, True)
        return row
    return convert


def _array(element):
    def convert(value):
        if value is None:
            return None
        if type(value) is not list:
            raise _Fail()
        out, bad = [], False
        for item in value:
            try:
                out.append(element(item))
            except _Fail as exc:
                if not exc.has_partial:  # an element of the wrong type voids the array
                    raise _Fail() from None
                bad = True
                out.append(exc.partial)
        if bad:
            raise _Fail(out, True)
        return out
    return convert


def _envelope_converter():
    items = {k: _array(_struct(dict.fromkeys(fields, _string)))
             for k, fields in (("trades", TRADE_ITEM_FIELDS), ("tickers", TICKER_ITEM_FIELDS))}
    event = _struct({"type": _string, **items})
    return _struct({"channel": _string, "client_id": _string, "timestamp": _string, "sequence_num": _string,
                    "events": _array(event)})


_ENVELOPE = _envelope_converter()
_DECODER = json.JSONDecoder(object_pairs_hook=_Obj, parse_float=_Float, parse_constant=lambda c: _raise(c))
_JSON_WS = " \t\n\r"
_LENIENT_MARKS = ("'", "NaN", "INF", "Infinity")  # Jackson (as Spark configures it) accepts these; Python does not


def _raise(text):
    raise Ambiguous(text)


def parse_envelope(value: bytes | None) -> tuple[dict | None, bool]:
    """(envelope fields, corrupt) as Spark's from_json(value, ENVELOPE_SCHEMA) PERMISSIVE gives them."""
    if value is None:
        return None, False
    try:
        text, exact = value.decode("utf-8"), True
    except UnicodeDecodeError:
        text, exact = value.decode("utf-8", "replace"), False  # Java's reader replaces too, maybe differently
    start = len(text) - len(text.lstrip(_JSON_WS))
    if start == len(text):
        return None, False  # empty or blank: from_json gives null, not a corrupt record
    try:
        parsed, _ = _DECODER.raw_decode(text, start)  # what follows the first value is never read
    except RecursionError:
        raise Ambiguous("deep nesting") from None
    except ValueError:
        if any(m in text for m in _LENIENT_MARKS):
            raise Ambiguous("lenient JSON") from None
        return None, True
    if not exact:
        raise Ambiguous("not UTF-8")
    if not isinstance(parsed, _Obj):
        return None, True
    try:
        return _ENVELOPE(parsed), False
    except _Fail as exc:
        return exc.partial, True


# ---- Bronze rows ----------------------------------------------------------------------------------------

_TRIM = "".join(chr(c) for c in range(0x21)) + "\x7f"
_LONG = re.compile(r"[+-]?[0-9]+")


def try_bigint(text: str | None) -> int | None:
    """Spark's try_cast(string AS BIGINT)."""
    if text is None:
        return None
    text = text.strip(_TRIM)
    if not _LONG.fullmatch(text):
        return None
    n = int(text)
    return n if -(2**63) <= n < 2**63 else None


def _decode(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Ambiguous("a key or header that is not UTF-8") from None


def _reason(value, env, corrupt, items_key, kind, items) -> str | None:
    """The first malformed reason, in `kafka_to_bronze`'s order."""
    if value is None or len(value) == 0:
        return "empty_value"
    if corrupt:
        return "not_json"
    env = env or {}
    channel = env.get("channel")
    if channel is None:
        return "missing_channel"
    if channel != EXPECTED_CHANNEL[kind]:
        return "unexpected_channel"
    if env.get("timestamp") is None:
        return "missing_timestamp"
    if not env.get("events"):
        return "missing_events"
    if not items:
        return f"no_{items_key}"
    first = items[0]["product_id"] if items[0] is not None else None
    if first is None:
        return "missing_product_id"
    if any(t is not None and t["product_id"] is not None and t["product_id"] != first for t in items):
        return "mixed_products"
    return None


def bronze_rows(records, kind: str, day: date) -> pa.Table:
    """Bronze rows of Kafka records (kafka-python `ConsumerRecord`s: topic, partition, offset, timestamp in
    ms, key, value, headers) whose timestamp falls in the UTC day; raises `Ambiguous` for a record
    Spark might read differently."""
    start, end = (int(t.timestamp() * 1000) for t in day_bounds(day))
    items_key = BRONZE_ITEMS_COLUMN[kind]
    names = bronze_schema(kind).names
    cols: dict[str, list] = {n: [] for n in names}
    for r in records:
        if not start <= r.timestamp < end:
            continue
        env, corrupt = parse_envelope(r.value)
        headers = [{"key": k, "value": _decode(v)} for k, v in (r.headers or [])]
        header = {}
        for h in headers:
            header.setdefault(h["key"], h["value"])
        events = env.get("events") if env else None
        items = None
        if events is not None:
            items = [t for e in events for t in ((e or {}).get(items_key) or [])]
        first_event = events[0] if events else None
        first_item = items[0] if items else None
        key = _decode(r.key)
        reason = _reason(r.value, env, corrupt, items_key, kind, items)
        row = {
            "topic": r.topic, "partition": r.partition, "offset": r.offset,
            "kafka_timestamp": r.timestamp * 1000, "key": key, "value": r.value,
            "source": header.get("source"), "connection_id": header.get("connection_id"), "headers": headers,
            "channel": env.get("channel") if env else None,
            "envelope_timestamp": env.get("timestamp") if env else None,
            "sequence_num": try_bigint(env.get("sequence_num")) if env else None,
            "event_type": first_event.get("type") if first_event else None,
            "product_id": pid if (pid := (first_item or {}).get("product_id")) is not None else key,
            items_key: items, "is_malformed": reason is not None, "malformed_reason": reason,
            "ingest_date": datetime.fromtimestamp(r.timestamp / 1000, timezone.utc).date(),
        }
        for n in names:
            cols[n].append(row[n])
    schema = bronze_schema(kind)
    try:
        arrays = [pa.array(cols[f.name], f.type if f.name != "kafka_timestamp" else pa.int64())
                  for f in schema]
    except (pa.ArrowException, UnicodeEncodeError) as exc:  # e.g. a lone surrogate Java writes as '?'
        raise Ambiguous(str(exc)) from None
    arrays[names.index("kafka_timestamp")] = arrays[names.index("kafka_timestamp")].cast(schema.field(
        "kafka_timestamp").type)
    return pa.Table.from_arrays(arrays, schema=schema)


def read_records(kafka: KafkaAccess, window: OffsetWindow) -> list:
    """The Kafka records of the window, read with kafka-python (assign, seek to the start offsets,
    poll until the end offsets); fails with one line when the broker stops answering."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    wanted = {p: (window.start[p], window.end[p]) for p in window.start if window.end[p] > window.start[p]}
    if not wanted:
        return []
    consumer = kafka._consumer()
    out: list = []
    try:
        tps = {p: TopicPartition(window.topic, p) for p in wanted}
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, wanted[p][0])
        pending, last = set(wanted), time.monotonic()
        while pending:
            batch = consumer.poll(timeout_ms=500, max_records=50_000)
            for tp, recs in batch.items():
                hi = wanted[tp.partition][1]
                out.extend(r for r in recs if r.offset < hi)
                last = time.monotonic()
            for p in list(pending):
                if consumer.position(tps[p]) >= wanted[p][1]:
                    pending.discard(p)
                    consumer.pause(tps[p])
            if pending and time.monotonic() - last > STALL_SECONDS:
                raise KafkaUnavailableError(
                    f"Kafka stopped returning records of {window.topic!r} at {kafka.bootstrap_servers} "
                    f"(partitions {sorted(pending)} unfinished after {STALL_SECONDS:.0f} s): check the broker and run again")
    except KafkaError as exc:
        log.debug("kafka read failed: %r", exc)
        raise kafka._unreachable() from None
    finally:
        consumer.close()
    return out


def read_bronze_window(kafka: KafkaAccess, window: OffsetWindow, kind: str, day: date) -> pa.Table | None:
    """The day's Bronze rows of the window, sorted by (partition, offset); None when Spark must read it
    (a record Spark might read differently, or offsets missing from what Kafka returned)."""
    records = read_records(kafka, window)
    got: dict[int, int] = {}
    for r in records:
        got[r.partition] = got.get(r.partition, 0) + 1
    if any(got.get(p, 0) != window.end[p] - window.start[p] for p in window.start):
        log.info("bronze %s %s: Kafka returned other offsets than the window's; reading with Spark", kind, day)
        return None
    records.sort(key=lambda r: (r.partition, r.offset))
    try:
        return bronze_rows(records, kind, day)
    except Ambiguous as exc:
        log.info("bronze %s %s: a record Spark may read differently (%s); reading with Spark", kind, day, exc)
        return None

