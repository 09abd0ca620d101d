"""Lookup v2 through twilio's Client: mobile by default, configurable landline/VoIP/invalid."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_sim.factories import ACCOUNT_SID, basic_auth
from twilio_sim import TwilioSimulator

MOBILE = "+14155550123"
LANDLINE = "+14155550124"
VOIP = "+14155550125"
CONFIGURED_INVALID = "+14155550126"


async def fetch(client: Client, number: str, fields: str = "line_type_intelligence") -> Any:
    context = client.lookups.v2.phone_numbers(number)
    return await asyncio.to_thread(context.fetch, fields=fields)


async def test_default_is_a_valid_mobile(client: Client) -> None:
    result = await fetch(client, MOBILE)
    assert result.valid is True
    assert result.validation_errors is None
    assert (result.calling_country_code, result.country_code) == ("1", "US")
    assert (result.phone_number, result.national_format) == (MOBILE, "(415) 555-0123")
    assert result.caller_name is None
    assert result.sim_swap is None
    assert result.line_type_intelligence == {
        "carrier_name": "T-Mobile USA, Inc.",
        "error_code": None,
        "mobile_country_code": "310",
        "mobile_network_code": "260",
        "type": "mobile",
    }
    assert result.url.endswith(f"/v2/PhoneNumbers/{MOBILE}")


async def test_configured_line_types_and_invalid_numbers(
    sim: TwilioSimulator, client: Client
) -> None:
    sim.configure(
        landline_numbers=[LANDLINE], voip_numbers=[VOIP], invalid_numbers=[CONFIGURED_INVALID]
    )
    assert (await fetch(client, LANDLINE)).line_type_intelligence["type"] == "landline"
    assert (await fetch(client, VOIP)).line_type_intelligence["type"] == "nonFixedVoip"
    invalid = await fetch(client, CONFIGURED_INVALID)
    assert invalid.valid is False
    assert invalid.validation_errors == ["INVALID_BUT_POSSIBLE"]
    assert invalid.line_type_intelligence is None
    assert invalid.country_code is None


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+1415555012", "TOO_SHORT"), ("+15551234567", "INVALID_BUT_POSSIBLE")],
)
async def test_numbers_phonenumbers_rejects_are_invalid(
    client: Client, number: str, reason: str
) -> None:
    result = await fetch(client, number)
    assert (result.valid, result.validation_errors, result.phone_number) == (
        False,
        [reason],
        number,
    )


async def test_without_fields_no_line_type_is_returned(client: Client) -> None:
    result = await fetch(client, MOBILE, fields="")
    assert result.valid is True
    assert result.line_type_intelligence is None


async def test_national_format_with_country_code(sim: TwilioSimulator) -> None:
    url = f"{sim.base_url}/v2/PhoneNumbers/(415)%20555-0123?CountryCode=US"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=basic_auth()) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["phone_number"] == MOBILE


async def test_lookup_needs_credentials(sim: TwilioSimulator) -> None:
    client = Client(ACCOUNT_SID, "wrong")
    client.lookups.base_url = sim.base_url
    with pytest.raises(TwilioRestException) as caught:
        await fetch(client, MOBILE)
    assert (caught.value.status, caught.value.code) == (401, 20003)
    client.http_client.session.close()


async def test_runtime_configuration_over_http(sim: TwilioSimulator, client: Client) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.base_url}/_sim/config", json={"landline_numbers": [MOBILE]}) as resp,
    ):
        assert resp.status == 200
    assert (await fetch(client, MOBILE)).line_type_intelligence["type"] == "landline"
