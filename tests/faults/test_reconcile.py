"""Reconciliation with Twilio after a worker is killed inside the create call, and status
repair when callbacks are lost.

Production configuration (real broker, rocksdb://, real processes, SIGKILL). The stack's
send timeout is 6 s and the reconcile margin 2 s, so a first attempt can no longer arrive
8 s after it began.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import create_subaccount, create_use_case, sim_messages, unique_number
from tests.faults.client import Sent, send_until_answered
from tests.harness import SENDERS, SERVICE_SID, Stack
from tests.integration.test_lifecycle import wait_for
from tests.integration.test_send import send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("reconcile"), kafka_bootstrap, table_store="rocksdb://",
        send_timeout_seconds="6", reconcile_margin_seconds="2",
        status_repair_after_seconds="3",
    )  # fmt: skip
    with running.running():
        yield running


async def _first_attempt(client: httpx.AsyncClient, use_case_id: str, sent: Sent) -> None:
    """The client's first POST, cut off by the worker's death (504, or a lost answer)."""
    answer = await client.post(
        "/v1/sms/", json=sent.body(use_case_id), headers={"Idempotency-Key": sent.key}
    )
    sent.answers.append((answer.status_code, answer.json()))


async def _kill_worker_once(stack: Stack, ready: object) -> None:
    """SIGKILL the worker once ``ready()`` holds, then start it again."""
    deadline = time.monotonic() + 15
    while not await ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the create never reached the simulator"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(stack.worker.stop, signal.SIGKILL)
    stack.ready_file.unlink(missing_ok=True)
    stack.worker.start()


async def test_a_message_created_before_the_kill_is_adopted(stack: Stack) -> None:
    """(a) The simulator created the message, then the worker died before its answer: the
    retry gets that message's 201, Twilio has it once, its held callbacks are applied."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        sent = Sent(unique_number(), "adopt me")
        await _kill_during_create(stack, client, sim, use_case["id"], sent)
        await send_until_answered(client, use_case["id"], sent)
        assert sent.created, sent.answers
        at_twilio = await sim_messages(sim, sent.to)
        assert [m["sid"] for m in at_twilio] == [sent.final[1]["message_sid"]]
        # The simulator's callbacks for it came while no record existed: held, then applied.
        await wait_for(stack, sent.final[1]["id"], lambda r: r["status"] == "delivered")


