"""The Twilio gateway's retries honour the request's deadline (against the simulator)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from schemas.config import Subaccount
from schemas.settings import Settings
from streams.sending.provider import ProviderDown, ProviderMaybeSent, TwilioGateway
from tests.twilio_sim.factories import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID
from twilio_sim import TwilioSimulator

NOW = datetime.now(UTC)
ACCOUNT = Subaccount(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, created_at=NOW, updated_at=NOW)


@pytest.fixture
async def gateway(sim: TwilioSimulator) -> AsyncIterator[TwilioGateway]:
    settings = Settings(
        twilio_api_base_url=sim.base_url,
        twilio_lookup_base_url=sim.base_url,
        provider_timeout_seconds=5.0,
        provider_max_attempts=4,
    )  # type: ignore[call-arg]
    running = TwilioGateway(settings)
    yield running
    await running.close()


async def test_no_create_call_once_the_deadline_has_passed(
    sim: TwilioSimulator, gateway: TwilioGateway
) -> None:
    """The client has had its 504 by then: a create now could double its retry."""
    to = "+14155550111"
    with pytest.raises(ProviderDown) as raised:
        await gateway.create_message(
            ACCOUNT, SERVICE_SID, to, "late", deadline=time.monotonic() - 0.1
        )
    assert not isinstance(raised.value, ProviderMaybeSent)
    assert sim.messages_to(to) == []


async def test_a_create_attempt_is_cut_at_the_deadline_not_at_the_call_timeout(
    sim: TwilioSimulator, gateway: TwilioGateway
) -> None:
    """Twilio answers after 3 s, the call timeout is 5 s, the deadline 0.5 s away: the
    attempt gives up at the deadline (outcome unknown), instead of taking Twilio's answer
    after the ingress has stopped waiting."""
    sim.configure(create_delay_ms=3000)
    with pytest.raises(ProviderMaybeSent):
        await gateway.create_message(
            ACCOUNT, SERVICE_SID, "+14155550112", "slow", deadline=time.monotonic() + 0.5
        )
