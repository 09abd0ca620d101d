"""The worker's cancel steps against the simulator: canceled, 409, and a lost answer settled
by asking Twilio (at once, then as repair does) so the record and Twilio agree."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from schemas.config import Subaccount
from schemas.events import CancelRequest, RawCallback
from schemas.records import SmsRecord, SmsStatus
from schemas.settings import Settings
from streams.sending.canceling import Canceler
from streams.sending.provider import ProviderDown, ProviderRejection, TwilioGateway, TwilioMessage
from tests.streams.test_sender import USE_CASE, loaded_view
from tests.twilio_sim.factories import SERVICE_SID
from twilio_sim import TwilioSimulator

TO = "+12125550142"


class LossyGateway(TwilioGateway):
    """The real gateway, but the cancel's answer is lost (after or before Twilio acted),
    and the first ``fetch_failures`` fetches fail."""

    def __init__(self, settings: Settings, *, cancel_reaches_twilio: bool | None = None) -> None:
        super().__init__(settings)
        self.cancel_reaches_twilio = cancel_reaches_twilio
        self.fetch_failures = 0

    async def cancel_message(
        self, account: Subaccount, sid: str
    ) -> TwilioMessage | ProviderRejection:
        if self.cancel_reaches_twilio is None:
            return await super().cancel_message(account, sid)
        if self.cancel_reaches_twilio:
            await super().cancel_message(account, sid)
        raise ProviderDown("timeout", retry_after=5)

    async def fetch_message(self, account: Subaccount, sid: str) -> TwilioMessage | None:
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise ProviderDown("connection reset", retry_after=5)
        return await super().fetch_message(account, sid)


class Published:
    def __init__(self) -> None:
        self.callbacks: list[tuple[str, RawCallback]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, sid: str, raw: RawCallback) -> None:
        self.callbacks.append((sid, raw))
        self.arrived.set()

    def statuses(self) -> list[str]:
        return [raw.params["MessageStatus"] for _, raw in self.callbacks]


@pytest.fixture
def settings(sim: TwilioSimulator) -> Settings:
    return Settings(twilio_api_base_url=sim.base_url, twilio_lookup_base_url=sim.base_url)  # type: ignore[call-arg]


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[LossyGateway]:
    lossy = LossyGateway(settings)
    yield lossy
    await lossy.close()


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def canceler(gateway: TwilioGateway, published: Published) -> Canceler:
    return Canceler(loaded_view(), gateway, published, timedelta(seconds=60), sleep=no_wait)


async def scheduled(gateway: TwilioGateway) -> CancelRequest:
    account = loaded_view().subaccounts[USE_CASE.account_sid]
    client = gateway._client(account)
    message = await client.api.v2010.accounts(account.account_sid).messages.create_async(
        to=TO, body="Reminder", messaging_service_sid=SERVICE_SID, schedule_type="fixed",
        send_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    now = datetime.now(UTC)
    record = SmsRecord(
        id=uuid.uuid4(), use_case_id=USE_CASE.id, message_sid=message.sid, to_number=TO,
        body="Reminder", status=SmsStatus.SCHEDULED, created_at=now, updated_at=now,
        send_at=now + timedelta(days=1),
    )  # fmt: skip
    return CancelRequest(record=record, received_at=now, reply_topic="r", correlation_id="c")


async def test_cancel_of_a_scheduled_message(sim: TwilioSimulator, gateway: LossyGateway) -> None:
    published = Published()
    request = await scheduled(gateway)
    reply = await canceler(gateway, published).cancel(request)
    assert reply.status_code == 200 and reply.record is not None
    assert reply.record.status is SmsStatus.CANCELED and reply.record.canceled_at is not None
    assert published.statuses() == ["canceled"]
    sid, raw = published.callbacks[0]
    assert sid == request.record.message_sid
    assert raw.received_at == reply.record.canceled_at  # the lifecycle's canceled_at, too
    assert sim.message(request.record.message_sid).status == "canceled"  # type: ignore[union-attr]


async def test_cancel_of_a_sent_message_is_409_and_publishes_twilios_status(
    sim: TwilioSimulator, gateway: LossyGateway
) -> None:
    published = Published()
    request = await scheduled(gateway)
    await sim.advance(2 * 86400)
    await sim.wait_idle()
    reply = await canceler(gateway, published).cancel(request)
    assert reply.status_code == 409 and reply.error is not None
    assert reply.error.code == "not_cancelable"
    assert published.statuses() == ["delivered"]


@pytest.mark.parametrize(("reached", "status_code", "status"),
                         [(True, 200, "canceled"), (False, 503, "scheduled")])  # fmt: skip
async def test_a_lost_answer_is_settled_by_asking_twilio_at_once(
    settings: Settings, reached: bool, status_code: int, status: str
) -> None:
    gateway = LossyGateway(settings, cancel_reaches_twilio=reached)
    try:
        published = Published()
        reply = await canceler(gateway, published).cancel(await scheduled(gateway))
    finally:
        await gateway.close()
    assert reply.status_code == status_code
    assert published.statuses() == [status]
    if status_code == 503:
        assert reply.error is not None and reply.error.code == "provider_unavailable"


async def test_when_twilio_cannot_be_asked_it_is_followed_up_until_it_answers(
    settings: Settings,
) -> None:
    gateway = LossyGateway(settings, cancel_reaches_twilio=True)
    gateway.fetch_failures = 3  # the fetch at once and two follow-ups fail
    try:
        published = Published()
        cancels = canceler(gateway, published)
        reply = await cancels.cancel(await scheduled(gateway))
        assert reply.status_code == 503 and published.statuses() == []
        await asyncio.wait_for(published.arrived.wait(), timeout=10)
    finally:
        await gateway.close()
    assert published.statuses() == ["canceled"]
