"""`crypto-pipeline`: the command line of the project (broker, producer, demo, settings).

Every user-caused error ends in one line on stderr saying what is wrong and what to do,
and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from crypto_assets.settings import Settings, SettingsError, settings_markdown


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Chatty libraries: kafka-python narrates every connection, alembic every schema check.
    for name in ("kafka", "alembic", "py4j"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def cmd_kafka(args, settings: Settings) -> int:
    from crypto_assets.broker import LocalBroker

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


def cmd_settings(args, settings: Settings) -> int:
    if args.markdown:
        print(settings_markdown())
    else:
        for name, value in vars(settings).items():
            print(f"CRYPTO_{name.upper()}={','.join(value) if isinstance(value, tuple) else value}")
    return 0


def cmd_jars(args, settings: Settings) -> int:
    from crypto_assets.jvm import kafka_broker_jars, spark_kafka_jars

    broker = kafka_broker_jars(settings)
    spark = spark_kafka_jars(settings)
    print(f"Kafka broker: {len(broker)} jars in {broker[0].parent}")
    print(f"Spark Kafka source: {len(spark)} jars in {spark[0].parent}")
    return 0


def cmd_produce(args, settings: Settings) -> int:
    from producer.run import run_offline_source

    summary = run_offline_source(
        settings,
        source=args.source,
        path=args.file,
        seed=args.seed,
        duration_s=args.duration,
        speed=args.speed,
    )
    print(summary)
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from crypto_assets.demo import run_demo

    return run_demo(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crypto-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="start, stop or inspect the local Kafka broker")
    k.add_argument("action", choices=["up", "down", "status"])
    k.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker to be ready")
    k.set_defaults(func=cmd_kafka)

    s = sub.add_parser("settings", help="print the effective settings")
    s.add_argument("--markdown", action="store_true", help="print the README's settings table")
    s.set_defaults(func=cmd_settings)

    j = sub.add_parser("jars", help="resolve the JVM dependencies from Maven Central (cached)")
    j.set_defaults(func=cmd_jars)

    p = sub.add_parser("produce", help="publish market data into Kafka")
    p.add_argument("--source", choices=["synthetic", "replay"], required=True)
    p.add_argument("file", nargs="?", help="NDJSON recording for --source replay")
    p.add_argument("--seed", type=int, default=7, help="synthetic: random seed")
    p.add_argument("--duration", type=float, default=600.0, help="synthetic: simulated seconds")
    p.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible, 1 = recorded pace, 2 = twice as fast")
    p.set_defaults(func=cmd_produce)

    d = sub.add_parser("demo", help="offline end-to-end run: broker, data, Bronze")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    from crypto_assets.broker import BrokerError
    from crypto_assets.jvm import SetupError
    from producer.kafka_sink import SinkUnavailableError

    try:
        settings = Settings.from_env()
        return args.func(args, settings)
    except (SettingsError, SetupError, BrokerError, SinkUnavailableError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
