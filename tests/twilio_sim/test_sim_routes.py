"""The /_sim/ inspection and configuration routes, and their programmatic equivalents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from twilio.rest import Client

from tests.twilio_sim.factories import SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator


@pytest.fixture
async def http(sim: TwilioSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sim.base_url) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with http.get(path) as resp:
        return resp.status, await resp.json()


async def post_json(http: aiohttp.ClientSession, path: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(path, json=body) as resp:
        return resp.status, await resp.json()


async def send(client: Client, to: str, callback: str | None = None) -> Any:
    return await asyncio.to_thread(
        client.messages.create,
        to=to,
        body="hi",
        messaging_service_sid=SERVICE_SID,
        status_callback=callback,
    )


async def test_health(http: aiohttp.ClientSession) -> None:
    assert await get_json(http, "/_sim/health") == (
        200,
        {"status": "ok", "messages": 0, "pending_callbacks": 0},
    )


async def test_messages_listing_filter_and_detail(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver, http: aiohttp.ClientSession
) -> None:
    first = await send(client, "+14155550111", receiver.url())
    second = await send(client, "+12125550122")
    await sim.wait_idle()
    status, listing = await get_json(http, "/_sim/messages")
    assert status == 200
    assert [m["sid"] for m in listing["messages"]] == [first.sid, second.sid]
    _, filtered = await get_json(http, "/_sim/messages?to=%2B12125550122")
    assert [m["sid"] for m in filtered["messages"]] == [second.sid]
    status, detail = await get_json(http, f"/_sim/messages/{first.sid}")
    assert status == 200
    assert detail["sender"] == "+14155550100"
    assert detail["scenario"] == "delivered"
    assert detail["status"] == "delivered"
    assert [(c["status"], c["outcome"], c["http_status"]) for c in detail["callbacks"]] == [
        ("queued", "delivered", 204),
        ("sent", "delivered", 204),
        ("delivered", "delivered", 204),
    ]
    assert (await get_json(http, "/_sim/messages/SMnope"))[0] == 404
    assert [m.sid for m in sim.messages_to("+12125550122")] == [second.sid]


async def test_config_merge_and_reset(
    sim: TwilioSimulator, client: Client, http: aiohttp.ClientSession
) -> None:
    status, config = await post_json(
        http,
        "/_sim/config",
        {"scenarios": {"+14155550111": "failed"}, "services": {"MG" + "c" * 32: ["+14155550199"]}},
    )
    assert status == 200
    assert config["scenarios"] == {"+14155550111": "failed"}
    assert set(config["services"]) == {SERVICE_SID, "MG" + "c" * 32}
    assert set(config["accounts"].values()) == {"***"}
    await send(client, "+14155550111")
    assert sim.messages[0].scenario.value == "failed"
    assert sim.messages[0].status == "failed"
    assert await post_json(http, "/_sim/reset") == (200, {"status": "ok"})
    assert sim.messages == []
    status, current = await get_json(http, "/_sim/config")
    assert current["scenarios"] == {"+14155550111": "failed"}  # reset keeps configuration


@pytest.mark.parametrize("body", [{"default_scenario": "nope"}, {"unknown": 1}, [1, 2]])
async def test_bad_config_is_rejected_with_400(http: aiohttp.ClientSession, body: Any) -> None:
    status, problem = await post_json(http, "/_sim/config", body)
    assert status == 400
    assert problem["status"] == 400
    assert problem["detail"]


async def test_programmatic_configure_merges(sim: TwilioSimulator) -> None:
    sim.configure({"scenarios": {"+1": "none"}}, default_scenario="sent_only")
    sim.configure(scenarios={"+2": "failed"})
    assert {k: v.value for k, v in sim.config.scenarios.items()} == {"+1": "none", "+2": "failed"}
    assert sim.config.default_scenario.value == "sent_only"


async def test_stored_messages_are_bounded(sim: TwilioSimulator, client: Client) -> None:
    sim.configure(max_stored_messages=2)
    sids = [(await send(client, f"+1415555{n:04d}")).sid for n in range(300, 303)]
    assert [m.sid for m in sim.messages] == sids[1:]
    assert sim.message(sids[0]) is None
