"""Webhook deliveries end to end: the admin API, the real broker, the worker, and a receiver
on loopback (the private-URL setting on), with retry delays shortened through settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.config import WebhookEventType
from schemas.webhooks import webhook_event_id
from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_inbound import text
from tests.integration.test_send import send
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.integration

#: The contract's rule: an endpoint receives the events from 5 s after its 201.
IN_FORCE_S = 5.0
SETTINGS = {
    "webhook_allow_private_urls": "on",
    "webhook_retry_delays_seconds": "0.5,0.5,1",
    "webhook_retry_every_seconds": "1",
    "webhook_dispatch_interval_seconds": "0.2",
}
#: This module's stack disables an endpoint after 4 s of failures (72 h in production).
DISABLE_AFTER = {"webhook_disable_after_seconds": "4"}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("webhooks")
    with Stack(root, kafka_bootstrap, **SETTINGS, **DISABLE_AFTER).running() as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def register(admin: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "events": ["sms.status", "sms.inbound"], **fields}
    answer = await admin.post("/v1/admin/webhook-endpoints", json=body)
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def in_force() -> None:
    await asyncio.sleep(IN_FORCE_S)


async def statuses_of(receiver: Receiver, record_id: str, last: str) -> list[dict[str, Any]]:
    """The ``sms.status`` data the receiver took for ``record_id``, once ``last`` is among them."""

    async def check() -> list[dict[str, Any]] | None:
        data = [d.body["data"] for d in receiver.events("sms.status")]
        mine = [item for item in data if item["id"] == record_id]
        return mine if any(item["status"] == last for item in mine) else None

    return await wait_until_async(check, 30, f"{last} of {record_id} delivered")


async def logged_delivery(
    admin: httpx.AsyncClient, endpoint_id: str, event_id: str, status: str
) -> dict[str, Any]:
    """The delivery log's entry for ``event_id`` once it has ``status``."""

    async def check() -> dict[str, Any] | None:
        answer = await admin.get(
            f"/v1/admin/webhook-endpoints/{endpoint_id}/deliveries", params={"status": status}
        )
        assert answer.status_code == 200, answer.text
        found = [item for item in answer.json()["items"] if item["event_id"] == event_id]
        return found[0] if found else None

    return await wait_until_async(check, 30, f"{event_id} {status} in the delivery log")


async def test_a_status_change_and_an_inbound_reply_are_delivered_signed(
    stack: Stack, receiver: Receiver
) -> None:
    person = unique_number()
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        endpoint = await register(admin, receiver.url)
        await in_force()
        answer = await send(client, use_case["id"], person)
        assert answer.status_code == 201, answer.text
        record_id = answer.json()["id"]
        data = await statuses_of(receiver, record_id, "delivered")
        await text(stack, person, "thanks")

        async def inbound() -> list[Any]:
            return [
                d for d in receiver.events("sms.inbound") if d.body["data"]["from_number"] == person
            ]

        (reply,) = await wait_until_async(inbound, 30, "the inbound reply delivered")
    versions = [item["version"] for item in data]
    assert versions == sorted(versions) and versions[0] == 1
    for delivery in receiver.received:
        assert delivery.signed_by(endpoint["secret"])
        assert not delivery.signed_by("whsec_" + "x" * 43)
    first = next(d for d in receiver.received if d.body["type"] == "sms.status")
    record = first.body["data"]
    assert first.event_id == webhook_event_id(
        WebhookEventType.STATUS, uuid.UUID(record["id"]), record["version"]
    )
    assert first.body["created_at"] == record["updated_at"]
    assert reply.event_id == webhook_event_id(
        WebhookEventType.INBOUND, uuid.UUID(reply.body["data"]["id"]), 1
    )
    assert reply.body["data"]["body"] == "thanks"


