"""Sending later, expiring and canceling, end to end: ingress → Kafka → worker → simulator →
callbacks → lifecycle → store, with the simulator's clock moved instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, sim_messages, unique_number
from tests.harness import Stack
from tests.integration.test_lifecycle import wait_record

pytestmark = pytest.mark.integration


async def sim_now(sim: httpx.AsyncClient) -> float:
    answer = await sim.get("/_sim/clock")
    answer.raise_for_status()
    return float(answer.json()["now"])


async def advance(sim: httpx.AsyncClient, seconds: float) -> None:
    answer = await sim.post("/_sim/clock", json={"advance_s": seconds})
    assert answer.status_code == 200, answer.text


async def send_later(
    client: httpx.AsyncClient, use_case: dict[str, Any], to: str, send_at: datetime, **extra: Any
) -> dict[str, Any]:
    body = {"use_case_id": use_case["id"], "to_phone_number": to, "message": "Reminder",
            "send_at": send_at.isoformat(), **extra}  # fmt: skip
    answer = await client.post("/v1/sms/", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def wait_listed(
    client: httpx.AsyncClient, params: dict[str, str], timeout_s: float = 30.0, count: int = 1
) -> list[dict[str, Any]]:
    """Poll ``GET /v1/sms/`` (the store, not this ingress's recent answers) until it lists
    at least ``count`` records with ``params``."""

    async def listed() -> list[dict[str, Any]] | None:
        answer = await client.get("/v1/sms/", params=params)
        assert answer.status_code == 200, answer.text
        items = list(answer.json()["items"])
        return items if len(items) >= count else None

    return await wait_until_async(listed, timeout_s, f"records with {params}")


async def stored_scheduled(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, to: str
) -> tuple[dict[str, Any], str]:
    """A message to ``to`` scheduled two days ahead under a reference of its own, once the
    store has it; its 201 answer and the reference."""
    use_case = await create_use_case(admin)
    reference = f"ref-{to}"
    send_at = datetime.now(UTC) + timedelta(days=2)
    created = await send_later(client, use_case, to, send_at, client_reference=reference)
    await wait_listed(client, {"client_reference": reference, "status": "scheduled"})
    return created, reference


async def soon_at_the_simulator(sim: httpx.AsyncClient) -> tuple[datetime, float]:
    """A send_at 20 minutes ahead of the simulator's clock (which earlier tests may have
    moved), and how far to move that clock to reach it."""
    now = await sim_now(sim)
    return datetime.fromtimestamp(now + 1200, UTC), 1201.0


async def test_scheduled_then_sent_and_delivered_at_its_time(stack: Stack) -> None:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        send_at, move = await soon_at_the_simulator(sim)
        local = send_at.astimezone(timezone(timedelta(hours=2)))
        created = await send_later(client, use_case, to, local, client_reference="appt-1")
        assert created["status"] == "scheduled" and created["message_sid"].startswith("SM")
        assert created["send_at"] == send_at.isoformat().replace("+00:00", "Z")
        assert created["client_reference"] == "appt-1"
        (message,) = await sim_messages(sim, to)
        assert message["status"] == "scheduled"
        stored = await wait_record(client, created["id"], lambda r: r["status"] == "scheduled")
        assert stored["send_at"] == created["send_at"]
        await advance(sim, move)
        delivered = await wait_record(client, created["id"], lambda r: r["status"] == "delivered")
        assert delivered["handed_off_at"] and delivered["canceled_at"] is None


async def test_scheduled_then_canceled(stack: Stack) -> None:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        created, reference = await stored_scheduled(admin, client, to)
        canceled = await client.post(f"/v1/sms/{created['id']}/cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled" and canceled.json()["canceled_at"]
        (stored,) = await wait_listed(client, {"client_reference": reference, "status": "canceled"})
        assert stored["id"] == created["id"]
        # The stored time is when smslane first learnt of the cancel: the worker's answer, or
        # Twilio's own `canceled` callback if the lifecycle got that first (CI saw both).
        answered = datetime.fromisoformat(canceled.json()["canceled_at"])
        assert abs(datetime.fromisoformat(stored["canceled_at"]) - answered) < timedelta(seconds=5)
        (message,) = await sim_messages(sim, to)
        assert message["status"] == "canceled"
        again = await client.post(f"/v1/sms/{created['id']}/cancel")
        assert again.status_code == 200 and again.json()["status"] == "canceled"


async def test_cancel_after_sending_is_409(stack: Stack) -> None:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        sent_at_once = await client.post("/v1/sms/", json={
            "use_case_id": use_case["id"], "to_phone_number": to, "message": "now"})  # fmt: skip
        answer = await client.post(f"/v1/sms/{sent_at_once.json()['id']}/cancel")
        assert answer.status_code == 409 and answer.json()["code"] == "not_cancelable"
        # No callbacks for this number: the record stays scheduled while Twilio sends it,
        # so the worker's cancel meets Twilio's 30409.
        silent = unique_number()
        configured = await sim.post("/_sim/config", json={"silent_numbers": [silent]})
        assert configured.status_code == 200
        send_at, move = await soon_at_the_simulator(sim)
        created = await send_later(client, use_case, silent, send_at)
        await wait_record(client, created["id"], lambda r: r["status"] == "scheduled")
        await advance(sim, move)
        answer = await client.post(f"/v1/sms/{created['id']}/cancel")
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "not_cancelable"
        # What Twilio reported is applied: the record and Twilio agree.
        await wait_record(client, created["id"], lambda r: r["status"] not in ("scheduled",))


async def test_validity_period_expiry_fails_the_message(stack: Stack) -> None:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        configured = await sim.post("/_sim/config", json={"queued_numbers": [to]})
        assert configured.status_code == 200
        use_case = await create_use_case(admin)
        answer = await client.post("/v1/sms/", json={
            "use_case_id": use_case["id"], "to_phone_number": to, "message": "Code 123456",
            "validity_period": 60})  # fmt: skip
        assert answer.status_code == 201 and answer.json()["validity_period"] == 60
        record_id = answer.json()["id"]
        await wait_record(client, record_id, lambda r: r["status"] == "pending")
        await advance(sim, 61)
        failed = await wait_record(client, record_id, lambda r: r["status"] == "failed")
        assert failed["error_code"] == 30001 and failed["validity_period"] == 60


async def test_listing_by_client_reference(stack: Stack) -> None:
    reference = f"order-{unique_number()[-6:]}"
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        ids = set()
        for ref in (reference, reference, "another"):
            created = await send_later(
                client, use_case, unique_number(), datetime.now(UTC) + timedelta(days=1),
                client_reference=ref,
            )  # fmt: skip
            if ref == reference:
                ids.add(created["id"])
        # GET by id may answer from the ingress's recent answers; the listing is the
        # store's, which the sink fills a moment later: wait for both there.
        listed = await wait_listed(client, {"client_reference": reference}, count=2)
        assert {r["id"] for r in listed} == ids
        assert {r["status"] for r in listed} == {"scheduled"}
        waiting = await client.get("/v1/sms/", params={"status": "scheduled", "limit": 100})
        assert ids <= {r["id"] for r in waiting.json()["items"]}


async def test_send_at_refused_by_twilio_is_invalid_send_at(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        # The simulator's clock runs ahead of ours by a day: 20 minutes ahead for smslane
        # is in the past for Twilio, which refuses it.
        await advance(sim, 86400)
        send_at = datetime.now(UTC) + timedelta(minutes=20)
        body = {"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                "message": "x", "send_at": send_at.isoformat()}  # fmt: skip
        answer = await client.post("/v1/sms/", json=body)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_send_at"


async def test_an_admin_opt_out_cancels_a_scheduled_message(stack: Stack) -> None:
    to = unique_number()
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        created, reference = await stored_scheduled(admin, client, to)
        opted_out = await admin.put(
            f"/v1/admin/sms-use-cases/{created['use_case_id']}/opt-outs/{to}"
        )
        assert opted_out.status_code == 200
        (record,) = await wait_listed(client, {"client_reference": reference, "status": "canceled"})
        assert record["id"] == created["id"] and record["canceled_at"] is not None
        (message,) = await sim_messages(sim, to)
        assert message["status"] == "canceled"
