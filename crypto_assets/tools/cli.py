"""`crypto-pipeline`: the command line of the project (broker, producer, demo, settings).

Every user-caused error ends in one line on stderr saying what is wrong and what to do,
and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from crypto_assets.contracts.settings import ProducerSettings, Settings, SettingsError, settings_markdown
from crypto_assets.tools.console import setup_logging


def cmd_kafka(args, settings: Settings) -> int:
    from crypto_assets.tools.broker import LocalBroker

    broker = LocalBroker(settings)
    if args.action == "up":
        status = broker.up(timeout_s=args.timeout)
        print(status.describe())
    elif args.action == "down":
        stopped = broker.down()
        print("Kafka broker stopped" if stopped else "Kafka broker was not running")
    else:
        status = broker.status()
        print(status.describe())
        return 0 if status.running else 3
    return 0


def cmd_spark(args, settings: Settings) -> int:
    from crypto_assets.tools.spark_server import LocalSparkServer

    server = LocalSparkServer(settings)
    if args.action == "up":
        print(server.up().describe())
        print(f"runs attach to it with CRYPTO_SPARK_CONNECT_URL={server.url}")
    elif args.action == "down":
        print("Spark Connect server stopped" if server.down() else "Spark Connect server was not running")
    else:
        status = server.status()
        print(status.describe())
        return 0 if status.running else 3
    return 0


def cmd_settings(args, settings: Settings) -> int:
    if args.markdown:
        print(settings_markdown())
    else:
        for declared in (settings, ProducerSettings.from_env()):
            for name in type(declared).model_fields:
                value = getattr(declared, name)  # a secret prints as **********
                shown = ",".join(value) if isinstance(value, tuple) else "" if value is None else value
                print(f"{type(declared).env_name(name)}={shown}")
    return 0


def cmd_jars(args, settings: Settings) -> int:
    from crypto_assets.lake.jars import spark_iceberg_jars, spark_kafka_jars, spark_s3_jars
    from crypto_assets.tools.jvm import kafka_broker_jars, spark_connect_jars

    broker = kafka_broker_jars(settings)
    spark = spark_kafka_jars(settings)
    s3 = spark_s3_jars(settings)
    iceberg = spark_iceberg_jars(settings)
    connect = spark_connect_jars(settings)
    print(f"Kafka broker: {len(broker)} jars in {broker[0].parent}")
    print(f"Spark Kafka source: {len(spark)} jars in {spark[0].parent}")
    print(f"Spark S3A filesystem: {len(s3)} jars in {s3[0].parent}")
    print(f"Iceberg for Spark: {len(iceberg)} jars in {iceberg[0].parent}")
    print(f"Spark Connect server: {len(connect)} jars in {connect[0].parent}")
    return 0


def producer_options(args):
    """The producer's settings: the environment's, with the options given on the command line."""
    from crypto_assets.contracts.settings import ProducerSettings

    flags = {"ws_url": "--ws-url", "watchdog_s": "--watchdog", "buffer_records": "--buffer-records",
             "buffer_mb": "--buffer-mb", "status_interval_s": "--status-interval", "record": "--record",
             "metrics_port": "--metrics-port"}
    given = {name: getattr(args, flag[2:].replace("-", "_")) for name, flag in flags.items()}
    given = {name: value for name, value in given.items() if value is not None}
    try:
        return ProducerSettings.from_env(**given)
    except SettingsError as exc:  # a bad option is named as the user wrote it
        message = str(exc)
        for name in given:
            message = message.replace(ProducerSettings.env_name(name), flags[name])
        raise SettingsError(message) from None


def cmd_produce(args, settings: Settings) -> int:
    import threading

    from producer.coinbase import Credentials, CredentialsError
    from producer.live import (
        install_stop_signals,
        run_live,
        with_products,
    )
    from producer.run import run_offline_source

    try:
        settings = with_products(settings, args.products)
        options = producer_options(args)
        if args.record and args.source != "coinbase":
            raise SettingsError("--record saves the live stream: use it with --source coinbase")
        if args.file and args.source != "replay":
            raise SettingsError(f"a recording ({args.file}) is only read with --source replay")
        credentials = Credentials.from_settings(options) if args.source == "coinbase" else None
    except (SettingsError, CredentialsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        if args.source == "coinbase":
            pipeline = run_live(settings, options, stop, credentials)
            print(pipeline.summary_line(), flush=True)
            return 0
        summary = run_offline_source(
            settings,
            source=args.source,
            path=args.file,
            seed=args.seed,
            duration_s=args.duration,
            speed=args.speed,
            stop=stop,
            status_interval_s=options.status_interval_s if args.status_interval is not None else 0.0,
            metrics_port=options.metrics_port if args.metrics_port is not None else None,  # offline: only when asked
            workers=args.workers,
        )
        print(summary)
        print(summary.pipeline.summary_line(summary.seconds), flush=True)
        return 0
    except OSError as exc:  # e.g. the metrics port is taken, the recording cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        restore()


def cmd_docs(args, settings: Settings) -> int:
    from pathlib import Path

    from crypto_assets.contracts.gold_features import catalog_markdown

    target = Path(settings.home) / "docs" / "feature_catalog.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(catalog_markdown())
    print(f"wrote {target}")
    return 0


def cmd_stream(args, settings: Settings) -> int:
    import threading

    from crypto_assets.bronze.kafka_source import KafkaUnavailableError
    from crypto_assets.tools.stream_job import StreamError, run_stream
    from producer.live import install_stop_signals

    stop = threading.Event()
    restore = install_stop_signals(
        stop, stopping="stopping the Bronze stream (a restart resumes from its checkpoints)",
        aborting="aborting the Bronze stream at once (a restart resumes from its checkpoints)",
    )
    try:
        report = run_stream(settings, tuple(args.kinds.split(",")), once=args.once, stop=stop)
    except (KafkaUnavailableError, StreamError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        restore()
    print(report)
    return 0


def cmd_backfill(args, settings: Settings) -> int:
    from datetime import date

    from crypto_assets.tools.backfill import LAYERS, run_backfill

    try:
        start = date.fromisoformat(args.start)
        end = date.fromisoformat(args.end or args.start)
        layers = tuple(x.strip() for x in args.layers.split(","))
        unknown = [x for x in layers if x not in LAYERS]
        if unknown:
            raise ValueError(f"unknown layer(s) {', '.join(unknown)}; expected some of {', '.join(LAYERS)}")
        products = [p.strip() for p in args.products.split(",")] if args.products else None
        runs = run_backfill(settings, start, end, products, layers, full=args.full)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if runs and all(r.success for r in runs) else 1


def cmd_live(args, settings: Settings) -> int:
    from crypto_assets.tools.live import run_live

    return run_live(settings, source=args.source, ui_port=args.port)


def cmd_demo(args, settings: Settings) -> int:
    from crypto_assets.tools.demo import run_demo

    return run_demo(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crypto-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug lines and every library's log lines (they always go to <state>/logs/crypto-pipeline.log)")
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="start, stop or inspect the local Kafka broker")
    k.add_argument("action", choices=["up", "down", "status"])
    k.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker to be ready")
    k.set_defaults(func=cmd_kafka)

    sp = sub.add_parser("spark", help="start, stop or inspect the warm local Spark Connect server shared by runs")
    sp.add_argument("action", choices=["up", "down", "status"])
    sp.set_defaults(func=cmd_spark)

    s = sub.add_parser("settings", help="print the effective settings")
    s.add_argument("--markdown", action="store_true", help="print the README's settings table")
    s.set_defaults(func=cmd_settings)

    j = sub.add_parser("jars", help="resolve the JVM dependencies from Maven Central (cached)")
    j.set_defaults(func=cmd_jars)

    from producer.live import metrics_port_arg

    p = sub.add_parser("produce", help="publish market data into Kafka (live Coinbase, a recording, or synthetic)")
    p.add_argument("--source", choices=["coinbase", "replay", "synthetic"], required=True,
                   help="coinbase = live WebSocket; replay FILE = an NDJSON recording; synthetic = seeded market")
    p.add_argument("file", nargs="?", help="NDJSON recording for --source replay")
    p.add_argument("--products", help="comma-separated product ids (default: CRYPTO_PRODUCTS)")
    p.add_argument("--ws-url", help="coinbase: WebSocket URL (default: CRYPTO_COINBASE_WS_URL or the Coinbase endpoint)")
    p.add_argument("--record", metavar="FILE", help="coinbase: also append every received frame to FILE (NDJSON, replayable)")
    p.add_argument("--metrics-port", type=metrics_port_arg, metavar="PORT|off",
                   help="Prometheus metrics on 127.0.0.1:PORT (coinbase default 9108; 0 = any free port; off)")
    p.add_argument("--status-interval", type=float, metavar="S", help="seconds between status lines (default 10)")
    p.add_argument("--watchdog", type=float, metavar="S", help="coinbase: reconnect after S seconds without any message (default 10)")
    p.add_argument("--buffer-records", type=int, metavar="N", help="records kept in memory while Kafka is unreachable (default 100000)")
    p.add_argument("--buffer-mb", type=float, metavar="MB", help="bytes bound of that buffer, MiB (default 64)")
    p.add_argument("--seed", type=int, default=7, help="synthetic: random seed")
    p.add_argument("--duration", type=float, default=600.0, help="synthetic: simulated seconds")
    p.add_argument("--speed", type=float, default=0.0, help="replay/synthetic: 0 = as fast as possible, 1 = recorded pace, 2 = twice as fast")
    p.add_argument("--workers", type=int, metavar="N",
                   help="replay/synthetic: Kafka sender processes (default: 2 on a machine with 2+ cores; 0 = send in-process)")
    p.set_defaults(func=cmd_produce)

    doc = sub.add_parser("docs", help="regenerate docs/feature_catalog.md from the feature registry")
    doc.set_defaults(func=cmd_docs)

    st = sub.add_parser("stream", help="streaming Bronze: Kafka -> Bronze with Spark Structured Streaming (checkpointed)")
    st.add_argument("--kinds", default="trades,ticker", help="comma-separated: trades, ticker")
    st.add_argument("--once", action="store_true", help="land what Kafka holds now, then exit (availableNow trigger)")
    st.set_defaults(func=cmd_stream)

    b = sub.add_parser("backfill", help="rebuild dates x products through Dagster, one run per partition")
    b.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="first date")
    b.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last date (default: --from)")
    b.add_argument("--products", help="comma-separated product ids (default: every known product)")
    b.add_argument("--layers", default="bronze,silver,gold", help="comma-separated: bronze, silver, gold")
    b.add_argument("--full", action="store_true",
                   help="rebuild Silver partitions from all of their Bronze window (default: only what is new)")
    b.set_defaults(func=cmd_backfill)

    lv = sub.add_parser("live", help="broker + producer + streaming Bronze + dagster dev with sensors on, until Ctrl-C")
    lv.add_argument("--source", choices=["coinbase", "synthetic"], default="coinbase",
                    help="coinbase = the live WebSocket (needs internet); synthetic = a paced synthetic market")
    lv.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    lv.set_defaults(func=cmd_live)

    d = sub.add_parser("demo", help="offline end-to-end run: broker, producer, Bronze, then the sensors bring Silver and Gold")
    d.set_defaults(func=cmd_demo)

    from crypto_assets.tools.aws_deploy import add_parser as add_aws_parser
    from crypto_assets.tools.lake_cli import add_parser as add_lake_parser
    from crypto_assets.tools.sql_cli import add_parser as add_sql_parser

    add_lake_parser(sub)
    add_sql_parser(sub)
    from crypto_assets.tools.training_cli import add_parser as add_training_parser

    add_training_parser(sub)
    add_aws_parser(sub)
    from crypto_assets.tools.dashboard import add_parser as add_dashboard_parser

    add_dashboard_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from crypto_assets.lake.catalog import CatalogError
    from crypto_assets.lake.jars import SetupError
    from crypto_assets.tools.broker import BrokerError
    from crypto_assets.tools.spark_server import SparkServerError
    from producer.kafka_sink import SinkUnavailableError

    try:
        settings = Settings.from_env()
        setup_logging(args.verbose, settings.state_dir)
        return args.func(args, settings)
    except (SettingsError, SetupError, CatalogError, BrokerError, SparkServerError, SinkUnavailableError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
