"""The check every process makes at start: do the connection settings fit the cluster?

aiokafka takes a refused login, an unknown CA or a listener speaking another protocol for
an unreachable broker, and retries forever. This check opens one connection the way every
client will, within SMSLANE_KAFKA_TIMEOUT_SECONDS, and tells the cases apart:

- nothing accepts the TCP connection: the broker is down or still starting. The process
  goes on as before (readiness, 503, retry);
- the broker accepts, then TLS, the login or the first request fails: a setting is wrong.
  The process stops with one line naming it (:class:`WrongConnectionSetting`, turned into
  :class:`~schemas.settings.SettingsError` by :func:`require_connection_settings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from aiokafka import errors
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

from feeds.kafka_clients import connection_options
from schemas.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class WrongConnectionSetting(Exception):
    """The broker took the connection, but a setting does not fit it; the message is one
    line naming that setting."""


_LOGIN = "SMSLANE_KAFKA_SASL_USERNAME / SMSLANE_KAFKA_SASL_PASSWORD"


def diagnose(exc: BaseException, settings: Settings) -> str:
    """The setting to blame for ``exc``, raised by a connection the broker accepted, and
    why, in one line (never the password)."""
    protocol = f"SMSLANE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    if isinstance(exc, ssl.SSLCertVerificationError) and "mismatch" in str(exc).lower():
        return (
            "SMSLANE_KAFKA_BOOTSTRAP_SERVERS: the broker's certificate is not issued for the "
            f"host name used to reach it ({exc.verify_message})"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = settings.kafka_ssl_cafile or "the system's CAs"
        return (
            f"SMSLANE_KAFKA_SSL_CAFILE: the broker's certificate is not trusted by "
            f"{trusted} ({exc.verify_message})"
        )
    if isinstance(exc, ssl.SSLError | ConnectionResetError) and settings.kafka_uses_tls:
        why = str(exc) or type(exc).__name__
        return f"{protocol}: the TLS handshake failed; does the listener speak TLS? ({why})"
    if isinstance(exc, errors.SaslAuthenticationFailed | errors.AuthenticationFailedError):
        return f"{_LOGIN}: the broker refused the login ({settings.kafka_sasl_mechanism})"
    if isinstance(exc, errors.UnsupportedSaslMechanismError | errors.IllegalSaslStateError):
        return (
            f"SMSLANE_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}: the broker does not "
            "accept this mechanism"
        )
    return (
        f"{protocol}: the broker accepted the connection but never answered its first "
        f"request ({type(exc).__name__}); does the listener expect another protocol "
        "(TLS, a SASL login)?"
    )


async def _reachable(host: str, port: int, timeout_s: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _first_request(host: str, port: int, timeout_s: float, options: dict[str, Any]) -> None:
    """Connect (TLS, login) and ask for metadata: a broker answers its version list even
    before the login, so only a real request shows that it took the connection."""
    conn = await create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **options)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


async def check_connection(settings: Settings) -> bool:
    """Connect to the first bootstrap server that accepts TCP, as every client will.

    True when it answered; False when none accepts TCP (unreachable: retry later). Raises
    :class:`WrongConnectionSetting` when one accepts but the connection then fails."""
    timeout_s = settings.kafka_timeout_seconds
    options = connection_options(settings)
    options.pop("bootstrap_servers")
    for server in settings.kafka_bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not await _reachable(host, int(port), timeout_s):
            continue
        try:
            await _first_request(host, int(port), timeout_s, options)
        except ConnectionRefusedError:
            continue  # went down since the TCP check: unreachable, not a wrong setting
        except (OSError, errors.KafkaError, TimeoutError) as exc:
            raise WrongConnectionSetting(diagnose(exc, settings)) from None
        return True
    log.warning("no Kafka broker accepts connections at %s", settings.kafka_bootstrap_servers)
    return False


def require_connection_settings(settings: Settings) -> None:
    """:func:`check_connection` from synchronous start-up code (the CLI's commands): a
    wrong setting stops the process with :class:`SettingsError`."""
    try:
        asyncio.run(check_connection(settings))
    except WrongConnectionSetting as exc:
        raise SettingsError(f"smslane: {exc}") from None