async def test_a_failed_attempt_is_retried_with_the_same_event_id(stack: Stack) -> None:
    receiver = await Receiver(fail_first=2).start()
    try:
        async with stack.admin() as admin, stack.client() as client:
            use_case = await create_use_case(admin)
            endpoint = await register(
                admin, receiver.url, events=["sms.status"], statuses=["pending"]
            )
            await in_force()
            answer = await send(client, use_case["id"], unique_number())
            record_id = answer.json()["id"]
            (created,) = await statuses_of(receiver, record_id, "pending")
            event_id = webhook_event_id(WebhookEventType.STATUS, uuid.UUID(record_id), 1)
            attempts = receiver.attempts_of(event_id)
            assert [a.answered for a in attempts] == [500, 500, 200]
            assert len({a.raw for a in attempts}) == 1, "every attempt sends the same body"
            assert created["version"] == 1
            logged = await logged_delivery(admin, endpoint["id"], event_id, "delivered")
        assert (logged["attempts"], logged["last_status_code"]) == (3, 200)
        assert logged["type"] == "sms.status" and logged["delivered_at"] is not None
    finally:
        await receiver.stop()


async def test_filters_by_use_case_and_status_hold(stack: Stack) -> None:
    wanted, everything = await Receiver().start(), await Receiver().start()
    try:
        async with stack.admin() as admin, stack.client() as client:
            mine = await create_use_case(admin)
            other = await create_use_case(admin, name="Other")
            await register(
                admin, wanted.url, events=["sms.status"], use_case_ids=[mine["id"]],
                statuses=["delivered"],
            )  # fmt: skip
            await register(admin, everything.url)
            await in_force()
            ids = {}
            for use_case in (mine, other):
                answer = await send(client, use_case["id"], unique_number())
                ids[use_case["id"]] = answer.json()["id"]
            for record_id in ids.values():
                await statuses_of(everything, record_id, "delivered")
            await statuses_of(wanted, ids[mine["id"]], "delivered")
        took = [(d.body["data"]["id"], d.body["data"]["status"]) for d in wanted.received]
        assert took == [(ids[mine["id"]], "delivered")]
    finally:
        await wanted.stop()
        await everything.stop()


