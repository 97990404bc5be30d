"""`crypto-pipeline produce --source coinbase`: the live feed wired together, with status, metrics, signals.

The connection (`connection.py`), the message format (`routing.py`, `health.py`) and the sink
(`kafka_sink.py`) are joined by `pipeline.py`; this module adds the once-a-second housekeeping
thread (status line, buffer health, subscription check, recording flush), the metrics endpoint and
SIGINT/SIGTERM handling (stop, flush, summary). Its options are `contracts.settings.ProducerSettings`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from crypto_assets.contracts.settings import ProducerSettings, Settings, SettingsError, parse_port_or_off
from producer.coinbase import (
    Credentials,
    subscribe_messages,
    wanted_subscriptions,
)
from producer.connection import Backoff, FeedConnection
from producer.kafka_sink import KafkaSink
from producer.pipeline import FeedPipeline

log = logging.getLogger(__name__)


def metrics_port_arg(text: str) -> str:
    """argparse type of --metrics-port: a port number, 0 (any free port) or 'off', checked here and kept as
    given (`ProducerSettings` reads it like CRYPTO_PRODUCER_METRICS_PORT, so 'off' stays distinct from unset)."""
    import argparse

    try:
        parse_port_or_off(text)
        return text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--metrics-port {exc}") from None


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


def run_live(settings: Settings, options: ProducerSettings, stop: threading.Event,
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
    """The settings with the products of `--products` (a comma-separated list), if given."""
    if not products:
        return settings
    try:
        return settings.replace(products=products)
    except SettingsError as exc:  # the same rule as CRYPTO_PRODUCTS, said of the option
        raise SettingsError(str(exc).replace(Settings.env_name("products"), "--products", 1)) from None
