"""Delivery lifecycle end to end: simulator callbacks → webhook → Kafka → worker → store."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from feeds import kafka_clients
from schemas.records import SmsRecord
from smslane.processes import wait_until_async
from tests.factories import create_subaccount, create_use_case, unique_number
from tests.harness import ACCOUNT_SID, AUTH_TOKEN, SENDERS, SERVICE_SID, Stack
from tests.integration.test_send import send

pytestmark = pytest.mark.integration
RANK = {"pending": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2}
WEBHOOK = "/v1/webhook/twilio/sms-status"


async def send_with_scenario(stack: Stack, scenario: str) -> dict[str, Any]:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        configured = await sim.post("/_sim/config", json={"scenarios": {to: scenario}})
        assert configured.status_code == 200, configured.text
        use_case = await create_use_case(admin)
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": to, "message": "Hi there"},
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


async def wait_for(
    stack: Stack, record_id: str, until: Any, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Poll GET /v1/sms/{id} until ``until(record)`` holds."""
    async with stack.client() as client:
        return await wait_record(client, record_id, until, timeout_s)


async def wait_record(
    client: httpx.AsyncClient, record_id: str, until: Any, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Poll GET /v1/sms/{id} with ``client`` until ``until(record)`` holds; the record."""
    last: dict[str, Any] = {}

    async def reached() -> dict[str, Any] | None:
        nonlocal last
        answer = await client.get(f"/v1/sms/{record_id}")
        if answer.status_code == 200:
            last = answer.json()
            return last if until(last) else None
        return None

    try:
        return await wait_until_async(reached, timeout_s, f"record {record_id}")
    except TimeoutError:
        raise AssertionError(f"record never reached the expected state; last: {last}") from None


async def settle(stack: Stack, record_id: str, seconds: float = 1.5) -> dict[str, Any]:
    """The record after callbacks had time to arrive (for asserting nothing else changes)."""
    await asyncio.sleep(seconds)
    return await wait_for(stack, record_id, lambda r: True)


async def test_delivered_lifecycle(stack: Stack) -> None:
    sent = await send_with_scenario(stack, "delivered")
    record = await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
    assert record["from_number"] in SENDERS
    assert record["num_segments"] == 1
    assert record["handed_off_at"] is not None and record["delivered_at"] is not None
    assert record["handed_off_at"] <= record["delivered_at"]
    assert record["errored_at"] is None and record["error_code"] is None
    assert record["updated_at"] == record["delivered_at"]


async def test_sent_only_lifecycle_stops_at_sent(stack: Stack) -> None:
    sent = await send_with_scenario(stack, "sent_only")
    await wait_for(stack, sent["id"], lambda r: r["status"] == "sent")
    record = await settle(stack, sent["id"])
    assert record["status"] == "sent"
    assert record["handed_off_at"] is not None and record["delivered_at"] is None


async def test_undelivered_and_failed_carry_error_codes(stack: Stack) -> None:
    undelivered = await send_with_scenario(stack, "undelivered")
    failed = await send_with_scenario(stack, "failed")
    record = await wait_for(stack, undelivered["id"], lambda r: r["status"] == "undelivered")
    assert record["error_code"] == 30003 and record["errored_at"] is not None
    assert record["handed_off_at"] is not None
    record = await wait_for(stack, failed["id"], lambda r: r["status"] == "failed")
    assert record["error_code"] == 30007 and record["errored_at"] is not None
    assert record["handed_off_at"] is None and record["delivered_at"] is None


@pytest.mark.parametrize("scenario", ["duplicates", "out_of_order", "early"])
async def test_adversarial_orders_end_delivered(stack: Stack, scenario: str) -> None:
    sent = await send_with_scenario(stack, scenario)
    await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
    record = await settle(stack, sent["id"])
    assert record["status"] == "delivered"
    assert record["delivered_at"] is not None and record["from_number"] in SENDERS


def signed(stack: Stack, params: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    signature = RequestValidator(token).compute_signature(f"{stack.base_url}{WEBHOOK}", params)
    return {"X-Twilio-Signature": signature}


def callback_params(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
        "SmsStatus": status, "MessagingServiceSid": SERVICE_SID, "To": "+14155550123",
        "ApiVersion": "2010-04-01", **extra,
    }  # fmt: skip


async def test_webhook_signature_and_unknown_inputs(stack: Stack) -> None:
    async with stack.admin() as admin, httpx.AsyncClient(base_url=stack.base_url) as http:
        await create_use_case(admin)
        sid = "SM" + uuid.uuid4().hex
        params = callback_params(sid, "delivered")
        ok = await http.post(WEBHOOK, data=params, headers=signed(stack, params))
        assert ok.status_code == 204  # unknown MessageSid: acknowledged
        bad = await http.post(WEBHOOK, data=params, headers=signed(stack, params, "wrong"))
        assert bad.status_code == 403
        assert (await http.post(WEBHOOK, data=params)).status_code == 403
        tampered = {**params, "MessageStatus": "failed"}
        again = await http.post(WEBHOOK, data=tampered, headers=signed(stack, params))
        assert again.status_code == 403
        stranger = {**params, "AccountSid": "AC" + "9" * 32}
        unknown = await http.post(WEBHOOK, data=stranger, headers=signed(stack, stranger))
        assert unknown.status_code == 403
        missing = {k: v for k, v in params.items() if k not in ("MessageStatus", "SmsStatus")}
        dropped = await http.post(WEBHOOK, data=missing, headers=signed(stack, missing))
        assert dropped.status_code == 204
        query = f"{WEBHOOK}?tenant=a%20b"
        url = f"{stack.base_url}{query}"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        with_query = await http.post(query, data=params, headers={"X-Twilio-Signature": signature})
        assert with_query.status_code == 204


async def test_a_callback_signed_by_another_subaccount_changes_nothing(stack: Stack) -> None:
    """Subaccount X's callback, correctly signed with X's token, naming a message sent
    through Y: 204, and the record stays as it was (before, it became delivered). Y's own
    callback still moves it."""
    other_sid, other_token = "AC" + "8" * 32, "other-auth-token-9876543210"
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        await create_subaccount(admin, other_sid, other_token)
        await sim.post("/_sim/config", json={"silent_numbers": [to]})
        try:
            answer = await send(client, use_case["id"], to, "mine")
        finally:
            await sim.post("/_sim/config", json={"silent_numbers": []})
    assert answer.status_code == 201, answer.text
    record = answer.json()
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        foreign = {**callback_params(record["message_sid"], "delivered"), "AccountSid": other_sid}
        dropped = await http.post(
            WEBHOOK, data=foreign, headers=signed(stack, foreign, other_token)
        )
        assert dropped.status_code == 204
        assert (await settle(stack, record["id"]))["status"] == "pending"
        own = callback_params(record["message_sid"], "delivered")
        assert (await http.post(WEBHOOK, data=own, headers=signed(stack, own))).status_code == 204
    await wait_for(stack, record["id"], lambda r: r["status"] == "delivered")
    versions = [json.loads(m.value) for m in await stack.read_topic("sms.status")]
    assert [v["status"] for v in versions if v["id"] == record["id"]] == ["pending", "delivered"]


async def test_callback_before_the_record_is_held_and_applied(stack: Stack) -> None:
    """A callback for a message smslane has not recorded yet is applied once it is."""
    sid = "SM" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        params = callback_params(sid, "sent", From=SENDERS[0], NumSegments="2")
        answer = await http.post(WEBHOOK, data=params, headers=signed(stack, params))
        assert answer.status_code == 204
    await asyncio.sleep(1.0)  # the worker sees the callback first, and holds it
    now = datetime.now(UTC)
    record = SmsRecord(
        id=uuid.uuid4(), use_case_id=uuid.uuid4(), message_sid=sid, to_number="+14155550123",
        body="late", created_at=now, updated_at=now,
    )  # fmt: skip
    producer = kafka_clients.producer(stack.kafka_settings)  # the stack's own security
    await producer.start()
    try:
        await producer.send_and_wait(
            f"{stack.prefix}sms.created", key=sid.encode(), value=record.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    seen = await wait_for(stack, str(record.id), lambda r: r["status"] == "sent")
    assert (seen["from_number"], seen["num_segments"]) == (SENDERS[0], 2)
    assert seen["handed_off_at"] is not None


async def test_sms_status_versions_are_contiguous_per_record(stack: Stack) -> None:
    scenarios = ["delivered", "duplicates", "out_of_order", "undelivered"]
    records = [await send_with_scenario(stack, s) for s in scenarios]
    for record in records:
        await wait_for(stack, record["id"], lambda r: r["status"] in ("delivered", "undelivered"))
    await asyncio.sleep(1.0)
    versions: dict[str, list[int]] = defaultdict(list)
    statuses: dict[str, list[str]] = defaultdict(list)
    for message in await stack.read_topic("sms.status"):
        value = json.loads(message.value)
        assert message.key.decode() == value["id"]
        versions[value["id"]].append(value["version"])
        statuses[value["id"]].append(value["status"])
    for record in records:
        seen = versions[record["id"]]
        assert seen == list(range(1, len(seen) + 1)), (record["id"], seen)
        assert statuses[record["id"]][0] == "pending"
        ranks = [RANK[status] for status in statuses[record["id"]]]
        assert ranks == sorted(ranks), statuses[record["id"]]
    assert [statuses[r["id"]][-1] for r in records] == [
        "delivered",
        "delivered",
        "delivered",
        "undelivered",
    ]
