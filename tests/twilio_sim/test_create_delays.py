"""A caller dying inside the create call: before Twilio recorded it, or after.

``create_accept_delay_ms`` holds a create before recording it (a caller gone by then leaves
no message); ``create_delay_ms`` holds the answer after recording it (the message exists
whatever the caller does). ``GET /_sim/stats`` shows the held calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_sim.factories import ACCOUNT_SID, SERVICE_SID, basic_auth
from twilio_sim import TwilioSimulator

TO = "+14155550199"
PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition``; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s")
        await asyncio.sleep(0.005)


async def get_stats(sim: TwilioSimulator) -> dict[str, int]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim.base_url}/_sim/stats") as resp,
    ):
        assert resp.status == 200
        stats: dict[str, int] = await resp.json()
        return stats


async def configure(sim: TwilioSimulator, patch: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.base_url}/_sim/config", json=patch) as resp,
    ):
        assert resp.status == 200


async def post_then_hang_up(sim: TwilioSimulator) -> None:
    """Send a whole create call, wait until the simulator holds it, close the connection."""
    host, port = sim.base_url.removeprefix("http://").rsplit(":", 1)
    body = urlencode({"To": TO, "Body": "hi", "MessagingServiceSid": SERVICE_SID}).encode()
    headers = {
        "Host": f"{host}:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
        **basic_auth(),
    }
    head = f"POST {PATH} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    await wait_until(lambda: sim.stats()["creates_in_progress"] == 1)
    writer.close()
    await writer.wait_closed()


async def test_a_caller_gone_during_the_accept_delay_leaves_no_message(
    sim: TwilioSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    await configure(sim, {"create_accept_delay_ms": 300})
    with caplog.at_level(logging.INFO, logger="twilio_sim"):
        await post_then_hang_up(sim)
        assert await get_stats(sim) == {
            "creates_in_progress": 1,
            "creates_received": 1,
            "creates_dropped": 0,
        }
        await wait_until(lambda: sim.stats()["creates_in_progress"] == 0)
    assert await get_stats(sim) == {
        "creates_in_progress": 0,
        "creates_received": 1,
        "creates_dropped": 1,
    }
    assert sim.messages == []
    assert any("no message created" in r.getMessage() for r in caplog.records)


async def test_a_caller_that_times_out_during_the_accept_delay_leaves_no_message(
    sim: TwilioSimulator, async_client: Client
) -> None:
    sim.configure(create_accept_delay_ms=500)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await async_client.messages.create_async(
                to=TO, body="hi", messaging_service_sid=SERVICE_SID
            )
    await wait_until(lambda: sim.stats()["creates_in_progress"] == 0)
    assert sim.stats() == {"creates_in_progress": 0, "creates_received": 1, "creates_dropped": 1}
    assert sim.messages == []


async def test_a_caller_that_waits_out_the_accept_delay_gets_its_message(
    sim: TwilioSimulator, async_client: Client
) -> None:
    sim.configure(create_accept_delay_ms=150)
    created = await async_client.messages.create_async(
        to=TO, body="hi", messaging_service_sid=SERVICE_SID
    )
    assert [m.sid for m in sim.messages] == [created.sid]
    assert sim.stats() == {"creates_in_progress": 0, "creates_received": 1, "creates_dropped": 0}


async def test_a_caller_gone_during_the_create_delay_still_created_its_message(
    sim: TwilioSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.configure(create_delay_ms=300)
    with caplog.at_level(logging.INFO, logger="twilio_sim"):
        await post_then_hang_up(sim)
        assert len(sim.messages) == 1  # recorded before the pause
        await wait_until(lambda: sim.stats()["creates_in_progress"] == 0)
    assert sim.stats() == {"creates_in_progress": 0, "creates_received": 1, "creates_dropped": 0}
    assert any("disconnected before the answer" in r.getMessage() for r in caplog.records)


async def test_reset_zeroes_the_counters_but_not_the_held_calls(sim: TwilioSimulator) -> None:
    sim.configure(create_accept_delay_ms=300)
    await post_then_hang_up(sim)
    sim.reset()
    assert sim.stats() == {"creates_in_progress": 1, "creates_received": 0, "creates_dropped": 0}
    await wait_until(lambda: sim.stats()["creates_in_progress"] == 0)
    assert sim.stats()["creates_dropped"] == 1


async def test_unauthenticated_creates_are_not_counted(sim: TwilioSimulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.base_url}{PATH}", data={"To": TO, "Body": "x"}) as resp,
    ):
        assert resp.status == 401
    assert await get_stats(sim) == {
        "creates_in_progress": 0,
        "creates_received": 0,
        "creates_dropped": 0,
    }


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503)])
async def test_create_errors_answer_a_5xx_for_that_number_and_create_nothing(
    sim: TwilioSimulator, async_client: Client, status: int, code: int
) -> None:
    """``create_errors``: Twilio failing for one number (the others are sent)."""
    sim.configure(create_errors={TO: status})
    with pytest.raises(TwilioRestException) as failed:
        await async_client.messages.create_async(
            to=TO, body="hi", messaging_service_sid=SERVICE_SID
        )
    assert (failed.value.status, failed.value.code) == (status, code)
    other = await async_client.messages.create_async(
        to="+14155550198", body="hi", messaging_service_sid=SERVICE_SID
    )
    assert [m.sid for m in sim.messages] == [other.sid]
    sim.configure(create_errors={})
    await async_client.messages.create_async(to=TO, body="hi", messaging_service_sid=SERVICE_SID)
    assert len(sim.messages_to(TO)) == 1
