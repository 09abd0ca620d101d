"""twilio's AsyncTwilioHttpClient against the simulator: the same base-URL mechanism works."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_sim.factories import SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator


async def test_create_fetch_and_callbacks(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    created = await async_client.messages.create_async(
        to="+12125550142",
        body="Hello",
        messaging_service_sid=SERVICE_SID,
        status_callback=receiver.url(),
    )
    assert (created.status, created.from_) == ("accepted", None)
    await sim.wait_idle()
    fetched = await async_client.messages(created.sid).fetch_async()
    assert (fetched.status, fetched.from_) == ("delivered", "+12125550100")
    assert receiver.statuses(created.sid) == ["queued", "sent", "delivered"]


async def test_errors_raise_twilio_rest_exception(async_client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await async_client.messages.create_async(
            to="+15005550004", body="x", messaging_service_sid=SERVICE_SID
        )
    assert (caught.value.status, caught.value.code) == (400, 21610)


async def test_lookup(sim: TwilioSimulator, async_client: Client) -> None:
    sim.configure(landline_numbers=["+14155550124"])
    result = await async_client.lookups.v2.phone_numbers("+14155550124").fetch_async(
        fields="line_type_intelligence"
    )
    assert result.valid is True
    assert result.line_type_intelligence["type"] == "landline"
