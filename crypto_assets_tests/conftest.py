"""Session fixtures: one real Kafka broker and one SparkSession for the whole suite.

The broker runs on free ports with its own state folder, so a developer's broker on 9092 is
left alone. Tests isolate themselves with their own topics (`fresh_settings`) and lake folders.

The tests mirror the code's layers (contracts/, producer/, lake/, bronze/, silver/, gold/,
orchestration/, glue_jobs/, tools/, ui/); `support/` holds what several of them share: the fake
Coinbase exchange, the producer's fake sinks, the local Glue runner and its `awsglue` stand-in,
the moto fixtures (registered below) and the Kafka record builders.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from crypto_assets.contracts.settings import Settings

pytest_plugins = ["crypto_assets_tests.support.aws"]

REPO = Path(__file__).resolve().parent.parent
TEST_STATE = REPO / ".state" / "test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    kafka_port = free_port()
    controller_port = free_port()
    while controller_port == kafka_port:
        controller_port = free_port()
    return Settings.from_env(
        environ={},
        home=str(REPO),
        state_dir=str(TEST_STATE / f"session-{os.getpid()}"),
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        lake_root=str(TEST_STATE / f"lake-{os.getpid()}"),
        # Tests write records with hand-picked timestamps; no skew widening needed beyond a minute.
        kafka_timestamp_skew_minutes=60,
        # Tests materialize fixed days of their own in empty lakes: the partitions must reach back to them.
        first_date="2024-01-01",
    )


@pytest.fixture(scope="session")
def kafka_broker(base_settings):
    from crypto_assets.tools.broker import LocalBroker

    broker = LocalBroker(base_settings)
    broker.up()
    yield broker
    broker.down()


@pytest.fixture(scope="session")
def spark(base_settings):
    from crypto_assets.lake.spark import build_spark_session

    session = build_spark_session(
        master="local[2]", shuffle_partitions=2, driver_memory="2g",
        state_dir=base_settings.state_dir, jvm_dir=base_settings.jvm_dir,
    )
    yield session
    session.stop()


@pytest.fixture
def fresh_settings(base_settings, kafka_broker, tmp_path) -> Settings:
    """Settings with topics of their own (created on the session broker) and a lake of their own."""
    from crypto_assets.tools.broker import LocalBroker

    tag = uuid.uuid4().hex[:8]
    settings = base_settings.replace(trades_topic=f"t{tag}.trades.raw", ticker_topic=f"t{tag}.ticker.raw",
                                     deadletter_topic=f"t{tag}.deadletter.raw", lake_root=str(tmp_path / "lake"))
    LocalBroker(settings).ensure_topics()
    return settings
