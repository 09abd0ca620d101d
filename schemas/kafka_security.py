"""How every Kafka client of smslane authenticates and encrypts: the ``SMSLANE_KAFKA_*``
security settings, checked for contradictions at start.

The clients themselves are built from these in one place, ``feeds.kafka_clients``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecuritySettings(BaseSettings):
    """The security half of the Kafka connection settings (a base of ``Settings``)."""

    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT",
        description="How clients talk to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT "
        "(a login without TLS) or SASL_SSL (a login over TLS, what managed clusters use).",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "PLAIN",
        description="SASL login mechanism with a SASL_* protocol: PLAIN, SCRAM-SHA-256 or "
        "SCRAM-SHA-512. OAUTHBEARER and AWS IAM are not supported.",
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name; required with a SASL_* protocol."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None,
        description="SASL password; required with a SASL_* protocol. Never logged or shown.",
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CAs that sign the brokers' certificates (SSL, SASL_SSL); "
        "unset, the system's CAs are trusted.",
    )
    kafka_ssl_certfile: Path | None = Field(
        None,
        description="PEM client certificate, for clusters that authenticate clients by TLS "
        "(it may hold the key too).",
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, description="PEM private key of SMSLANE_KAFKA_SSL_CERTFILE (unencrypted)."
    )

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        problem = security_contradiction(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")


def kafka_secrets(settings: KafkaSecuritySettings) -> tuple[str, ...]:
    """The values a log line must never show (the SASL password)."""
    password = settings.kafka_sasl_password
    return (password.get_secret_value(),) if password is not None else ()


def security_contradiction(settings: KafkaSecuritySettings) -> str | None:
    """The first pair of security settings that contradict each other, named; else None."""
    protocol = f"SMSLANE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    has_login = settings.kafka_sasl_username is not None or settings.kafka_sasl_password
    if settings.kafka_uses_sasl and not (
        settings.kafka_sasl_username and settings.kafka_sasl_password
    ):
        return (
            f"{protocol} with SMSLANE_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism} "
            "needs both SMSLANE_KAFKA_SASL_USERNAME and SMSLANE_KAFKA_SASL_PASSWORD"
        )
    if has_login and not settings.kafka_uses_sasl:
        return (
            f"SMSLANE_KAFKA_SASL_USERNAME/SMSLANE_KAFKA_SASL_PASSWORD are set but {protocol} "
            "sends no login: use SASL_SSL or SASL_PLAINTEXT, or unset them"
        )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        return "SMSLANE_KAFKA_SSL_KEYFILE is set without SMSLANE_KAFKA_SSL_CERTFILE"
    files = [
        f"SMSLANE_{name.upper()}"
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if getattr(settings, name) is not None
    ]
    if files and not settings.kafka_uses_tls:
        return (
            f"{', '.join(files)} set but {protocol} does not use TLS: "
            "use SSL or SASL_SSL, or unset them"
        )
    return None
