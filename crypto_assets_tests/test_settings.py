"""Typed settings: defaults, CRYPTO_* overrides, clear errors."""

from __future__ import annotations

import pytest

from crypto_assets.contracts.settings import Settings, SettingsError, settings_markdown


def test_defaults_are_local_and_derived():
    s = Settings.from_env(environ={}, home="/srv/p")
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.lake_root == "/srv/p/lake" and s.state_dir == "/srv/p/.state"
    assert s.topics == ("crypto.ticker.raw", "crypto.trades.raw")
    assert s.products == ("BTC-USD", "ETH-USD")


def test_environment_overrides_each_type():
    s = Settings.from_env(environ={
        "CRYPTO_KAFKA_PORT": "19092", "CRYPTO_PRODUCTS": "SOL-USD, BTC-USD", "CRYPTO_LAKE_ROOT": "/data/lake",
        "CRYPTO_SPARK_MASTER": "local[1]",
    })
    assert s.kafka_port == 19092 and s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.products == ("SOL-USD", "BTC-USD")
    assert s.lake_root == "/data/lake" and s.spark_master == "local[1]"


def test_explicit_bootstrap_wins_over_port():
    s = Settings.from_env(environ={"CRYPTO_KAFKA_PORT": "19092", "CRYPTO_KAFKA_BOOTSTRAP": "b-1.msk:9096"})
    assert s.kafka_bootstrap == "b-1.msk:9096"


@pytest.mark.parametrize("env, fragment", [
    ({"CRYPTO_KAFKA_PORT": "ninety"}, "CRYPTO_KAFKA_PORT='ninety' is not valid"),
    ({"CRYPTO_KAFKA_PARTITIONS": "0"}, "CRYPTO_KAFKA_PARTITIONS must be >= 1"),
    ({"CRYPTO_KAFKA_PORT": "9093"}, "must differ"),
    ({"CRYPTO_PRODUCTS": " , "}, "CRYPTO_PRODUCTS"),
    ({"CRYPTO_FIRST_DATE": "2024-13-01"}, "CRYPTO_FIRST_DATE='2024-13-01' is not a date; expected YYYY-MM-DD"),
])
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(SettingsError, match=None) as err:
        Settings.from_env(environ=env)
    assert fragment in str(err.value)


def test_readme_table_lists_every_setting():
    table = settings_markdown()
    for name in vars(Settings.from_env(environ={})):
        assert f"`CRYPTO_{name.upper()}`" in table


def test_readme_settings_table_matches_the_code():
    from crypto_assets_tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- settings-table:start -->\n", 1)[1].split("\n<!-- settings-table:end -->", 1)[0]
    assert block == settings_markdown(), "regenerate with: crypto-pipeline settings --markdown"
