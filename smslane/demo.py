"""The demo configuration of ``smslane up --demo``: one subaccount, brand, use case, pool."""

from __future__ import annotations

from collections.abc import Sequence

import httpx


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
    return use_case_id
