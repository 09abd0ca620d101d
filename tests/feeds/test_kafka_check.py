"""The start-up check of the Kafka connection settings: which setting each failure names,
and that an unreachable broker is not a wrong setting (the process waits for it)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest
from aiokafka import errors
from pydantic import SecretStr

from feeds.kafka_check import WrongConnectionSetting, check_connection, diagnose
from schemas.settings import Settings
from smslane.processes import free_port

LOGIN = Settings(
    kafka_security_protocol="SASL_PLAINTEXT",
    kafka_sasl_mechanism="SCRAM-SHA-256",
    kafka_sasl_username="u",
    kafka_sasl_password=SecretStr("the-password"),
)


@pytest.mark.parametrize(
    ("exc", "named"),
    [
        (errors.SaslAuthenticationFailed("invalid credentials"), "SMSLANE_KAFKA_SASL_PASSWORD"),
        (errors.UnsupportedSaslMechanismError(), "SMSLANE_KAFKA_SASL_MECHANISM=SCRAM-SHA-256"),
        (errors.KafkaConnectionError("closed"), "SMSLANE_KAFKA_SECURITY_PROTOCOL"),
        (TimeoutError(), "SMSLANE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
    ],
)
def test_each_failure_names_its_setting(exc: BaseException, named: str) -> None:
    line = diagnose(exc, LOGIN)
    assert named in line
    assert "the-password" not in line and "\n" not in line


def test_an_untrusted_certificate_names_the_ca_file() -> None:
    exc = ssl.SSLCertVerificationError("certificate verify failed")
    exc.verify_message = "unable to get local issuer certificate"
    line = diagnose(exc, Settings(kafka_security_protocol="SSL"))
    assert line.startswith("SMSLANE_KAFKA_SSL_CAFILE")
    assert "the system's CAs" in line


def test_a_certificate_for_another_host_names_the_servers() -> None:
    exc = ssl.SSLCertVerificationError("certificate verify failed: Hostname mismatch")
    exc.verify_message = "Hostname mismatch, certificate is not valid for 'kafka.local'."
    line = diagnose(exc, Settings(kafka_security_protocol="SSL"))
    assert line.startswith("SMSLANE_KAFKA_BOOTSTRAP_SERVERS")


async def test_a_refused_connection_is_not_a_wrong_setting() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    assert await check_connection(settings) is False


@pytest.fixture
async def silent_listener() -> AsyncIterator[int]:
    """A port that accepts TCP connections and never answers (a listener expecting TLS
    from a client that sends none waits like this)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_broker_that_never_answers_stops_the_process_within_the_timeout(
    silent_listener: int,
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{silent_listener}", kafka_timeout_seconds=1
    )
    with pytest.raises(WrongConnectionSetting) as stopped:
        await asyncio.wait_for(check_connection(settings), 10)
    assert "SMSLANE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in str(stopped.value)
    assert "never answered" in str(stopped.value)