async def test_a_scheduled_message_created_before_the_kill_is_adopted_scheduled(
    stack: Stack,
) -> None:
    """(a) for a message sent with send_at: reconciliation finds it at Twilio, scheduled, and
    the retry gets one scheduled record of it."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        send_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        sent = Sent(unique_number(), "remind me", extra={"send_at": send_at.isoformat()})
        await _kill_during_create(stack, client, sim, use_case["id"], sent)
        await send_until_answered(client, use_case["id"], sent)
        assert sent.created, sent.answers
        record = sent.final[1]
        assert record["status"] == "scheduled"
        assert record["send_at"] == send_at.isoformat().replace("+00:00", "Z")
        at_twilio = await sim_messages(sim, sent.to)
        assert [(m["sid"], m["status"]) for m in at_twilio] == [
            (record["message_sid"], "scheduled")
        ]
        stored = await wait_for(stack, record["id"], lambda r: r["status"] == "scheduled")
        assert stored["send_at"] == record["send_at"]


async def _kill_during_create(
    stack: Stack, client: httpx.AsyncClient, sim: httpx.AsyncClient, use_case_id: str, sent: Sent
) -> None:
    """The first attempt, with the worker killed once the simulator has created the message
    and before it answers; the worker is back when this returns."""
    await sim.post("/_sim/config", json={"create_delay_ms": 4000})
    try:
        first = asyncio.create_task(_first_attempt(client, use_case_id, sent))

        async def created() -> bool:
            return bool(await sim_messages(sim, sent.to))

        await _kill_worker_once(stack, created)
        await asyncio.to_thread(stack.wait_worker_ready)
    finally:
        await sim.post("/_sim/config", json={"create_delay_ms": 0})
    await first


async def test_a_message_twilio_never_got_is_sent_once_after_the_window(stack: Stack) -> None:
    """(b) The worker died while the simulator held the create before taking it: nothing
    was created, so one message is sent once the first attempt can no longer arrive."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        sent = Sent(unique_number(), "send me once")
        await sim.post("/_sim/config", json={"create_accept_delay_ms": 3000})
        try:
            first = asyncio.create_task(_first_attempt(client, use_case["id"], sent))

            async def held() -> bool:
                stats = (await sim.get("/_sim/stats")).json()
                return bool(stats["creates_in_progress"])

            dropped = (await sim.get("/_sim/stats")).json()["creates_dropped"]
            await _kill_worker_once(stack, held)
            await asyncio.to_thread(stack.wait_worker_ready)
            await first

            async def first_create_dropped() -> bool:  # the caller is gone: Twilio never got it
                return bool((await sim.get("/_sim/stats")).json()["creates_dropped"] > dropped)

            deadline = time.monotonic() + 10
            while not await first_create_dropped():
                assert time.monotonic() < deadline, "the held create was not dropped"
                await asyncio.sleep(0.1)
        finally:
            await sim.post("/_sim/config", json={"create_accept_delay_ms": 0})
        await send_until_answered(client, use_case["id"], sent)
        assert sent.created and sent.interrupted, sent.answers
        at_twilio = await sim_messages(sim, sent.to)
        assert [m["sid"] for m in at_twilio] == [sent.final[1]["message_sid"]]
        await wait_for(stack, sent.final[1]["id"], lambda r: r["status"] == "delivered")


async def test_a_lost_answer_says_when_to_retry_and_the_retry_gets_the_message(
    stack: Stack,
) -> None:
    """(d) No kill: Twilio creates the message but answers after the request's deadline,
    so the worker cannot know whether it was sent. The 503 says to come back when
    reconciliation can settle it (at most the 8 s window plus a second, not a fixed minute),
    and the retry gets the message Twilio had, which Twilio has once."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        sent = Sent(unique_number(), "answer lost")
        body = {"use_case_id": use_case["id"], "to_phone_number": sent.to, "message": sent.message}
        await sim.post("/_sim/config", json={"create_delay_ms": 8000})
        try:
            first = await client.post("/v1/sms/", json=body, headers={"Idempotency-Key": sent.key})
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        sent.answers.append((first.status_code, first.json()))
        assert (first.status_code, first.json()["code"]) == (503, "provider_unavailable"), (
            first.text
        )
        assert "answer was lost" in first.json()["detail"], first.text
        assert 2 <= int(first.headers["Retry-After"]) <= 9, first.headers
        await send_until_answered(client, use_case["id"], sent)
        assert sent.created, sent.answers
        at_twilio = await sim_messages(sim, sent.to)
        assert [m["sid"] for m in at_twilio] == [sent.final[1]["message_sid"]]
        await wait_for(stack, sent.final[1]["id"], lambda r: r["status"] == "delivered")


async def test_without_a_retry_the_record_exists_and_reaches_its_final_status(
    stack: Stack,
) -> None:
    """(c) No retry at all (no Idempotency-Key): reconciliation still finds the message
    and its record reaches delivered."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to = unique_number()
        await sim.post("/_sim/config", json={"create_delay_ms": 4000})
        try:
            body = {"use_case_id": use_case["id"], "to_phone_number": to, "message": "no retry"}
            first = asyncio.create_task(client.post("/v1/sms/", json=body))

            async def created() -> bool:
                return bool(await sim_messages(sim, to))

            await _kill_worker_once(stack, created)
            await asyncio.to_thread(stack.wait_worker_ready)
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        await first
        (message,) = await sim_messages(sim, to)
        deadline = time.monotonic() + 60
        while True:
            listed = await client.get("/v1/sms/", params={"to_number": to})
            items = listed.json()["items"]
            if items and items[0]["status"] == "delivered":
                break
            assert time.monotonic() < deadline, items
            await asyncio.sleep(0.5)
        assert [i["message_sid"] for i in items] == [message["sid"]]


