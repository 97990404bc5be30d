"""`crypto-pipeline produce --source coinbase`: the live feed wired together, with status, metrics, signals.

The connection (`connection.py`), the message format (`routing.py`, `health.py`) and the sink
(`kafka_sink.py`) are joined by `pipeline.py`; this module adds the producer's own options,
the once-a-second housekeeping thread (status line, buffer health, subscription check,
recording flush), the metrics endpoint and SIGINT/SIGTERM handling (stop, flush, summary).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, fields
from typing import ClassVar

from crypto_assets.contracts.settings import Settings
from producer.coinbase import (
    DEFAULT_WS_URL,
    Credentials,
    subscribe_messages,
    wanted_subscriptions,
)
from producer.connection import Backoff, FeedConnection
from producer.kafka_sink import KafkaSink
from producer.pipeline import FeedPipeline

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9108


class OptionsError(ValueError):
    """A producer option has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class ProducerOptions:
    """The producer's own settings; each has a `CRYPTO_<ENV>` override (see ENV) and a CLI option."""

    ws_url: str = DEFAULT_WS_URL
    watchdog_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    min_connect_interval_s: float = 0.5
    buffer_records: int = 100_000
    buffer_mb: float = 64.0
    metrics_port: int | None = DEFAULT_METRICS_PORT  # None = no endpoint; 0 = any free port
    status_interval_s: float = 10.0
    linger_ms: int = 5
    record: str | None = None
    close_timeout_s: float = 30.0

    ENV: ClassVar[dict[str, str]] = {
        "ws_url": "CRYPTO_COINBASE_WS_URL",
        "watchdog_s": "CRYPTO_PRODUCER_WATCHDOG_S",
        "backoff_base_s": "CRYPTO_PRODUCER_BACKOFF_BASE_S",
        "backoff_cap_s": "CRYPTO_PRODUCER_BACKOFF_CAP_S",
        "min_connect_interval_s": "CRYPTO_PRODUCER_MIN_CONNECT_INTERVAL_S",
        "buffer_records": "CRYPTO_PRODUCER_BUFFER_RECORDS",
        "buffer_mb": "CRYPTO_PRODUCER_BUFFER_MB",
        "metrics_port": "CRYPTO_PRODUCER_METRICS_PORT",
        "status_interval_s": "CRYPTO_PRODUCER_STATUS_INTERVAL_S",
        "linger_ms": "CRYPTO_PRODUCER_LINGER_MS",
    }

    def __post_init__(self) -> None:
        if not (self.ws_url.startswith("ws://") or self.ws_url.startswith("wss://")):
            raise OptionsError(f"WebSocket URL {self.ws_url!r} must start with ws:// or wss:// ({self.ENV['ws_url']})")
        for name in ("watchdog_s", "backoff_base_s", "buffer_mb"):
            if getattr(self, name) <= 0:
                raise OptionsError(f"{self.ENV[name]} must be > 0, got {getattr(self, name)}")
        if self.backoff_cap_s < self.backoff_base_s:
            raise OptionsError(f"{self.ENV['backoff_cap_s']} must be >= {self.ENV['backoff_base_s']}")
        if self.buffer_records < 1:
            raise OptionsError(f"{self.ENV['buffer_records']} must be >= 1, got {self.buffer_records}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise OptionsError(f"{self.ENV['metrics_port']} must be a port (0-65535) or 'off', got {self.metrics_port}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> ProducerOptions:
        """Defaults, then the environment, then explicit overrides (CLI options that were given)."""
        env = os.environ if environ is None else environ
        values: dict = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in cls.ENV.items():
            raw = env.get(var, "")
            if raw == "":
                continue
            values[name] = _parse(var, raw, types[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def buffer_bytes(self) -> int:
        return int(self.buffer_mb * 1024**2)


def _parse(var: str, raw: str, type_name: str):
    try:
        if "int | None" in type_name:
            return None if raw.strip().lower() in ("off", "none", "no") else int(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        return raw
    except ValueError:
        raise OptionsError(f"{var}={raw!r} is not valid; expected {type_name.split(' |')[0]}") from None


def metrics_port_arg(text: str) -> int | None:
    """argparse type of --metrics-port: a port number, 0 (any free port) or 'off'."""
    import argparse

    try:
        port = _parse("--metrics-port", text, "int | None")
    except OptionsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if port is not None and not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--metrics-port must be 0-65535 or 'off', got {port}")
    return port


# ---- signals -------------------------------------------------------------------------------


def install_stop_signals(stop: threading.Event, stopping: str = "stopping, flushing Kafka",
                         aborting: str = "aborting without waiting for Kafka"):
    """SIGINT/SIGTERM set `stop` (the producer flushes and exits 0); a second one aborts at once.

    `stopping` and `aborting` say what the command does on the first and on a second signal (the
    log reads "SIGTERM received: <stopping>", "SIGTERM again: <aborting>"); the defaults are the
    producer's. Returns a function that restores the previous handlers.
    """
    previous = {}

    def handler(signum, _frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s again: %s", name, aborting)
            raise KeyboardInterrupt
        log.info("%s received: %s", name, stopping)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


# ---- housekeeping --------------------------------------------------------------------------


class Housekeeper:
    """Once a second: sink health and loss reports, recording flush, subscription check; the status line."""

    def __init__(self, pipeline: FeedPipeline, status_interval_s: float, wanted: dict | None = None,
                 connection: FeedConnection | None = None, subscribe_grace_s: float = 10.0):
        self.pipeline = pipeline
        self.status_interval_s = status_interval_s
        self.wanted = wanted
        self.connection = connection
        self.subscribe_grace_s = subscribe_grace_s
        self._stop = threading.Event()
        self._checked: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="producer-housekeeping", daemon=True)

    def start(self) -> Housekeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        next_status = time.monotonic() + self.status_interval_s if self.status_interval_s > 0 else float("inf")
        tick = min(1.0, self.status_interval_s) if self.status_interval_s > 0 else 1.0
        while not self._stop.wait(tick):
            try:
                self.pipeline.poll()
                self._check_subscriptions()
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + self.status_interval_s
                    log.info(self.pipeline.status_line())
            except Exception:  # housekeeping must not die, nor take the feed with it
                log.exception("producer housekeeping failed")

    def _check_subscriptions(self) -> None:
        conn = self.connection
        if conn is None or not self.wanted or not conn.connected or conn.connection_id in self._checked:
            return
        if time.monotonic() - (conn.opened_mono or 0) < self.subscribe_grace_s:
            return
        self._checked.add(conn.connection_id)
        missing = self.pipeline.health.missing_subscriptions(self.wanted)
        if missing:
            log.warning("connection %s: no subscriptions acknowledgement after %.0f s for %s; data for them may "
                        "not arrive (the watchdog reconnects if nothing does)", conn.connection_id,
                        self.subscribe_grace_s, missing)


# ---- the live producer -----------------------------------------------------------------------


def run_live(settings: Settings, options: ProducerOptions, stop: threading.Event,
             credentials: Credentials | None = None, on_ready=None,
             keep_latency_samples: bool = False) -> FeedPipeline:
    """Streams Coinbase into Kafka until `stop` is set; returns the pipeline (its summary_line says it all).

    `on_ready(pipeline, metrics_server)` is called once everything is set up (tests, benchmarks);
    `keep_latency_samples` keeps every receive-to-ack time in `pipeline.sink.latency_samples_ns`.
    """
    from crypto_assets.contracts.kafka_security import producer_config
    from producer.metrics import MetricsServer
    from producer.recording import Recorder

    products = tuple(settings.products)
    sink = KafkaSink(
        settings.kafka_bootstrap,
        linger_ms=options.linger_ms,
        batch_size=256 * 1024,
        max_buffered_records=options.buffer_records,
        max_buffered_bytes=options.buffer_bytes,
        when_full="drop",
        topics=(settings.trades_topic, settings.ticker_topic, settings.deadletter_topic),
        track_latency=True,
        keep_latency_samples=keep_latency_samples,
        **producer_config(settings),
    )
    recorder = None
    metrics = None
    housekeeper = None
    pipeline = None
    try:
        recorder = Recorder(options.record) if options.record else None
        pipeline = FeedPipeline.from_settings(settings, sink, "coinbase", recorder)
        connection = FeedConnection(
            options.ws_url,
            lambda: subscribe_messages(products, credentials),
            pipeline,
            watchdog_s=options.watchdog_s,
            backoff=Backoff(options.backoff_base_s, options.backoff_cap_s),
            min_interval_s=options.min_connect_interval_s,
        )
        pipeline.connection = connection
        if options.metrics_port is not None:
            metrics = MetricsServer(options.metrics_port, pipeline.metric_families).start()
        housekeeper = Housekeeper(pipeline, options.status_interval_s, wanted_subscriptions(products), connection).start()
        log.info(
            "streaming %s from %s into Kafka at %s (%s, %s; dead letters to %s)%s%s",
            ",".join(products), options.ws_url, settings.kafka_bootstrap, settings.trades_topic,
            settings.ticker_topic, settings.deadletter_topic,
            "; authenticated" if credentials else "; unauthenticated (public channels)",
            f"; metrics {metrics.url}" if metrics else "",
        )
        if on_ready is not None:
            on_ready(pipeline, metrics)
        connection.run(stop)
    finally:
        if housekeeper is not None:
            housekeeper.stop()
        if pipeline is not None:
            pipeline.flush_log()
        sink.close(timeout_s=options.close_timeout_s)
        if recorder is not None:
            recorder.close()
        if metrics is not None:
            metrics.stop()
    return pipeline


def with_products(settings: Settings, products: str | None) -> Settings:
    if not products:
        return settings
    items = tuple(p.strip() for p in products.split(",") if p.strip())
    if not items:
        raise OptionsError("--products needs at least one product id, e.g. BTC-USD,ETH-USD")
    return dataclasses.replace(settings, products=items)
