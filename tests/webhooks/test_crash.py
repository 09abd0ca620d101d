"""A worker killed (SIGKILL) while deliveries wait for a retry resumes them from its
``rocksdb://`` lanes table: every version of every record reaches the receiver (at least
once), none is lost."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslane.processes import wait_until_async
from tests.factories import create_use_case, unique_number
from tests.harness import Stack
from tests.integration.test_send import send
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import SETTINGS, in_force, register, statuses_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("webhooks-crash")
    settings = {**SETTINGS, "table_store": "rocksdb://", "webhook_retry_every_seconds": "2"}
    with Stack(root, kafka_bootstrap, **settings).running() as running:
        yield running


async def versions_on_topic(stack: Stack, record_ids: list[str]) -> dict[str, set[int]]:
    versions: dict[str, set[int]] = defaultdict(set)
    for record in await stack.read_topic("sms.status"):
        value = json.loads(record.value)
        if value["id"] in record_ids:
            versions[value["id"]].add(value["version"])
    return versions


async def test_a_killed_worker_resumes_pending_deliveries(stack: Stack) -> None:
    receiver = await Receiver(always=503).start()
    try:
        async with stack.admin() as admin, stack.client() as client:
            use_case = await create_use_case(admin)
            await register(admin, receiver.url, events=["sms.status"])
            await in_force()
            record_ids = []
            for _ in range(3):
                answer = await send(client, use_case["id"], unique_number())
                assert answer.status_code == 201, answer.text
                record_ids.append(answer.json()["id"])

            async def all_tried() -> bool:
                tried = {d.body["data"]["id"] for d in receiver.received}
                return tried >= set(record_ids)

            await wait_until_async(all_tried, 30, "a failed attempt for every record")
            await asyncio.to_thread(stack.worker.stop, signal.SIGKILL)
            receiver.always = None  # the receiver is back while the worker is down
            await asyncio.to_thread(stack.restart_worker)
            for record_id in record_ids:
                await statuses_of(receiver, record_id, "delivered")
        expected = await versions_on_topic(stack, record_ids)
        got: dict[str, set[int]] = defaultdict(set)
        for delivery in receiver.events("sms.status"):
            got[delivery.body["data"]["id"]].add(delivery.body["data"]["version"])
        assert got == expected, "every version delivered, none lost"
    finally:
        await receiver.stop()