async def test_a_record_whose_callbacks_are_lost_is_repaired_from_twilio(stack: Stack) -> None:
    """Twilio delivers the message but every status callback is lost: after
    SMSLANE_STATUS_REPAIR_AFTER_SECONDS (3 s here) the worker fetches the message and the
    record reaches delivered anyway, with no callback ever received."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        to = unique_number()
        await sim.post("/_sim/config", json={"silent_numbers": [to]})
        try:
            answer = await client.post(
                "/v1/sms/",
                json={"use_case_id": use_case["id"], "to_phone_number": to, "message": "quiet"},
            )
            assert answer.status_code == 201, answer.text
            record = answer.json()
            final = await wait_for(stack, record["id"], lambda r: r["status"] == "delivered")
        finally:
            await sim.post("/_sim/config", json={"silent_numbers": []})
        details = (await sim.get(f"/_sim/messages/{record['message_sid']}")).json()
        assert {c["outcome"] for c in details["callbacks"]} == {"dropped"}
        assert final["delivered_at"] is not None


async def test_a_use_case_moved_to_another_subaccount_is_repaired_with_the_first(
    stack: Stack,
) -> None:
    """The use case's account_sid is PATCHed after the send, and every callback is lost:
    repair fetches the message with the subaccount it was sent through (kept by the
    lifecycle from sms.created) and the record reaches delivered. With today's account the
    fetch found nothing (Twilio scopes messages by account) and the record stayed pending."""
    other_sid, other_token = "AC" + "7" * 32, "other-auth-token-0123456789"
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        await sim.post("/_sim/config", json={"accounts": {other_sid: other_token}})
        await create_subaccount(admin, other_sid, other_token)
        to = unique_number()
        await sim.post("/_sim/config", json={"silent_numbers": [to]})
        try:
            answer = await send(client, use_case["id"], to, "moved")
            assert answer.status_code == 201, answer.text
            moved = await admin.patch(
                f"/v1/admin/sms-use-cases/{use_case['id']}", json={"account_sid": other_sid}
            )
            assert moved.status_code == 200, moved.text
            record = answer.json()
            final = await wait_for(stack, record["id"], lambda r: r["status"] == "delivered")
        finally:
            await sim.post("/_sim/config", json={"silent_numbers": []})
        assert final["delivered_at"] is not None


async def _records_to(client: httpx.AsyncClient, to: str, count: int) -> list[dict[str, Any]]:
    """The records to ``to``, once there are ``count`` of them (failing after 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        listed = await client.get("/v1/sms/", params={"to_number": to})
        items: list[dict[str, Any]] = listed.json()["items"]
        if len(items) >= count:
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.5)


