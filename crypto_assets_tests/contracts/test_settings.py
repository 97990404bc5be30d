"""Typed settings: defaults, CRYPTO_* overrides, clear errors."""

from __future__ import annotations

import pytest

from crypto_assets.contracts.settings import ProducerSettings, Settings, SettingsError, environment, settings_markdown


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


DECLARED = (Settings, ProducerSettings)


@pytest.mark.parametrize("cls", DECLARED)
def test_every_setting_is_declared_with_a_description_and_an_environment_name(cls):
    for name, field in cls.model_fields.items():
        assert field.description and len(field.description) > 20, name
        var = cls.env_name(name)
        assert var.isupper() and var.startswith(("CRYPTO_", "COINBASE_")), var
        assert f"`{var}`" in settings_markdown()


def test_environment_names_are_unique_across_the_declarations():
    names = [cls.env_name(n) for cls in DECLARED for n in cls.model_fields]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("cls, env, line", [
    (Settings, {"CRYPTO_KAFKA_PORT": "ninety"}, "CRYPTO_KAFKA_PORT='ninety' is not valid; expected an integer"),
    (Settings, {"CRYPTO_COMPUTE": "emr"}, "CRYPTO_COMPUTE='emr' is not valid; expected one of local, glue"),
    (Settings, {"CRYPTO_PRODUCTS": "BTC-USD,btc_eur"},
     "CRYPTO_PRODUCTS='BTC-USD,btc_eur' is not valid; 'btc_eur' is not a Coinbase product id"),
    (Settings, {"CRYPTO_BRONZE_MODE": "kappa"}, "CRYPTO_BRONZE_MODE='kappa' is not valid; expected one of batch, stream"),
    (ProducerSettings, {"CRYPTO_PRODUCER_METRICS_PORT": "http"},
     "CRYPTO_PRODUCER_METRICS_PORT='http' is not valid; expected a port (0-65535) or 'off'"),
    (ProducerSettings, {"CRYPTO_PRODUCER_WATCHDOG_S": "soon"}, "CRYPTO_PRODUCER_WATCHDOG_S='soon' is not valid; expected a number"),
    (ProducerSettings, {"CRYPTO_PRODUCER_BUFFER_RECORDS": "0"}, "CRYPTO_PRODUCER_BUFFER_RECORDS='0' is not valid"),
    (ProducerSettings, {"CRYPTO_COINBASE_WS_URL": "https://x"}, "CRYPTO_COINBASE_WS_URL='https://x' is not valid"),
])
def test_a_bad_value_is_one_line_naming_the_variable_and_what_it_accepts(cls, env, line):
    with pytest.raises(SettingsError) as err:
        cls.from_env(environ=env)
    message = str(err.value)
    assert message.startswith(line) and "\n" not in message


def test_a_bad_secret_is_named_but_never_shown():
    with pytest.raises(SettingsError) as err:
        Settings.from_env(environ={"CRYPTO_KAFKA_SASL_PASSWORD": "hunter2"}, kafka_sasl_password=12345)
    assert "CRYPTO_KAFKA_SASL_PASSWORD" in str(err.value) and "12345" not in str(err.value)
    with pytest.raises(SettingsError) as err:  # every secret type, whatever its name says
        ProducerSettings(coinbase_api_private_key=67890)
    assert "COINBASE_API_PRIVATE_KEY" in str(err.value) and "67890" not in str(err.value)


def test_direct_construction_ignores_the_environment(monkeypatch):
    """Settings(...) is the declaration plus the given values; only from_env reads the environment."""
    monkeypatch.setenv("CRYPTO_KAFKA_PORT", "19092")
    assert Settings(home="/srv/p").kafka_port == 9092
    assert Settings.from_env(home="/srv/p").kafka_port == 19092


def test_replace_validates_and_keeps_derived_values():
    s = Settings(home="/srv/p")
    assert s.replace(kafka_partitions=6).kafka_partitions == 6 and s.replace(home="/elsewhere").lake_root == "/srv/p/lake"
    with pytest.raises(SettingsError, match="CRYPTO_KAFKA_PARTITIONS must be >= 1"):
        s.replace(kafka_partitions=0)


def test_producer_options_from_the_environment_and_the_command_line():
    from crypto_assets.tools.cli import build_parser, producer_options

    env = {"CRYPTO_PRODUCER_WATCHDOG_S": "4", "CRYPTO_PRODUCER_METRICS_PORT": "9200",
           "CRYPTO_COINBASE_WS_URL": "ws://127.0.0.1:1"}
    o = ProducerSettings.from_env(environ=env)
    assert (o.watchdog_s, o.metrics_port, o.ws_url) == (4.0, 9200, "ws://127.0.0.1:1")
    assert ProducerSettings.from_env(environ={"CRYPTO_PRODUCER_METRICS_PORT": "off"}).metrics_port is None
    args = build_parser().parse_args(["produce", "--source", "coinbase", "--metrics-port", "off", "--watchdog", "2"])
    options = producer_options(args)
    assert options.metrics_port is None and options.watchdog_s == 2.0  # `off` turns the endpoint off


def test_settings_round_trip_through_a_child_environment():
    s = Settings.from_env(environ={"CRYPTO_KAFKA_SASL_PASSWORD": "hunter2", "CRYPTO_PRODUCTS": "SOL-USD"}, home="/srv/p")
    assert Settings.from_env(environ=environment(s)) == s
    assert "hunter2" not in repr(s)
