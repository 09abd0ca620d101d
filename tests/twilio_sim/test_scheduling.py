"""Scheduled messages, cancel and validity periods, through twilio's own client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_sim.factories import SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator
from twilio_sim.scheduling import due_at

TO = "+12125550142"


async def settled(sim: TwilioSimulator, seconds: float) -> None:
    """Move the simulator's clock and wait for the callbacks that became due."""
    await sim.advance(seconds)
    await sim.wait_idle()


async def schedule(client: Client, receiver: CallbackReceiver, ahead: timedelta) -> str:
    created = await client.messages.create_async(
        to=TO, body="Reminder", messaging_service_sid=SERVICE_SID,
        status_callback=receiver.url(), schedule_type="fixed",
        send_at=datetime.now(UTC) + ahead,
    )  # fmt: skip
    assert created.status == "scheduled"
    return str(created.sid)


async def test_a_scheduled_message_waits_for_its_time(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sid = await schedule(async_client, receiver, timedelta(hours=2))
    await settled(sim, 3600)
    assert (await async_client.messages(sid).fetch_async()).status == "scheduled"
    assert receiver.statuses(sid) == []
    await settled(sim, 3600)
    assert (await async_client.messages(sid).fetch_async()).status == "delivered"
    assert receiver.statuses(sid) == ["queued", "sent", "delivered"]


async def test_the_clock_moves_over_http(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sid = await schedule(async_client, receiver, timedelta(minutes=20))
    async with aiohttp.ClientSession() as http:
        moved = await http.post(f"{sim.base_url}/_sim/clock", json={"advance_s": 1500})
        assert moved.status == 200 and (await moved.json())["advanced_s"] == 1500
        refused = await http.post(f"{sim.base_url}/_sim/clock", json={"advance_s": -1})
        assert refused.status == 400
    await sim.wait_idle()
    assert receiver.statuses(sid) == ["queued", "sent", "delivered"]


def test_time_scale_shortens_the_waits() -> None:
    assert due_at(1000.0, 3600.0, 1.0) == 4600.0
    assert due_at(1000.0, 3600.0, 60.0) == 1060.0
    assert due_at(1000.0, -5.0, 60.0) == 1000.0


async def test_with_time_scale_a_scheduled_message_is_due_sooner(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(time_scale=3600.0)  # an hour is a second
    sid = await schedule(async_client, receiver, timedelta(hours=2))
    await settled(sim, 2.5)  # 2.5 s of the clock are 2.5 hours of the wait
    assert receiver.statuses(sid) == ["queued", "sent", "delivered"]


@pytest.mark.parametrize(
    ("extra", "code"),
    [({"send_at": datetime.now(UTC) + timedelta(minutes=10)}, 35114),
     ({"send_at": datetime.now(UTC) + timedelta(days=36)}, 35114),
     ({"send_at": datetime.now(UTC) + timedelta(days=1), "schedule_type": "later"}, 35111)],
)  # fmt: skip
async def test_sendat_outside_the_window_is_refused(
    sim: TwilioSimulator, async_client: Client, extra: dict[str, object], code: int
) -> None:
    extra.setdefault("schedule_type", "fixed")
    with pytest.raises(TwilioRestException) as caught:
        await async_client.messages.create_async(
            to=TO, body="x", messaging_service_sid=SERVICE_SID, **extra
        )
    assert caught.value.code == code and sim.messages == []


async def test_cancel_a_scheduled_message(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sid = await schedule(async_client, receiver, timedelta(days=1))
    canceled = await async_client.messages(sid).update_async(status="canceled")
    assert canceled.status == "canceled"
    await settled(sim, 2 * 86400)
    assert receiver.statuses(sid) == ["canceled"]
    assert (await async_client.messages(sid).fetch_async()).status == "canceled"


async def test_cancel_of_a_sent_message_is_30409(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sid = await schedule(async_client, receiver, timedelta(minutes=16))
    await settled(sim, 1000)
    with pytest.raises(TwilioRestException) as caught:
        await async_client.messages(sid).update_async(status="canceled")
    assert caught.value.code == 30409
    with pytest.raises(TwilioRestException) as unknown:
        await async_client.messages("SM" + "0" * 32).update_async(status="canceled")
    assert unknown.value.status == 404


async def test_validity_period_fails_a_message_stuck_in_the_queue(
    sim: TwilioSimulator, async_client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(queued_numbers=[TO])
    created = await async_client.messages.create_async(
        to=TO, body="Code 123456", messaging_service_sid=SERVICE_SID,
        status_callback=receiver.url(), validity_period=60,
    )  # fmt: skip
    await settled(sim, 59)
    assert receiver.statuses(created.sid) == ["queued"]
    await settled(sim, 1)
    assert receiver.statuses(created.sid) == ["queued", "failed"]
    fetched = await async_client.messages(created.sid).fetch_async()
    assert (fetched.status, fetched.error_code) == ("failed", 30001)


async def test_a_bad_validity_period_is_refused(async_client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await async_client.messages.create_async(
            to=TO, body="x", messaging_service_sid=SERVICE_SID, validity_period=36001
        )
    assert caught.value.code == 21620