async def test_a_same_body_request_sent_meanwhile_is_never_adopted(stack: Stack) -> None:
    """Issue #23's reproduction: A's create is answered 500 (A is in flight, nothing at
    Twilio); B sends the same body to the same number without an Idempotency-Key and gets
    SM_B. A's retry must not get SM_B: A is sent once its window ends, and both requests end
    with their own message at Twilio and their own record."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        a = Sent(unique_number(), "same body twice")
        await sim.post("/_sim/config", json={"create_errors": {a.to: 500}})
        try:
            await _first_attempt(client, use_case["id"], a)
        finally:
            await sim.post("/_sim/config", json={"create_errors": {}})
        assert (a.final[0], a.final[1]["code"]) == (503, "provider_unavailable"), a.answers
        body = {"use_case_id": use_case["id"], "to_phone_number": a.to, "message": a.message}
        b = await client.post("/v1/sms/", json=body)
        assert b.status_code == 201, b.text
        sm_b = b.json()["message_sid"]
        await send_until_answered(client, use_case["id"], a)
        assert a.created, a.answers
        sm_a = a.final[1]["message_sid"]
        assert sm_a != sm_b
        at_twilio = await sim_messages(sim, a.to)
        assert sorted(m["sid"] for m in at_twilio) == sorted([sm_a, sm_b])
        records = await _records_to(client, a.to, 2)
        assert sorted(r["message_sid"] for r in records) == sorted([sm_a, sm_b])
        assert {r["id"] for r in records} == {a.final[1]["id"], b.json()["id"]}


async def test_a_resend_twilio_refuses_stays_reconciled_and_is_sent_later(stack: Stack) -> None:
    """A's create is answered 500 (in flight), and reconciliation's resend is answered 503
    (Twilio certainly did not take it). The request must stay accounted for: with no client
    retry at all, it is sent once Twilio takes creates again (it used to be forgotten, so
    nothing was ever sent, and a retry with the same key counted as new)."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        a = Sent(unique_number(), "resend refused")
        await sim.post("/_sim/config", json={"create_errors": {a.to: 500}})
        try:
            received = (await sim.get("/_sim/stats")).json()["creates_received"]
            await _first_attempt(client, use_case["id"], a)
            assert a.final[0] == 503, a.answers
            await sim.post("/_sim/config", json={"create_errors": {a.to: 503}})
            deadline = time.monotonic() + 30
            while (await sim.get("/_sim/stats")).json()["creates_received"] <= received + 1:
                assert time.monotonic() < deadline, "reconciliation never resent"
                await asyncio.sleep(0.1)
            # The resend calls Twilio until its deadline (6 s), retrying the 503; the next
            # resend of its new marker comes no earlier than its window's end (8 s).
            await asyncio.sleep(7)
        finally:
            await sim.post("/_sim/config", json={"create_errors": {}})
        deadline = time.monotonic() + 40
        while not await sim_messages(sim, a.to):
            assert time.monotonic() < deadline, "the refused resend was never sent again"
            await asyncio.sleep(0.5)
        await send_until_answered(client, use_case["id"], a)
        assert a.created, a.answers
        at_twilio = await sim_messages(sim, a.to)
        assert [m["sid"] for m in at_twilio] == [a.final[1]["message_sid"]]


async def test_a_use_case_moved_to_another_service_is_reconciled_where_it_sent(
    stack: Stack,
) -> None:
    """Twilio created A's message through the use case's Messaging Service but the answer
    was lost; the use case is then PATCHed to another service. Reconciliation looks where
    the create call went (the marker's snapshot): A's retry gets that message, and Twilio
    has it once (it used to look in the new service, find nothing and send it again)."""
    moved_to = "MG" + uuid.uuid4().hex
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        await sim.post("/_sim/config", json={"services": {moved_to: list(SENDERS[:1])}})
        use_case = await create_use_case(admin)
        warm = {"use_case_id": use_case["id"], "to_phone_number": unique_number(), "message": "w"}
        assert (await client.post("/v1/sms/", json=warm)).status_code == 201  # worker warm
        a = Sent(unique_number(), "moved service")
        await sim.post("/_sim/config", json={"create_delay_ms": 8000})
        try:
            await _first_attempt(client, use_case["id"], a)
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        assert a.final[0] == 503 and "answer was lost" in a.final[1]["detail"], a.answers
        patched = await admin.patch(
            f"/v1/admin/sms-use-cases/{use_case['id']}", json={"messaging_service_sid": moved_to}
        )
        assert patched.status_code == 200, patched.text
        await send_until_answered(client, use_case["id"], a)
        assert a.created, a.answers
        at_twilio = await sim_messages(sim, a.to)
        assert [m["sid"] for m in at_twilio] == [a.final[1]["message_sid"]]
        assert at_twilio[0]["messaging_service_sid"] == SERVICE_SID
