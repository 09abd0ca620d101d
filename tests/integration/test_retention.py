"""Bounded state: terminal records leave the hot table; late and unknown callbacks go."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas.records import SmsStatus
from tests.harness import SENDERS, Stack
from tests.integration.test_lifecycle import (
    WEBHOOK,
    callback_params,
    send_with_scenario,
    signed,
    wait_for,
)

pytestmark = pytest.mark.integration

TERMINAL = {status.value for status in SmsStatus if status.terminal}


@pytest.fixture(scope="module")
def short_lived(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose records are evicted 2 s after they end (4 s after their last change when
    they never end), and early callbacks held 2 s."""
    running = Stack(
        tmp_path_factory.mktemp("retention"),
        kafka_bootstrap,
        record_retention_days=str(2 / 86400),
        stale_record_days=str(4 / 86400),
        early_callback_hold_seconds="2",
    )
    with running.running():
        yield running


async def tombstones(stack: Stack, table: str, key: str, timeout_s: float) -> bool:
    """True once the table's changelog holds a tombstone (deletion) for ``key``."""
    consumer = AIOKafkaConsumer(
        f"{stack.prefix}smslane-{table}-changelog",
        bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    if message.key == key.encode() and message.value is None:
                        return True
        return False
    finally:
        await consumer.stop()


async def status_versions(stack: Stack, record_id: str) -> list[int]:
    return [
        int(record.value.split(b'"version":')[1].split(b"}")[0])
        for record in await stack.read_topic("sms.status")
        if record.key == record_id.encode()
    ]


async def test_terminal_record_is_evicted_and_late_callbacks_are_dropped(
    short_lived: Stack,
) -> None:
    stack = short_lived
    sent = await send_with_scenario(stack, "delivered")
    delivered = await wait_for(stack, sent["id"], lambda r: r["status"] == "delivered")
    assert await tombstones(stack, "record_by_sid", sent["message_sid"], timeout_s=20)
    versions = await status_versions(stack, sent["id"])
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        params = callback_params(sent["message_sid"], "sent", From=SENDERS[1])
        late = await http.post(WEBHOOK, data=params, headers=signed(stack, params))
        assert late.status_code == 204
    # Unknown to the worker now: held, then dropped when the hold expires.
    assert await tombstones(stack, "held_by_sid", sent["message_sid"], timeout_s=20)
    assert await status_versions(stack, sent["id"]) == versions
    assert (await wait_for(stack, sent["id"], lambda r: True)) == delivered


async def test_a_record_that_never_ends_is_evicted_once_stale(short_lived: Stack) -> None:
    stack = short_lived
    sent = await send_with_scenario(stack, "none")  # Twilio never reports on it
    assert (await wait_for(stack, sent["id"], lambda r: True))["status"] not in TERMINAL
    assert await tombstones(stack, "record_by_sid", sent["message_sid"], timeout_s=30)
    versions = await status_versions(stack, sent["id"])
    assert versions  # created, at least
    # The store keeps the record as last known; a receipt that comes after all is dropped.
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        params = callback_params(sent["message_sid"], "delivered")
        late = await http.post(WEBHOOK, data=params, headers=signed(stack, params))
        assert late.status_code == 204
    assert await tombstones(stack, "held_by_sid", sent["message_sid"], timeout_s=20)
    assert await status_versions(stack, sent["id"]) == versions
    assert (await wait_for(stack, sent["id"], lambda r: True))["status"] == sent["status"]


async def test_callback_for_a_message_never_sent_is_dropped_after_the_hold(
    short_lived: Stack,
) -> None:
    stack = short_lived
    sid = "SM" + uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        params = callback_params(sid, "delivered")
        answer = await http.post(WEBHOOK, data=params, headers=signed(stack, params))
        assert answer.status_code == 204
    assert await tombstones(stack, "held_by_sid", sid, timeout_s=20)
    await asyncio.sleep(0.5)
    assert stack.worker.alive()
