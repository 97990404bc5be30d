"""Kafka security settings -> kafka-python arguments and Spark Kafka source options; secrets stay out of sight."""

from __future__ import annotations

import pytest

from crypto_assets.contracts.kafka_security import kafka_python_config, producer_config, redacted, spark_kafka_options
from crypto_assets.contracts.settings import Settings, SettingsError, settings_markdown
from crypto_assets.orchestration.resources.kafka import KafkaResource

CREDS = {"CRYPTO_KAFKA_SASL_USERNAME": "alice", "CRYPTO_KAFKA_SASL_PASSWORD": 's3cr"et'}


def test_plaintext_adds_nothing():
    assert kafka_python_config("PLAINTEXT", "SCRAM-SHA-512", environ={}) == {}
    assert spark_kafka_options("PLAINTEXT", "SCRAM-SHA-512", environ={}) == {}
    # Only the read options every path shares (headers; a read that meets deleted offsets fails).
    assert KafkaResource.from_settings(Settings.from_env(environ={})).spark_options() == {
        "kafka.bootstrap.servers": "127.0.0.1:9092", "includeHeaders": "true", "failOnDataLoss": "true"}


def test_sasl_ssl_scram_maps_to_both_clients():
    assert kafka_python_config("SASL_SSL", "SCRAM-SHA-512", environ=CREDS) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice", "sasl_plain_password": 's3cr"et',
    }
    spark = spark_kafka_options("SASL_SSL", "SCRAM-SHA-512", environ=CREDS)
    assert spark == {
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                  'username="alice" password="s3cr\\"et";',
    }
    assert redacted(spark)["kafka.sasl.jaas.config"] == "***"
    assert "s3cr" not in str(redacted(kafka_python_config("SASL_SSL", "PLAIN", environ=CREDS)))


def test_msk_iam_uses_aws_credentials_not_a_password():
    assert kafka_python_config("SASL_SSL", "AWS_MSK_IAM", environ={}) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"}
    spark = spark_kafka_options("SASL_SSL", "AWS_MSK_IAM", environ={})
    assert spark["kafka.sasl.mechanism"] == "AWS_MSK_IAM"
    assert spark["kafka.sasl.jaas.config"] == "software.amazon.msk.auth.iam.IAMLoginModule required;"
    assert spark["kafka.sasl.client.callback.handler.class"].endswith("IAMClientCallbackHandler")


def test_ssl_without_sasl_and_explicit_credentials():
    assert kafka_python_config("SSL", "SCRAM-SHA-512", environ={}) == {"security_protocol": "SSL"}
    assert spark_kafka_options("SSL", "PLAIN", environ={}) == {"kafka.security.protocol": "SSL"}
    opts = spark_kafka_options("SASL_SSL", "PLAIN", environ={}, credentials=("u", "p"))
    assert 'PlainLoginModule required username="u" password="p";' in opts["kafka.sasl.jaas.config"]


def test_missing_credentials_name_the_variables():
    with pytest.raises(SettingsError, match="CRYPTO_KAFKA_SASL_USERNAME and CRYPTO_KAFKA_SASL_PASSWORD"):
        kafka_python_config("SASL_SSL", "SCRAM-SHA-512", environ={})


def test_settings_resource_and_producer_wiring(monkeypatch, capsys):
    env = {"CRYPTO_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CRYPTO_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
           "CRYPTO_KAFKA_BOOTSTRAP": "b-1.msk:9096", **CREDS}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings.from_env()
    opts = KafkaResource.from_settings(s).spark_options()
    assert opts["kafka.bootstrap.servers"] == "b-1.msk:9096" and opts["kafka.sasl.mechanism"] == "SCRAM-SHA-256"
    assert producer_config(s)["sasl_plain_username"] == "alice"
    assert producer_config(s)["sasl_plain_password"] == 's3cr"et'
    # The password is a secret type: never in the table, the settings' repr or `crypto-pipeline settings`.
    from crypto_assets.tools.cli import main

    assert main(["settings"]) == 0
    printed = capsys.readouterr().out
    assert "CRYPTO_KAFKA_SASL_USERNAME=alice" in printed and "CRYPTO_KAFKA_SASL_PASSWORD=**********" in printed
    assert not any("s3cr" in text for text in (settings_markdown(), repr(s), str(s), printed))


@pytest.mark.parametrize("env, fragment", [
    ({"CRYPTO_KAFKA_SECURITY_PROTOCOL": "TLS"}, "CRYPTO_KAFKA_SECURITY_PROTOCOL='TLS' is not valid"),
    ({"CRYPTO_KAFKA_SASL_MECHANISM": "MD5"}, "CRYPTO_KAFKA_SASL_MECHANISM='MD5'"),
    ({"CRYPTO_COMPUTE": "emr"}, "CRYPTO_COMPUTE='emr' is not valid; expected one of local, glue"),
    ({"CRYPTO_GLUE_WORKERS": "1"}, "CRYPTO_GLUE_WORKERS must be >= 2"),
])
def test_bad_aws_and_kafka_settings_name_the_variable(env, fragment):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(environ=env)
    assert fragment in str(err.value)


def test_kafka_client_uses_its_credentials_not_the_environment(monkeypatch):
    """The Glue Bronze batch jobs hand the credentials of their Secrets Manager secret to both Kafka clients."""
    from crypto_assets.bronze.kafka_source import KafkaClient

    for k in CREDS:
        monkeypatch.delenv(k, raising=False)
    client = KafkaClient("b-1.msk:9096", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         credentials=("glue", "fr0m-secret"))
    assert 'username="glue" password="fr0m-secret"' in client.spark_options()["kafka.sasl.jaas.config"]
    assert kafka_python_config("SASL_SSL", "SCRAM-SHA-512", environ={}, credentials=("glue", "fr0m-secret"))[
        "sasl_plain_password"] == "fr0m-secret"
    with pytest.raises(SettingsError, match="CRYPTO_KAFKA_SASL_USERNAME"):  # without them: the environment
        KafkaClient("b-1.msk:9096", security_protocol="SASL_SSL").spark_options()
