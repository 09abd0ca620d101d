"""A broker that stops answering while a send is being published (its own broker: SIGSTOP)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack, start_local_broker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, int]]:
    """A stack on a broker of its own, so that stopping that broker disturbs nobody."""
    bootstrap, broker = start_local_broker(tmp_path_factory.mktemp("stall-kafka"))
    try:
        pid = broker.recorded_pid()
        assert pid is not None
        running = Stack(
            tmp_path_factory.mktemp("stall"), bootstrap, kafka_timeout_seconds="2",
            send_timeout_seconds="6",
        )  # fmt: skip
        with running.running():
            yield running, pid
    finally:
        broker.stop()


async def test_a_send_kafka_never_confirms_answers_504_not_503(
    stalled: tuple[Stack, int],
) -> None:
    """Kafka did not confirm the request, so it may still be written and sent: the answer
    is 504 (retry with the same key), not 503 ("nothing happened, retry freely"), which a
    client without a key would take as licence to send a second copy."""
    stack, broker_pid = stalled
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        body = {"use_case_id": use_case["id"], "to_phone_number": unique_number(), "message": "x"}
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            answer = await client.post("/v1/sms/", json=body)
            waited = time.monotonic() - started
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        assert answer.status_code == 504, answer.text
        assert answer.json()["code"] == "worker_timeout"
        assert "may still be sent" in answer.json()["detail"]
        assert waited < 30  # bounded, never a hang
        await asyncio.sleep(0)


async def test_an_ingress_cut_off_from_kafka_refuses_managed_keys_until_it_is_back(
    stalled: tuple[Stack, int],
) -> None:
    """It could have missed a revocation: managed keys get 503 once its view is no longer
    confirmed current; bootstrap keys, which need no configuration, keep reading."""
    stack, broker_pid = stalled
    async with stack.admin() as admin:
        made = await admin.post(
            "/v1/admin/api-keys", json={"name": "cut off", "role": "sms", "use_case_ids": None}
        )
    assert made.status_code == 201, made.text
    async with stack.client(made.json()["key"]) as managed, stack.client() as bootstrap:
        assert (await managed.get("/v1/sms/")).status_code == 200

        async def managed_answers(status: int) -> bool:
            return (await managed.get("/v1/sms/")).status_code == status

        os.kill(broker_pid, signal.SIGSTOP)
        try:
            await wait_until_async(lambda: managed_answers(503), 15.0, "managed keys refused")
            refused = await managed.get("/v1/sms/")
            assert (
                refused.json()["code"] == "service_unavailable" and "Retry-After" in refused.headers
            )
            assert (await bootstrap.get("/v1/sms/")).status_code == 200
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        await wait_until_async(lambda: managed_answers(200), 30.0, "managed keys accepted again")


async def test_an_inbound_message_kafka_does_not_confirm_answers_503_then_its_retry_lands(
    stalled: tuple[Stack, int],
) -> None:
    """Twilio retries a webhook answered 503: the retry is stored, once."""
    from tests.integration.test_inbound import inbound_form, listed, post_signed

    stack, broker_pid = stalled
    async with stack.admin() as admin:
        await create_use_case(admin)
    person = unique_number()
    form = inbound_form(person, "Running late")
    os.kill(broker_pid, signal.SIGSTOP)
    try:
        answer = await post_signed(stack, form)
    finally:
        os.kill(broker_pid, signal.SIGCONT)
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "service_unavailable"

    async def retry() -> bool:  # as Twilio does, until the broker confirms again
        return (await post_signed(stack, form)).status_code == 200

    await wait_until_async(retry, 30, "the retried webhook to be stored", interval_s=0.5)
    (item,) = await listed(stack, 1, from_number=person)
    assert item["message_sid"] == form["MessageSid"]
