"""The demo configuration of ``smslane up --demo``: one subaccount, brand, use case, pool,
and one reminder scheduled for later, so that the live view shows a ``scheduled`` message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx

log = logging.getLogger(__name__)

#: The demo reminder's destination and how far ahead it is scheduled (the simulator, run
#: with ``--time-scale``, sends it that many times sooner).
REMINDER_TO = "+14155550199"
REMINDER_AHEAD = timedelta(minutes=16)


def create_demo(
    base_url: str,
    admin_key: str,
    account_sid: str,
    auth_token: str,
    service_sid: str,
    senders: Sequence[str],
) -> str:
    """Create the demo entities through the admin API; the use case's id."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as admin:
        admin.put(
            f"/v1/admin/twilio-subaccounts/{account_sid}",
            json={"auth_token": auth_token, "friendly_name": "smslane demo"},
        ).raise_for_status()
        admin.put(
            "/v1/admin/brands/demo-brand", json={"name": "Demo Brand", "status": "verified"}
        ).raise_for_status()
        answer = admin.post(
            "/v1/admin/sms-use-cases",
            json={
                "name": "Demo notifications",
                "account_sid": account_sid,
                "messaging_service_sid": service_sid,
                "brand_id": "demo-brand",
                "a2p_campaign_status": "verified",
                "permitted_regions": ["US", "CA"],
                "active": True,
            },
        )
        answer.raise_for_status()
        use_case_id = str(answer.json()["id"])
        for number in senders:
            admin.put(
                f"/v1/admin/sms-use-cases/{use_case_id}/phone-numbers/{number}",
                json={"number_type": "long_code"},
            ).raise_for_status()
        schedule_reminder(admin, use_case_id)
    return use_case_id


def schedule_reminder(client: httpx.Client, use_case_id: str) -> None:
    """Send the demo's scheduled reminder; a refusal is logged, not fatal to the demo."""
    body = {
        "use_case_id": use_case_id,
        "to_phone_number": REMINDER_TO,
        "message": "Reminder: your demo appointment starts soon.",
        "send_at": (datetime.now(UTC) + REMINDER_AHEAD).isoformat(),
        "client_reference": "demo-reminder",
    }
    answer = client.post("/v1/sms/", json=body)
    if answer.status_code != 201:
        log.warning("the demo's scheduled reminder was refused: %s", answer.text[:200])
