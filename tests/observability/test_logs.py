"""Every process logs one logfmt line per event, with ids, and never a secret (real stack)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.factories import create_brand, create_subaccount, create_use_case, unique_number
from tests.harness import ACCOUNT_SID, ADMIN_KEY, API_KEY, AUTH_TOKEN, SERVICE_SID, Stack
from tests.integration.test_lifecycle import wait_record

pytestmark = pytest.mark.integration

WRONG_ACCOUNT = "AC" + "3" * 32
WRONG_TOKEN = "wrong-token-of-an-account-twilio-does-not-know"
MISTYPED_KEY = "test-api-key-with-a-typo"
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """The pairs of one logfmt line; AssertionError when the line is not entirely pairs."""
    pairs, end = {}, 0
    for match in _PAIR.finditer(line):
        assert match.start() == end, f"not logfmt at column {end}: {line!r}"
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(
                m.group(1), m.group(1)), value[1:-1])  # fmt: skip
        pairs[match.group(1)] = value
        end = match.end()
    assert end == len(line), f"not logfmt at column {end}: {line!r}"
    return pairs


async def exercise_risky_paths(stack: Stack) -> tuple[str, str]:
    """Everything that handles a credential, including the failures; the delivered record."""
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        sent = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "Hello"},
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
        record = sent.json()
        # A subaccount whose token Twilio refuses: the Lookup and the create call fail.
        await create_subaccount(admin, WRONG_ACCOUNT, WRONG_TOKEN)
        refused = await admin.post(
            "/v1/admin/sms-use-cases",
            json={"name": "Refused", "account_sid": WRONG_ACCOUNT,
                  "messaging_service_sid": SERVICE_SID, "brand_id": await create_brand(admin),
                  "a2p_campaign_status": "verified", "permitted_regions": ["US"],
                  "active": True},
        )  # fmt: skip
        assert refused.status_code == 201, refused.text
        await admin.put(
            f"/v1/admin/sms-use-cases/{refused.json()['id']}/phone-numbers/+14155550100",
            json={"number_type": "long_code"},
        )
        failed = await client.post(
            "/v1/sms/",
            json={"use_case_id": refused.json()["id"], "to_phone_number": unique_number(),
                  "message": "Hello"},
        )  # fmt: skip
        assert failed.status_code == 503, failed.text
        # Wrong and misplaced keys, and a forged callback.
        bad_key = await client.get("/v1/sms/", headers={"Authorization": f"Bearer {MISTYPED_KEY}"})
        assert bad_key.status_code == 401
        assert (await client.get(f"/v1/admin/sms-use-cases/{use_case['id']}")).status_code == 403
        forged = await client.post(
            "/v1/webhook/twilio/sms-status",
            data={"AccountSid": ACCOUNT_SID, "MessageSid": record["message_sid"],
                  "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": "forged"},
        )  # fmt: skip
        assert forged.status_code == 403
        await wait_record(client, record["id"], lambda r: r["status"] == "delivered")
    return record["id"], record["message_sid"]


async def test_logs_are_logfmt_with_ids_and_hold_no_secret(observed: Stack) -> None:
    record_id, sid = await exercise_risky_paths(observed)
    await asyncio.sleep(1.5)  # let the last lines reach the files
    logs = {p.stem: p.read_text() for p in (observed.root / "logs").glob("*.log")}
    assert set(logs) == {"twilio-sim", "worker", "sink", "ingress"}

    for secret in (API_KEY, ADMIN_KEY, AUTH_TOKEN, WRONG_TOKEN, MISTYPED_KEY):
        for name, text in logs.items():
            assert secret not in text, f"{secret!r} in the log of {name}"

    events: dict[str, list[dict[str, str]]] = {}
    for name, text in logs.items():
        for line in text.splitlines():
            if name == "twilio-sim" and re.fullmatch(r"http://127\.0\.0\.1:\d+", line):
                continue  # the simulator's URL on stdout, its readiness contract
            pairs = parse_logfmt(line)
            assert list(pairs)[:4] == ["ts", "level", "logger", "msg"], line
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", pairs["ts"]), line
            events.setdefault(name, []).append(pairs)
    assert all(events.get(name) for name in ("worker", "sink", "ingress", "twilio-sim"))
    assert any("uvicorn" in e["logger"] for e in events["ingress"])  # uvicorn's too

    ours = [e for e in events["worker"] if e.get("message_sid") == sid]
    created = [e for e in ours if e["msg"].startswith("message created")]
    assert created and created[0]["record_id"] == record_id
    statuses = [e["status"] for e in ours if e["msg"].startswith("record changed")]
    assert statuses[-1] == "delivered", ours
    assert all(e["record_id"] == record_id for e in ours if "record_id" in e)
