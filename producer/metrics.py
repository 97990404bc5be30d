"""Prometheus text exposition of the producer's counters, served with http.server on 127.0.0.1.

No client library: the producer's components keep plain counters; `render` turns metric
families (name, type, help, samples) into the text format version 0.0.4 at scrape time.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Receive-to-ack latency buckets (seconds): a local broker acks in milliseconds; an outage
# pushes records into the upper buckets.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LatencyHistogram:
    """Cumulative-bucket histogram of nanosecond durations; written by one thread only."""

    def __init__(self, buckets_s: tuple[float, ...] = LATENCY_BUCKETS_S):
        self.buckets_s = buckets_s
        self._bounds_ns = [int(b * 1e9) for b in buckets_s]
        self.counts = [0] * (len(buckets_s) + 1)  # last slot: above the largest bucket
        self.count = 0
        self.sum_ns = 0

    def observe_ns(self, ns: int) -> None:
        self.counts[bisect_left(self._bounds_ns, ns)] += 1
        self.count += 1
        self.sum_ns += ns

    def quantile_s(self, q: float) -> float | None:
        """Estimate (linear within the bucket), as Prometheus' histogram_quantile does."""
        counts = list(self.counts)
        total = sum(counts)
        if not total:
            return None
        rank = q * total
        seen = 0
        lower = 0.0
        for i, c in enumerate(counts):
            upper = self.buckets_s[i] if i < len(self.buckets_s) else self.buckets_s[-1]
            if seen + c >= rank and c:
                if i >= len(self.buckets_s):
                    return upper
                return lower + (upper - lower) * (rank - seen) / c
            seen += c
            lower = upper
        return self.buckets_s[-1]

    def samples(self, name: str) -> list[tuple[str, dict, float]]:
        out = []
        cumulative = 0
        counts = list(self.counts)
        for bound, c in zip(self.buckets_s, counts):
            cumulative += c
            out.append((f"{name}_bucket", {"le": _fmt_float(bound)}, cumulative))
        cumulative += counts[-1]
        out.append((f"{name}_bucket", {"le": "+Inf"}, cumulative))
        out.append((f"{name}_sum", {}, self.sum_ns / 1e9))
        out.append((f"{name}_count", {}, cumulative))
        return out


@dataclass
class Family:
    """One metric family: samples are (labels, value), or (sample name, labels, value) for histograms."""

    name: str
    type: str  # counter | gauge | histogram
    help: str
    samples: list = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((self.name, labels, value))
        return self


def _fmt_float(v: float) -> str:
    return repr(float(v))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_value(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if v != v:  # noqa: PLR0124 - NaN
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def render(families: Iterable[Family]) -> str:
    lines = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {fam.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for sample_name, labels, value in fam.samples:
            if labels:
                body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                lines.append(f"{sample_name}{{{body}}} {_fmt_value(value)}")
            else:
                lines.append(f"{sample_name} {_fmt_value(value)}")
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `GET /metrics` on 127.0.0.1:<port> (0 picks a free port) from a daemon thread."""

    def __init__(self, port: int, collect: Callable[[], Iterable[Family]], host: str = "127.0.0.1"):
        self._collect = collect
        handler = self._handler_class()
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise OSError(
                f"metrics port {port} on {host} is not available ({exc.strerror or exc}): "
                f"pick another with --metrics-port or CRYPTO_PRODUCER_METRICS_PORT (0 = any free port)"
            ) from None
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics: %s", self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        collect = self._collect

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "try /metrics")
                    return
                try:
                    body = render(collect()).encode()
                except Exception:  # a scrape must never take the producer down
                    log.exception("metrics: rendering failed")
                    self.send_error(500, "metrics rendering failed")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):  # scrapes are not worth a log line each
                log.debug("metrics: " + fmt, *args)

        return Handler
