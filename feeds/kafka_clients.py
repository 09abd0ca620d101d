"""Every Kafka client of every smslane process is built here, with the connection settings
(security protocol, SASL login, TLS) of ``SMSLANE_KAFKA_*``.

No other module constructs an aiokafka client or a Faust app's credentials
(``tests/foundation/test_kafka_clients.py`` scans the source for one that does).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from schemas.kafka_security import KafkaSecuritySettings
from schemas.settings import Settings, SettingsError

if TYPE_CHECKING:
    from faust.auth import Credentials


def ssl_context(settings: KafkaSecuritySettings) -> ssl.SSLContext:
    """The TLS context of SMSLANE_KAFKA_SSL_* (aiokafka's own helper; hostnames checked).

    A file that is not a valid PEM stops the process naming its setting."""
    names = {
        "SMSLANE_KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "SMSLANE_KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
    }
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    except (ssl.SSLError, OSError) as exc:
        named = " / ".join(name for name, path in names.items() if path is not None)
        if settings.kafka_ssl_keyfile is not None:
            named += " / SMSLANE_KAFKA_SSL_KEYFILE"
        raise SettingsError(f"smslane: {named or 'TLS'}: cannot be loaded ({exc})") from None
    return context


def connection_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client takes: servers, protocol, login, TLS."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_uses_tls:
        options["ssl_context"] = ssl_context(settings)
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # checked by the settings
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer on the configured cluster; ``options`` as aiokafka's."""
    return AIOKafkaProducer(**connection_options(settings), **options)


def consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer on the configured cluster, subscribed to ``topics`` if any."""
    return AIOKafkaConsumer(*topics, **connection_options(settings), **options)


def admin(settings: Settings, **options: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client on the configured cluster."""
    return AIOKafkaAdminClient(**connection_options(settings), **options)


def client(settings: Settings, **options: Any) -> AIOKafkaClient:
    """aiokafka's low-level client (metadata only), on the configured cluster."""
    return AIOKafkaClient(**connection_options(settings), **options)


def faust_credentials(settings: Settings) -> Credentials | None:
    """The Faust app's ``broker_credentials``: the same login and TLS as every other client."""
    import faust  # only the worker needs it

    context = ssl_context(settings) if settings.kafka_uses_tls else None
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # checked by the settings
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
