"""The sender's answer when a request's in-flight marker could not be written to Kafka."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from feeds.config import ConfigView
from schemas.config import ConfigChange, Subaccount
from schemas.events import SendRequest, SendTarget
from schemas.settings import Settings
from streams.sending.provider import TwilioGateway
from streams.sending.sender import Sender
from tests.streams.factories import (
    TEST_BOX,
    create_brand,
    create_sender,
    create_use_case,
    sealed,
)
from tests.twilio_sim.factories import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID
from twilio_sim import TwilioSimulator

USE_CASE = create_use_case(account_sid=ACCOUNT_SID, messaging_service_sid=SERVICE_SID)
#: The end of a marker's reconciliation window, for requests whose Twilio answer arrives.
LATER = datetime.now(UTC) + timedelta(minutes=1)


def loaded_view() -> ConfigView:
    view = ConfigView(TEST_BOX)
    now = datetime.now(UTC)
    account = Subaccount(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, created_at=now, updated_at=now
    )
    for offset, entity in enumerate([sealed(account), create_brand(), USE_CASE, create_sender()]):
        view.apply("k", ConfigChange(entity=entity).model_dump_json().encode(), offset)
    view.caught_up.set()
    return view


def request_to(to: str) -> SendRequest:
    return SendRequest(
        request_id=uuid.uuid4(),
        body_hash=hashlib.sha256(to.encode()).hexdigest(),
        use_case_id=USE_CASE.id,
        to_phone_number=to,
        message="hello",
        received_at=datetime.now(UTC),
        reply_topic="replies",
        correlation_id=uuid.uuid4().hex,
    )


@pytest.fixture
async def sender(sim: TwilioSimulator) -> AsyncIterator[Sender]:
    settings = Settings(
        twilio_api_base_url=sim.base_url, twilio_lookup_base_url=sim.base_url,
        line_type_lookup="off",
    )  # type: ignore[call-arg]  # fmt: skip
    gateway = TwilioGateway(settings)
    yield Sender(SimpleNamespace(config=loaded_view(), settings=settings), gateway)
    await gateway.close()


class Marker:
    """An in-flight marker whose write is done (or failed) at once; records the targets it
    was asked to name."""

    def __init__(self, error: BaseException | None) -> None:
        self.error, self.targets = error, list[SendTarget]()

    def written_for(self, target: SendTarget) -> asyncio.Future[object]:
        self.targets.append(target)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.error is None:
            future.set_result(None)
        else:
            future.set_exception(self.error)
        return future


def done(error: BaseException | None = None) -> Marker:
    return Marker(error)


async def test_a_failed_marker_write_answers_503_and_calls_nobody(
    sim: TwilioSimulator, sender: Sender
) -> None:
    """Twilio was never called: the request is not "interrupted" (which would refuse its
    retries for a day), only not taken, so a retry is sent normally."""
    request = request_to("+14155550161")
    decided = await sender.decide(
        request, done(TimeoutError("no ack")), deadline=time.time() + 10, reconcilable_until=LATER
    )
    outcome = decided.outcome
    assert (outcome.status_code, outcome.in_flight) == (503, False)
    assert outcome.error is not None and outcome.error.code == "service_unavailable"
    assert sim.messages_to(request.to_phone_number) == []


async def test_a_request_whose_marker_was_written_is_sent(
    sim: TwilioSimulator, sender: Sender
) -> None:
    request = request_to("+14155550162")
    marker = done()
    decided = await sender.decide(
        request, marker, deadline=time.time() + 10, reconcilable_until=LATER
    )
    outcome = decided.outcome
    assert outcome.status_code == 201 and outcome.record is not None
    # The marker names where the create call went, for reconciliation to look there.
    assert marker.targets == [SendTarget(
        account_sid=ACCOUNT_SID, messaging_service_sid=SERVICE_SID, to="+14155550162"
    )]  # fmt: skip
    assert [m.sid for m in sim.messages_to(request.to_phone_number)] == [outcome.record.message_sid]


async def test_a_lost_answer_is_503_in_flight_and_says_when_reconciliation_settles_it(
    sim: TwilioSimulator, sender: Sender
) -> None:
    """Twilio created the message but its answer came after the request's deadline: the
    request stays in flight (never sent again), and Retry-After points at the end of its
    marker's window, when a retry gets the answer — not a fixed minute, which outlasted a
    client that retries for one (CI: test_kill_9_during_a_stream_of_sends)."""
    sim.configure(create_delay_ms=3000)
    request = request_to("+14155550163")
    until = datetime.now(UTC) + timedelta(seconds=12)
    decided = await sender.decide(
        request, done(), deadline=time.time() + 1.0, reconcilable_until=until
    )
    outcome = decided.outcome
    assert (outcome.status_code, outcome.in_flight) == (503, True)
    assert outcome.error is not None and outcome.error.code == "provider_unavailable"
    assert outcome.retry_after is not None and 10 <= outcome.retry_after <= 12
    await sim.wait_idle()
    assert len(sim.messages_to(request.to_phone_number)) == 1  # created once, answer lost
