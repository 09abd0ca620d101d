"""The Messages API through twilio's own synchronous Client (run in a thread: it blocks)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_sim.factories import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SERVICE_SID,
    basic_auth,
    create_client,
)
from twilio_sim import TwilioSimulator

TO = "+14155550199"


async def create(client: Client, **params: Any) -> Any:
    params.setdefault("to", TO)
    params.setdefault("body", "Hello from smslane")
    params.setdefault("messaging_service_sid", SERVICE_SID)
    return await asyncio.to_thread(client.messages.create, **params)


async def raw_post(
    sim: TwilioSimulator, form: dict[str, str], auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN)
) -> tuple[int, dict[str, Any]]:
    url = f"{sim.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=basic_auth(*auth)) as response,
    ):
        return response.status, await response.json()


async def test_messaging_service_send_answers_201_with_the_documented_shape(
    sim: TwilioSimulator,
) -> None:
    status, body = await raw_post(
        sim, {"To": TO, "Body": "Hello", "MessagingServiceSid": SERVICE_SID}
    )
    assert status == 201
    sid = body["sid"]
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    assert body == {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": "Hello",
        "date_created": body["date_created"],
        "date_sent": None,
        "date_updated": body["date_updated"],
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": None,
        "messaging_service_sid": SERVICE_SID,
        "num_media": "0",
        "num_segments": "0",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json",
            "feedback": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Feedback.json",
        },
        "to": TO,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    }
    assert parsedate_to_datetime(body["date_created"]).utcoffset() == timedelta(0)
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["date_created"])


async def test_twilio_client_reads_the_created_message(
    sim: TwilioSimulator, client: Client
) -> None:
    message = await create(client)
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == SERVICE_SID
    assert message.num_segments == "0"
    assert message.date_created is not None
    assert [m.sid for m in sim.messages] == [message.sid]
    assert sim.messages[0].sender == "+14155550100"  # area-code geomatch on 415


async def test_send_with_from_is_queued_and_shows_from(client: Client) -> None:
    message = await create(client, messaging_service_sid=None, from_="+14155550100")
    assert (message.status, message.from_, message.num_segments) == (
        "queued",
        "+14155550100",
        "1",
    )


async def test_fetch_shows_the_chosen_sender_once_the_message_moved_on(
    sim: TwilioSimulator, client: Client
) -> None:
    created = await create(client, to="+12125550142")
    await sim.wait_idle()
    fetched = await asyncio.to_thread(client.messages(created.sid).fetch)
    assert (fetched.status, fetched.from_, fetched.num_segments) == (
        "delivered",
        "+12125550100",
        "1",
    )
    assert fetched.date_sent is not None


@pytest.mark.parametrize(
    ("auth", "path_sid"),
    [
        ((ACCOUNT_SID, "wrong-token"), ACCOUNT_SID),
        (("AC" + "0" * 32, AUTH_TOKEN), ACCOUNT_SID),
        ((ACCOUNT_SID, AUTH_TOKEN), "AC" + "0" * 32),  # user must be the path's account
    ],
)
async def test_bad_credentials_answer_401_20003(
    sim: TwilioSimulator, auth: tuple[str, str], path_sid: str
) -> None:
    url = f"{sim.base_url}/2010-04-01/Accounts/{path_sid}/Messages.json"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data={"To": TO, "Body": "x"}, headers=basic_auth(*auth)) as resp,
    ):
        assert resp.status == 401
        assert await resp.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }


async def test_no_credentials_raise_twilio_rest_exception(sim: TwilioSimulator) -> None:
    client = Client(ACCOUNT_SID, "not-the-token")
    client.api.base_url = sim.base_url
    with pytest.raises(TwilioRestException) as caught:
        await create(client)
    assert (caught.value.status, caught.value.code) == (401, 20003)
    client.http_client.session.close()


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
        ("not-a-number", 21211),
    ],
)
async def test_magic_numbers_raise_their_error(
    sim: TwilioSimulator, client: Client, to: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await create(client, to=to)
    assert (caught.value.status, caught.value.code) == (400, code)
    assert caught.value.msg
    assert sim.messages == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Body": "x", "MessagingServiceSid": SERVICE_SID}, 21604),
        ({"To": TO, "MessagingServiceSid": SERVICE_SID}, 21602),
        ({"To": TO, "Body": "x"}, 21603),
        ({"To": TO, "Body": "x", "MessagingServiceSid": "MG" + "0" * 32}, 21701),
        ({"To": TO, "Body": "x" * 1601, "MessagingServiceSid": SERVICE_SID}, 21617),
    ],
)
async def test_invalid_requests_answer_twilio_errors(
    sim: TwilioSimulator, form: dict[str, str], code: int
) -> None:
    status, body = await raw_post(sim, form)
    assert status == 400
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert isinstance(body["message"], str)


async def test_unknown_service_message_names_it(sim: TwilioSimulator) -> None:
    unknown = "MG" + "0" * 32
    _, body = await raw_post(sim, {"To": TO, "Body": "x", "MessagingServiceSid": unknown})
    assert body["message"] == f"The Messaging Service Sid {unknown} is invalid."


async def test_unknown_routes_answer_twilio_404(sim: TwilioSimulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/2010-04-01/Nope.json") as resp,
    ):
        assert resp.status == 404
        assert await resp.json() == {
            "code": 20404,
            "message": "The requested resource /2010-04-01/Nope.json was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404,
        }


async def test_fetching_an_unknown_message_raises_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await asyncio.to_thread(client.messages("SM" + "0" * 32).fetch)
    assert (caught.value.status, caught.value.code) == (404, 20404)


async def test_create_client_helper_points_both_domains(sim: TwilioSimulator) -> None:
    client = create_client(sim.base_url)
    assert client.api.base_url == sim.base_url
    assert client.lookups.base_url == sim.base_url
