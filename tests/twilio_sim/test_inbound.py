"""``POST /_sim/inbound``: the signed incoming-message webhook, and Advanced Opt-Out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.twilio_sim.factories import ACCOUNT_SID, AUTH_TOKEN, SENDERS, SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator
from twilio_sim.inbound import opt_out_type

PERSON = "+14155559876"


@pytest.fixture
async def http(sim: TwilioSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sim.base_url) as session:
        yield session


async def text(http: aiohttp.ClientSession, body: str, **extra: Any) -> tuple[int, Any]:
    payload = {"from": PERSON, "to": SENDERS[0], "body": body, **extra}
    async with http.post("/_sim/inbound", json=payload) as answer:
        return answer.status, await answer.json()


async def send(client: Client, to: str = PERSON) -> Any:
    return await asyncio.to_thread(
        client.messages.create, to=to, body="hi", messaging_service_sid=SERVICE_SID
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [("STOP", "STOP"), (" stopall ", "STOP"), ("Revoke", "STOP"), ("unstop", "START"),
     ("yes", "START"), ("HELP", "HELP"), ("info", "HELP"), ("stop please", None), ("", None)],
)  # fmt: skip
def test_opt_out_type_of_twilios_default_keywords(body: str, kind: str | None) -> None:
    assert opt_out_type(body) == kind


async def test_the_webhook_is_signed_and_carries_the_message(
    sim: TwilioSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    sim.configure(inbound_url=receiver.url("/inbound"))
    status, answer = await text(http, "Stop")
    assert status == 200, answer
    assert answer["webhook"]["status"] == 204 and answer["opt_out_type"] == "STOP"
    (received,) = receiver.received
    form = received.form
    assert (form["From"], form["To"], form["Body"]) == (PERSON, SENDERS[0], "Stop")
    assert (form["AccountSid"], form["MessagingServiceSid"]) == (ACCOUNT_SID, SERVICE_SID)
    assert form["OptOutType"] == "STOP" and form["MessageSid"] == answer["message_sid"]
    validator = RequestValidator(AUTH_TOKEN)
    signature = received.headers["X-Twilio-Signature"]
    assert validator.validate(receiver.url("/inbound"), form, signature)


async def test_a_plain_message_has_no_opt_out_type(
    sim: TwilioSimulator, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    sim.configure(inbound_url=receiver.url("/inbound"))
    status, answer = await text(http, "Running late")
    assert status == 200 and answer["opt_out_type"] is None
    assert "OptOutType" not in receiver.received[0].form


async def test_stop_makes_sends_fail_with_21610_until_start(
    sim: TwilioSimulator, http: aiohttp.ClientSession, client: Client
) -> None:
    assert (await send(client)).status == "accepted"
    status, answer = await text(http, "STOP")  # no inbound_url: nothing sent, still applied
    assert status == 200 and answer["webhook"] is None and answer["unsubscribed"] is True
    with pytest.raises(TwilioRestException) as refused:
        await send(client)
    assert refused.value.code == 21610
    assert (await send(client, "+14155559877")).status == "accepted"  # someone else
    await text(http, "HELP")
    with pytest.raises(TwilioRestException):
        await send(client)
    status, answer = await text(http, "start")
    assert answer["unsubscribed"] is False
    assert (await send(client)).status == "accepted"


async def test_without_advanced_opt_out_stop_changes_nothing(
    sim: TwilioSimulator, http: aiohttp.ClientSession, client: Client
) -> None:
    sim.configure(advanced_opt_out=False)
    status, answer = await text(http, "STOP")
    assert status == 200 and answer["opt_out_type"] is None
    assert (await send(client)).status == "accepted"


async def test_a_bad_inbound_request_is_a_400(http: aiohttp.ClientSession) -> None:
    async with http.post("/_sim/inbound", json={"to": SENDERS[0], "body": "x"}) as answer:
        assert answer.status == 400
    status, answer = await text(http, "x", account_sid="AC" + "0" * 32)
    assert status == 400 and "account_sid" in answer["detail"]
