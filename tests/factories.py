"""Factories for integration tests: plain functions with sensible defaults, over the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.harness import ACCOUNT_SID, AUTH_TOKEN, SENDERS, SERVICE_SID


async def create_subaccount(
    admin: httpx.AsyncClient, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN
) -> dict[str, Any]:
    answer = await admin.put(
        f"/v1/admin/twilio-subaccounts/{account_sid}", json={"auth_token": auth_token}
    )
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def create_brand(
    admin: httpx.AsyncClient, brand_id: str | None = None, status: str = "verified"
) -> str:
    brand_id = brand_id or f"brand-{uuid.uuid4().hex[:8]}"
    answer = await admin.put(
        f"/v1/admin/brands/{brand_id}", json={"name": "Acme", "status": status}
    )
    assert answer.status_code in (200, 201), answer.text
    return brand_id


async def create_use_case(
    admin: httpx.AsyncClient,
    *,
    senders: tuple[str, ...] = SENDERS[:1],
    number_type: str = "long_code",
    brand_status: str = "verified",
    **overrides: Any,
) -> dict[str, Any]:
    """A sending-ready use case (subaccount, brand, pool) unless overrides say otherwise."""
    await create_subaccount(admin)
    body: dict[str, Any] = {
        "name": "Order updates",
        "account_sid": ACCOUNT_SID,
        "messaging_service_sid": SERVICE_SID,
        "brand_id": await create_brand(admin, status=brand_status),
        "a2p_campaign_status": "verified",
        "permitted_regions": ["US", "CA"],
        "active": True,
        **overrides,
    }
    answer = await admin.post("/v1/admin/sms-use-cases", json=body)
    assert answer.status_code == 201, answer.text
    use_case = dict(answer.json())
    for number in senders:
        put = await admin.put(
            f"/v1/admin/sms-use-cases/{use_case['id']}/phone-numbers/{number}",
            json={"number_type": number_type},
        )
        assert put.status_code == 200, put.text
    return use_case


def unique_number() -> str:
    """A valid US mobile-looking number nobody else in the test run uses."""
    return f"+14152{uuid.uuid4().int % 1_000_000:06d}"


async def sim_messages(sim: httpx.AsyncClient, to: str) -> list[dict[str, Any]]:
    answer = await sim.get("/_sim/messages", params={"to": to})
    answer.raise_for_status()
    data = answer.json()
    return list(data["messages"] if isinstance(data, dict) else data)
