"""Status callbacks: signature, fields, scenario order, retries, concurrency, early callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from smslane.processes import free_port
from tests.twilio_sim.factories import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import Scenario, TwilioSimulator

TO = "+14155550199"


async def send(client: Client, callback: str, to: str = TO, body: str = "Hi there") -> Any:
    return await asyncio.to_thread(
        client.messages.create,
        to=to,
        body=body,
        messaging_service_sid=SERVICE_SID,
        status_callback=callback,
    )


async def test_callbacks_are_signed_as_twilio_signs_them(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    message = await send(client, receiver.url("/hooks/status?tenant=42&x=a%20b"))
    await sim.wait_idle()
    validator = RequestValidator(AUTH_TOKEN)
    assert receiver.statuses() == ["queued", "sent", "delivered"]
    for received in receiver.received:
        signature = received.headers["X-Twilio-Signature"]
        assert validator.validate(received.url, received.form, signature)
        assert not validator.validate(received.url, {**received.form, "To": "+1999"}, signature)
        assert not RequestValidator("other-token").validate(received.url, received.form, signature)
    form = receiver.received[-1].form
    assert form == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+14155550100",
        "MessageSid": message.sid,
        "MessageStatus": "delivered",
        "MessagingServiceSid": SERVICE_SID,
        "NumSegments": "1",
        "SmsSid": message.sid,
        "SmsStatus": "delivered",
        "To": TO,
    }
    tokens = {r.headers["I-Twilio-Idempotency-Token"] for r in receiver.received}
    assert len(tokens) == 3


async def test_connection_override_fragment_is_stripped_and_rc_honoured(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    receiver.failures = [503] * 3  # the fourth attempt (third retry) succeeds
    message = await send(client, receiver.url("/status?a=1#rc=3&rp=all"))
    await sim.wait_idle()
    record = sim.message(message.sid)
    assert record is not None
    first = record.callbacks[0]
    assert first.url == receiver.url("/status?a=1")
    assert (first.attempts, first.outcome) == (4, "delivered")
    validator = RequestValidator(AUTH_TOKEN)
    received = receiver.received[-1]
    assert validator.validate(received.url, received.form, received.headers["X-Twilio-Signature"])


async def test_sign_url_fragment_signs_over_the_status_callback_as_given(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(sign_url_fragment=True)
    await send(client, receiver.url("/status?a=1#rc=3&rp=all"))
    await sim.wait_idle()
    validator = RequestValidator(AUTH_TOKEN)
    assert len(receiver.received) == 3
    for received in receiver.received:
        assert received.url == receiver.url("/status?a=1")  # requested without the fragment
        signature = received.headers["X-Twilio-Signature"]
        assert validator.validate(f"{received.url}#rc=3&rp=all", received.form, signature)
        assert not validator.validate(received.url, received.form, signature)


@pytest.mark.parametrize(
    ("scenario", "expected", "error_codes"),
    [
        (Scenario.DELIVERED, ["queued", "sent", "delivered"], [None, None, None]),
        (Scenario.SENT_ONLY, ["queued", "sent"], [None, None]),
        (Scenario.UNDELIVERED, ["queued", "sent", "undelivered"], [None, None, "30003"]),
        (Scenario.FAILED, ["queued", "failed"], [None, "30007"]),
        (
            Scenario.DUPLICATES,
            ["queued", "queued", "sent", "sent", "delivered", "delivered"],
            [None] * 6,
        ),
        (Scenario.OUT_OF_ORDER, ["queued", "delivered", "sent"], [None, None, None]),
        (Scenario.EARLY, ["queued", "sent", "delivered"], [None, None, None]),
        (Scenario.NONE, [], []),
    ],
)
async def test_each_scenario_sends_its_callbacks_in_order(
    sim: TwilioSimulator,
    client: Client,
    receiver: CallbackReceiver,
    scenario: Scenario,
    expected: list[str],
    error_codes: list[str | None],
) -> None:
    sim.configure(scenarios={TO: scenario.value})
    message = await send(client, receiver.url())
    await sim.wait_idle()
    assert receiver.statuses(message.sid) == expected
    assert [r.form.get("ErrorCode") for r in receiver.received] == error_codes
    final = {"sent_only": "sent", "undelivered": "undelivered", "failed": "failed"}
    record = sim.message(message.sid)
    assert record is not None
    assert record.status == final.get(scenario.value, "delivered")


async def test_early_callback_arrives_before_the_create_call_answers(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(callback_delay_ms=200, scenarios={TO: "early"})
    await send(client, receiver.url())
    assert receiver.statuses() == ["queued"]
    sim.configure(scenarios={TO: "delivered"})
    await send(client, receiver.url())
    assert receiver.statuses() == ["queued"]  # the ordinary scenario has not called yet
    await sim.wait_idle()
    assert len(receiver.received) == 6


async def test_a_target_that_is_down_is_retried_a_bounded_number_of_times(
    sim: TwilioSimulator, client: Client
) -> None:
    message = await send(client, f"http://127.0.0.1:{free_port()}/status")
    await sim.wait_idle()
    record = sim.message(message.sid)
    assert record is not None
    assert [(c.status, c.attempts, c.outcome) for c in record.callbacks] == [
        ("queued", 3, "failed"),
        ("sent", 3, "failed"),
        ("delivered", 3, "failed"),
    ]
    assert record.callbacks[0].error is not None
    assert record.status == "delivered"  # the message itself went through
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/_sim/health") as resp,
    ):
        assert resp.status == 200


async def test_rc_override_can_turn_retries_off(sim: TwilioSimulator, client: Client) -> None:
    sim.configure(scenarios={TO: "failed"})
    message = await send(client, f"http://127.0.0.1:{free_port()}/status#rc=0")
    await sim.wait_idle()
    record = sim.message(message.sid)
    assert record is not None
    assert [(c.attempts, c.outcome) for c in record.callbacks] == [(1, "failed")] * 2


async def test_server_errors_are_retried_client_errors_are_not(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    receiver.failures = [500, 502, 404]
    message = await send(client, receiver.url())
    await sim.wait_idle()
    record = sim.message(message.sid)
    assert record is not None
    assert [(c.attempts, c.outcome, c.http_status) for c in record.callbacks] == [
        (3, "rejected", 404),  # 500, 502, then 404: not retried again
        (1, "delivered", 204),
        (1, "delivered", 204),
    ]


async def test_slow_target_times_out(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(callback_timeout_s=0.05, callback_retries=0, scenarios={TO: "failed"})
    receiver.delay_s = 0.3
    message = await send(client, receiver.url())
    await sim.wait_idle()
    record = sim.message(message.sid)
    assert record is not None
    assert [(c.outcome, c.error) for c in record.callbacks] == [("failed", "timeout")] * 2


async def test_concurrency_is_bounded_and_each_message_stays_in_order(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    sim.configure(callback_max_concurrency=2)
    receiver.delay_s = 0.01
    sids = [
        (await send(client, receiver.url(), to=f"+1415555{n:04d}")).sid for n in range(200, 206)
    ]
    await sim.wait_idle()
    assert receiver.max_in_flight <= 2
    for sid in sids:
        assert receiver.statuses(sid) == ["queued", "sent", "delivered"]


async def test_num_segments_and_sticky_sender_in_callbacks(
    sim: TwilioSimulator, client: Client, receiver: CallbackReceiver
) -> None:
    to = "+13125550123"  # no 312 sender: any US number, then sticky
    first = await send(client, receiver.url(), to=to, body="ж" * 71)
    second = await send(client, receiver.url(), to=to, body="a" * 161)
    await sim.wait_idle()
    by_sid = {r.form["MessageSid"]: r.form for r in receiver.received}
    assert by_sid[first.sid]["NumSegments"] == "2"
    assert by_sid[second.sid]["NumSegments"] == "2"
    assert by_sid[first.sid]["From"] == by_sid[second.sid]["From"]
    assert by_sid[first.sid]["From"].startswith("+1")
