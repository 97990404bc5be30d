"""Test doubles for the producer's sink (the real one needs a broker), and exposition parsing."""

from __future__ import annotations

import re

from producer.metrics import LatencyHistogram
from producer.sink_accounting import LossLedger, SinkStats


class RecordingSink:
    """Acknowledges every record at once and remembers it; the KafkaSink interface the pipeline uses."""

    def __init__(self, latency_ns: int = 2_000_000):
        self.records = []
        self.stats = SinkStats()
        self.losses = LossLedger()
        self.latency = LatencyHistogram()
        self.latency_ns = latency_ns
        self.max_buffered_records = 1000
        self.max_buffered_bytes = 1 << 20
        self.polls = 0

    def send(self, record, t0_ns=None) -> bool:
        self.records.append(record)
        self.stats.sent += 1
        self.stats.acked += 1
        self.stats.sent_bytes += len(record.value)
        self.stats.acked_bytes += len(record.value)
        self.stats.by_topic[record.topic] = self.stats.by_topic.get(record.topic, 0) + 1
        if t0_ns is not None:
            self.latency.observe_ns(self.latency_ns)
        return True

    def poll(self) -> None:
        self.polls += 1

    def flush(self, timeout_s=None) -> bool:
        return True

    def close(self, timeout_s=30.0) -> None:
        pass


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, labels): value}; fails on any line that is not valid."""
    out = {}
    types = {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        name, _, labels, value = m.groups()
        pairs = frozenset(_LABEL.findall(labels or ""))
        out[(name, pairs)] = float(value.replace("+Inf", "inf"))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"sample {name} has no TYPE line"
    return out
