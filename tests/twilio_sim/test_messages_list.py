"""GET .../Messages.json over HTTP and through twilio's own clients (async and sync)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
from twilio.rest import Client

from tests.twilio_sim.factories import ACCOUNT_SID, SERVICE_SID, basic_auth
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator

TO = "+14155550199"
OTHER = "+12125550142"
LIST_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


async def create(client: Client, to: str = TO, **params: Any) -> Any:
    params.setdefault("messaging_service_sid", SERVICE_SID)
    return await client.messages.create_async(to=to, body="Hello", **params)


async def get_list(
    sim: TwilioSimulator, query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    url = f"{sim.base_url}{LIST_PATH}{query}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=basic_auth() if headers is None else headers) as resp,
    ):
        return resp.status, await resp.json()


async def test_official_async_client_lists_across_pages(
    sim: TwilioSimulator, async_client: Client
) -> None:
    mine = [(await create(async_client)).sid for _ in range(6)]
    await create(async_client, to=OTHER)
    requested: list[tuple[str, object]] = []
    http_client = async_client.http_client
    original = http_client.request

    async def recording(method: str, url: str, **kwargs: Any) -> Any:
        requested.append((url.removeprefix(sim.base_url), kwargs.get("params")))
        return await original(method, url, **kwargs)

    http_client.request = recording
    account = async_client.api.v2010.accounts(ACCOUNT_SID)
    listed = await account.messages.list_async(to=TO, page_size=2, limit=5)
    assert [m.sid for m in listed] == mine[::-1][:5]  # newest first
    assert requested[0] == (LIST_PATH, {"To": TO, "PageSize": 2})
    assert [url.split("&Page=")[1][:1] for url, _ in requested[1:]] == ["1", "2"]
    assert all(m.to == TO and m.status == "delivered" for m in listed)
    everything = await account.messages.list_async(page_size=3)
    assert len(everything) == 7


async def test_pages_follow_next_page_uri_to_a_null_on_the_last(
    sim: TwilioSimulator, async_client: Client
) -> None:
    sids = [(await create(async_client)).sid for _ in range(5)]
    page = await async_client.messages.page_async(to=TO, page_size=2)
    seen: list[list[str]] = []
    while page is not None:
        seen.append([m.sid for m in page])
        page = await page.next_page_async()
    assert seen == [sids[4:2:-1], sids[2:0:-1], sids[:1]]


async def test_page_json_has_twilio_paging_keys(sim: TwilioSimulator, async_client: Client) -> None:
    sids = [(await create(async_client)).sid for _ in range(3)]
    status, body = await get_list(sim, "?To=%2B14155550199&PageSize=2")
    assert status == 200
    base = f"{LIST_PATH}?To=%2B14155550199&PageSize=2"
    assert {k: v for k, v in body.items() if k != "messages"} == {
        "end": 1,
        "first_page_uri": f"{base}&Page=0",
        "next_page_uri": f"{base}&Page=1&PageToken=PA{sids[1]}",
        "page": 0,
        "page_size": 2,
        "previous_page_uri": None,
        "start": 0,
        "uri": f"{base}&Page=0",
    }
    fetched = sim.message(sids[2])
    assert fetched is not None
    assert body["messages"][0] == fetched.resource()
    status, second = await get_list(sim, body["next_page_uri"][len(LIST_PATH) :])
    assert status == 200
    assert [m["sid"] for m in second["messages"]] == [sids[0]]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 2)
    assert second["next_page_uri"] is None
    assert second["previous_page_uri"] == f"{base}&Page=0&PageToken=PB{sids[0]}"
    _, back = await get_list(sim, second["previous_page_uri"][len(LIST_PATH) :])
    assert [m["sid"] for m in back["messages"]] == [sids[2], sids[1]]


async def test_a_page_token_stays_put_while_new_messages_arrive(
    sim: TwilioSimulator, async_client: Client
) -> None:
    sids = [(await create(async_client)).sid for _ in range(4)]
    first = await async_client.messages.page_async(page_size=2)
    await create(async_client)
    second = await first.next_page_async()
    assert second is not None
    assert [m.sid for m in second] == [sids[1], sids[0]]


async def test_only_the_authenticated_accounts_messages_are_listed(
    sim: TwilioSimulator, async_client: Client
) -> None:
    other_account = "AC" + "c3" * 16
    sim.configure(accounts={other_account: "other-token"})
    mine = await create(async_client)
    url = f"{sim.base_url}/2010-04-01/Accounts/{other_account}/Messages.json"
    auth = basic_auth(other_account, "other-token")
    async with aiohttp.ClientSession() as session:
        form = {"To": TO, "Body": "x", "From": "+14155550100"}
        async with session.post(url, data=form, headers=auth) as resp:
            assert resp.status == 201
            theirs = (await resp.json())["sid"]
        async with session.get(url, headers=auth) as resp:
            assert [m["sid"] for m in (await resp.json())["messages"]] == [theirs]
    status, body = await get_list(sim)
    assert [m["sid"] for m in body["messages"]] == [mine.sid]
    status, body = await get_list(sim, headers=basic_auth(other_account, "other-token"))
    assert (status, body["code"]) == (401, 20003)  # not the path's account
    assert (await get_list(sim, headers={}))[0] == 401


async def test_from_filter_uses_the_sender_once_shown(
    sim: TwilioSimulator, async_client: Client
) -> None:
    via_service = await create(async_client, to=OTHER)  # geomatch: +12125550100
    direct = await create(async_client, messaging_service_sid=None, from_="+14155550100")
    listed = await async_client.messages.list_async(from_="+12125550100")
    assert [m.sid for m in listed] == [via_service.sid]
    listed = await async_client.messages.list_async(from_="+14155550100")
    assert [m.sid for m in listed] == [direct.sid]


async def test_date_sent_filters_as_twilio_python_sends_them(
    sim: TwilioSimulator, async_client: Client
) -> None:
    times = {
        "early": datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        "evening": datetime(2026, 12, 1, 20, 0, 0, tzinfo=UTC),
        "late": datetime(2026, 12, 1, 23, 0, 0, tzinfo=UTC),
    }
    sids = {}
    for name, moment in times.items():
        created = await create(async_client)
        stored = sim.message(created.sid)
        assert stored is not None
        stored.sent = moment.timestamp() + 0.4  # a fractional second, as time.time() gives
        sids[name] = created.sid

    async def listed(**filters: Any) -> list[str]:
        return [m.sid for m in await async_client.messages.list_async(**filters)]

    evening = times["evening"]
    assert await listed(date_sent_after=evening) == [sids["late"], sids["evening"]]
    assert await listed(date_sent_before=evening) == [sids["evening"], sids["early"]]
    assert await listed(date_sent=evening) == [sids["evening"]]
    assert await listed(date_sent="2026-12-01") == [sids["late"], sids["evening"]]
    assert await listed(date_sent_before="2026-11-30") == [sids["early"]]
    status, body = await get_list(sim, "?DateSent%3E=tomorrow")
    assert (status, body["code"], body["message"]) == (400, 20001, "Invalid date value.")


async def test_date_sent_is_null_until_sent_and_such_messages_match_no_date_filter(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(callback_delay_ms=60_000, scenarios={OTHER: "failed"})
    pending = await create(async_client, status_callback=receiver.url())
    failed = await create(async_client, to=OTHER)
    listed = {m.sid: m for m in await async_client.messages.list_async()}
    assert (listed[pending.sid].status, listed[pending.sid].date_sent) == ("accepted", None)
    assert (listed[failed.sid].status, listed[failed.sid].date_sent) == ("failed", None)
    assert listed[failed.sid].error_code == 30007
    today = datetime.now(UTC).date().isoformat()
    status, body = await get_list(sim, f"?DateSent={today}")
    assert (status, body["messages"]) == (200, [])


async def test_sync_client_streams_every_page(sim: TwilioSimulator, client: Client) -> None:
    for _ in range(5):
        await asyncio.to_thread(
            client.messages.create, to=TO, body="x", messaging_service_sid=SERVICE_SID
        )
    streamed = await asyncio.to_thread(lambda: list(client.messages.stream(page_size=2)))
    assert [m.sid for m in streamed] == [m.sid for m in reversed(sim.messages)]
