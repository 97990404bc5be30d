"""Kafka client security (TLS, SASL/SCRAM, AWS MSK IAM) for the producer, Dagster and Spark's Kafka source.

One mapping from the settings to each client's option names. SASL user name and password are the
settings `kafka_sasl_username` and `kafka_sasl_password` (`CRYPTO_KAFKA_SASL_USERNAME`,
`CRYPTO_KAFKA_SASL_PASSWORD`; the password a secret type), never logged: `redacted()` is what may
be shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from crypto_assets.contracts.settings import Settings, SettingsError

USERNAME_VAR = Settings.env_name("kafka_sasl_username")
PASSWORD_VAR = Settings.env_name("kafka_sasl_password")

_JAAS_MODULE = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def sasl_credentials(environ: Mapping[str, str] | None = None, settings: Settings | None = None) -> tuple[str, str]:
    """SASL user name and password of `settings`, else of the settings in the environment (`os.environ`
    unless `environ` is given)."""
    s = settings if settings is not None else Settings.from_env(environ)
    user, password = s.kafka_sasl_username, s.kafka_sasl_password.get_secret_value()
    if not user or not password:
        raise SettingsError(f"SASL user name/password missing: set {USERNAME_VAR} and {PASSWORD_VAR}")
    return user, password


def _uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


def kafka_python_config(protocol: str, mechanism: str, environ: Mapping[str, str] | None = None,
                        credentials: tuple[str, str] | None = None) -> dict:
    """kafka-python (producer, consumer, admin) keyword arguments; empty for PLAINTEXT.

    `credentials` overrides the environment (the Glue Bronze batch jobs read them from Secrets Manager)."""
    if protocol == "PLAINTEXT":
        return {}
    config: dict = {"security_protocol": protocol}
    if _uses_sasl(protocol):
        config["sasl_mechanism"] = mechanism
        if mechanism != "AWS_MSK_IAM":  # kafka-python signs with the AWS credentials of botocore's chain
            config["sasl_plain_username"], config["sasl_plain_password"] = credentials or sasl_credentials(environ)
    return config


def spark_kafka_options(protocol: str, mechanism: str, environ: Mapping[str, str] | None = None,
                        credentials: tuple[str, str] | None = None) -> dict[str, str]:
    """Options for Spark's Kafka source (`kafka.`-prefixed consumer properties); empty for PLAINTEXT.

    `credentials` overrides the environment (the Glue Bronze jobs read them from Secrets Manager)."""
    if protocol == "PLAINTEXT":
        return {}
    options = {"kafka.security.protocol": protocol}
    if _uses_sasl(protocol):
        options["kafka.sasl.mechanism"] = mechanism
        if mechanism == "AWS_MSK_IAM":
            # Needs the aws-msk-iam-auth jar on the classpath (Glue 5 ships it).
            options["kafka.sasl.jaas.config"] = "software.amazon.msk.auth.iam.IAMLoginModule required;"
            options["kafka.sasl.client.callback.handler.class"] = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
        else:
            user, password = credentials or sasl_credentials(environ)
            options["kafka.sasl.jaas.config"] = (
                f'{_JAAS_MODULE[mechanism]} required username="{_escape(user)}" password="{_escape(password)}";'
            )
    return options


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def redacted(options: dict) -> dict:
    """The same options with secrets replaced, for logs and metadata."""
    secret = ("password", "jaas")
    return {k: ("***" if any(s in k.lower() for s in secret) else v) for k, v in options.items()}


def needs_credentials(protocol: str, mechanism: str) -> bool:
    """Whether the client needs a SASL user name and password (AWS_MSK_IAM signs with AWS credentials)."""
    return _uses_sasl(protocol) and mechanism != "AWS_MSK_IAM"


def producer_config(settings: Settings) -> dict:
    """kafka-python security arguments for the producer's KafkaSink, from the settings."""
    protocol, mechanism = settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    credentials = sasl_credentials(settings=settings) if needs_credentials(protocol, mechanism) else None
    return kafka_python_config(protocol, mechanism, credentials=credentials)
