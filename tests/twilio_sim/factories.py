"""Plain factories for the simulator tests: sensible defaults, any field overridable."""

from __future__ import annotations

import base64
from typing import Any

from twilio.rest import Client

from twilio_sim import SimConfig

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "sim-auth-token"
SERVICE_SID = "MG" + "b2" * 16
SENDERS = ("+14155550100", "+12125550100", "+13105550100", "+447700900100")


def create_config(**overrides: Any) -> SimConfig:
    """One account, one service with four senders, instant callbacks, quick retries."""
    values: dict[str, Any] = {
        "accounts": {ACCOUNT_SID: AUTH_TOKEN},
        "services": {SERVICE_SID: list(SENDERS)},
        "callback_delay_ms": 0,
        "callback_retry_backoff_ms": 1,
        "callback_timeout_s": 2,
    }
    values.update(overrides)
    return SimConfig.model_validate(values)


def create_client(base_url: str, **kwargs: Any) -> Client:
    """twilio's own Client, pointed at ``base_url`` for the API and Lookups domains."""
    client = Client(ACCOUNT_SID, AUTH_TOKEN, **kwargs)
    client.api.base_url = base_url
    client.lookups.base_url = base_url
    return client


def basic_auth(user: str = ACCOUNT_SID, password: str = AUTH_TOKEN) -> dict[str, str]:
    """An ``Authorization: Basic`` header (aiohttp's BasicAuth is deprecated in 3.14)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
