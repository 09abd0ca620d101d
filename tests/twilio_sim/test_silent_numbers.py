"""Lost callbacks: a ``silent_numbers`` destination's status advances, no callback is sent."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from twilio.rest import Client

from tests.twilio_sim.factories import SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator

SILENT = "+14155550177"
LOUD = "+14155550188"


async def create(client: Client, to: str, callback: str | None = None) -> Any:
    return await client.messages.create_async(
        to=to, body="hi", messaging_service_sid=SERVICE_SID, status_callback=callback
    )


async def test_status_advances_to_delivered_without_a_callback(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.base_url}/_sim/config", json={"silent_numbers": [SILENT]}) as resp,
    ):
        assert (await resp.json())["silent_numbers"] == [SILENT]
    silent = await create(async_client, SILENT, receiver.url())
    loud = await create(async_client, LOUD, receiver.url())
    await sim.wait_idle()
    fetched = await async_client.messages(silent.sid).fetch_async()
    assert (fetched.status, fetched.error_code) == ("delivered", None)
    assert fetched.date_sent is not None
    assert fetched.from_ == "+14155550100"
    assert receiver.statuses(silent.sid) == []
    assert receiver.statuses(loud.sid) == ["queued", "sent", "delivered"]
    listed = await async_client.messages.list_async(to=SILENT)
    assert [(m.sid, m.status) for m in listed] == [(silent.sid, "delivered")]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/_sim/messages/{silent.sid}") as resp,
    ):
        detail = await resp.json()
    assert [(c["status"], c["outcome"], c["attempts"]) for c in detail["callbacks"]] == [
        ("queued", "dropped", 0),
        ("sent", "dropped", 0),
        ("delivered", "dropped", 0),
    ]
    assert {c["url"] for c in detail["callbacks"]} == {receiver.url()}


async def test_each_step_shows_through_fetch_as_it_happens(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(silent_numbers=[SILENT], callback_delay_ms=250)
    created = await create(async_client, SILENT, receiver.url())
    seen = [created.status]
    deadline = time.monotonic() + 10
    while seen[-1] != "delivered" and time.monotonic() < deadline:
        status = (await async_client.messages(created.sid).fetch_async()).status
        if status != seen[-1]:
            seen.append(status)
    assert seen == ["accepted", "queued", "sent", "delivered"]
    assert receiver.received == []


@pytest.mark.parametrize(
    ("scenario", "status", "error_code", "error_message"),
    [
        ("undelivered", "undelivered", 30003, "Unreachable destination handset"),
        ("failed", "failed", 30007, "Message filtered"),
        ("sent_only", "sent", None, None),
        ("early", "delivered", None, None),
        ("out_of_order", "delivered", None, None),
    ],
)
async def test_the_scenarios_outcome_and_error_code_show_through_fetch(
    sim: TwilioSimulator,
    async_client: Client,
    receiver: CallbackReceiver,
    scenario: str,
    status: str,
    error_code: int | None,
    error_message: str | None,
) -> None:
    sim.configure(silent_numbers=[SILENT], scenarios={SILENT: scenario})
    created = await create(async_client, SILENT, receiver.url())
    await sim.wait_idle()
    fetched = await async_client.messages(created.sid).fetch_async()
    assert (fetched.status, fetched.error_code, fetched.error_message) == (
        status,
        error_code,
        error_message,
    )
    assert receiver.received == []


async def test_without_a_status_callback_the_status_still_advances_over_time(
    sim: TwilioSimulator, async_client: Client
) -> None:
    sim.configure(silent_numbers=[SILENT], callback_delay_ms=200)
    created = await create(async_client, SILENT)
    assert sim.messages[0].status == "accepted"  # not final at once, as without silence
    await sim.wait_idle()
    fetched = await async_client.messages(created.sid).fetch_async()
    assert fetched.status == "delivered"
    assert sim.messages[0].callbacks == []  # nothing would have been sent
