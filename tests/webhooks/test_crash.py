"""A worker with ``rocksdb://`` tables and its own trusted CA: killed (SIGKILL) while
deliveries wait for a retry, it resumes them from its lanes table (every version of every
record reaches the receiver at least once, none is lost); it delivers over TLS to a receiver
whose certificate that CA signed (``SSL_CERT_FILE``)."""

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
from tests.webhooks.tls import Certificates, make_certificates

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("webhooks-crash")
    settings = {**SETTINGS, "table_store": "rocksdb://", "webhook_retry_every_seconds": "2"}
    made = Stack(root, kafka_bootstrap, **settings)
    made.worker.env["SSL_CERT_FILE"] = str(make_certificates(root).ca_file)
    with made.running() as running:
        yield running


async def test_deliveries_go_over_tls_to_a_receiver_the_worker_trusts(stack: Stack) -> None:
    certificates = Certificates(*(stack.root / name for name in ("ca.pem", "cert.pem", "key.pem")))
    receiver = await Receiver().start(certificates.server_context())
    try:
        assert receiver.url.startswith("https://")
        async with stack.admin() as admin, stack.client() as client:
            use_case = await create_use_case(admin)
            endpoint = await register(admin, receiver.url, events=["sms.status"])
            await in_force()
            record_id = (await send(client, use_case["id"], unique_number())).json()["id"]
            await statuses_of(receiver, record_id, "pending")
        assert all(d.signed_by(endpoint["secret"]) for d in receiver.received)
    finally:
        await receiver.stop()


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