async def test_a_rotated_secret_signs_beside_the_new_one(stack: Stack, receiver: Receiver) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        endpoint = await register(admin, receiver.url, events=["sms.status"])
        rotated = await admin.post(f"/v1/admin/webhook-endpoints/{endpoint['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        listed = await admin.get(f"/v1/admin/webhook-endpoints/{endpoint['id']}")
        assert "secret" not in listed.json() and "secrets" not in listed.json()
        await in_force()
        record_id = (await send(client, use_case["id"], unique_number())).json()["id"]
        await statuses_of(receiver, record_id, "pending")
    for delivery in receiver.received:
        assert delivery.signed_by(endpoint["secret"]) and delivery.signed_by(new_secret)
        assert delivery.signature.count("v1=") == 2


async def test_replay_since_a_time_delivers_the_latest_versions_again(
    stack: Stack, receiver: Receiver
) -> None:
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        endpoint = await register(admin, receiver.url, events=["sms.status"])
        await in_force()
        since = datetime.now(UTC).isoformat()
        record_id = (await send(client, use_case["id"], unique_number())).json()["id"]
        data = await statuses_of(receiver, record_id, "delivered")
        latest = max(item["version"] for item in data)
        before = len(receiver.received)
        answer = await admin.post(
            f"/v1/admin/webhook-endpoints/{endpoint['id']}/replay", json={"since": since}
        )
        assert answer.status_code == 202, answer.text

        async def replayed() -> bool:
            return len(receiver.received) > before

        await wait_until_async(replayed, 30, "the replay delivered")
    again = receiver.received[before:]
    event_id = webhook_event_id(WebhookEventType.STATUS, uuid.UUID(record_id), latest)
    assert [d.event_id for d in again] == [event_id], "the latest version only, same id"
    assert again[0].raw == receiver.attempts_of(event_id)[0].raw


async def test_a_dead_endpoint_does_not_delay_a_live_one(stack: Stack) -> None:
    dead, live = await Receiver(always=503).start(), await Receiver().start()
    try:
        async with stack.admin() as admin, stack.client() as client:
            use_case = await create_use_case(admin)
            await register(admin, dead.url, events=["sms.status"])
            await register(admin, live.url, events=["sms.status"])
            await in_force()
            record_ids = []
            for _ in range(5):
                answer = await send(client, use_case["id"], unique_number())
                record_ids.append(answer.json()["id"])
            for record_id in record_ids:
                await statuses_of(live, record_id, "delivered")
        assert dead.received, "the dead endpoint was tried"
        assert not dead.events(), "and never answered 200"
    finally:
        await dead.stop()
        await live.stop()


async def test_registration_refuses_bad_urls_and_unknown_statuses(stack: Stack) -> None:
    async with stack.admin() as admin:
        for body, why in (
            ({"url": "not a url", "events": ["sms.status"]}, "url"),
            ({"url": "ftp://example.com/x", "events": ["sms.status"]}, "url"),
            (
                {"url": "https://example.com/x", "events": ["sms.status"], "statuses": ["gone"]},
                "statuses",
            ),
            ({"url": "https://example.com/x", "events": []}, "events"),
        ):
            answer = await admin.post("/v1/admin/webhook-endpoints", json=body)
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "invalid_request"
            assert why in answer.json()["detail"]


async def test_patch_list_and_delete(stack: Stack) -> None:
    async with stack.admin() as admin:
        endpoint = await register(admin, "https://hooks.example.invalid/x")
        path = f"/v1/admin/webhook-endpoints/{endpoint['id']}"
        patched = await admin.patch(path, json={"enabled": False, "statuses": ["failed"]})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["enabled"], patched.json()["statuses"]) == (False, ["failed"])
        listed = (await admin.get("/v1/admin/webhook-endpoints")).json()["items"]
        assert [e["id"] for e in listed if e["id"] == endpoint["id"]] == [endpoint["id"]]
        assert all("secret" not in e for e in listed)
        assert (await admin.delete(path)).status_code == 204
        assert (await admin.get(path)).status_code == 404
        assert (await admin.delete(path)).status_code == 404


@pytest.fixture
async def dead_endpoint(stack: Stack) -> AsyncIterator[tuple[Receiver, str]]:
    """An endpoint whose receiver answers 503 to everything, with an event sent to it: the
    receiver and the endpoint's path."""
    dead = await Receiver(always=503).start()
    try:
        async with stack.admin() as admin, stack.client() as client:
            use_case = await create_use_case(admin)
            endpoint = await register(admin, dead.url, events=["sms.status"])
            await in_force()
            await send(client, use_case["id"], unique_number())
        yield dead, f"/v1/admin/webhook-endpoints/{endpoint['id']}"
    finally:
        await dead.stop()


async def test_a_deleted_endpoint_gets_nothing_more(
    stack: Stack, dead_endpoint: tuple[Receiver, str]
) -> None:
    dead, path = dead_endpoint

    async def retried() -> bool:
        return len(dead.received) >= 2

    await wait_until_async(retried, 30, "the dead endpoint retried")
    async with stack.admin() as admin:
        assert (await admin.delete(path)).status_code == 204
    await in_force()
    after = len(dead.received)
    # Its retries came every second or so: three seconds without one means they stopped.
    await asyncio.sleep(3)
    assert len(dead.received) == after


async def test_an_endpoint_that_only_fails_is_disabled(
    stack: Stack, dead_endpoint: tuple[Receiver, str]
) -> None:
    dead, path = dead_endpoint
    async with stack.admin() as admin:

        async def disabled() -> bool:
            answer = await admin.get(path)
            return answer.json()["enabled"] is False

        await wait_until_async(disabled, 30, "the failing endpoint disabled")
    assert len(dead.received) >= 2 and not dead.events()
