"""Nothing lost, nothing doubled: redelivered requests, restarts, and unavailable services."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from feeds.secret_box import new_key
from schemas.events import SendReply, SendRequest
from smslane.processes import Child, wait_until, wait_until_async
from tests.factories import create_use_case, sim_messages, unique_number
from tests.harness import ADMIN_KEY, API_KEY, Stack, free_port
from tests.integration.test_lifecycle import callback_params, signed, wait_for
from tests.integration.test_send import send

pytestmark = pytest.mark.integration


async def test_a_redelivered_send_request_reaches_twilio_once(stack: Stack) -> None:
    """The same request on the topic twice (an at-least-once redelivery): one Twilio call."""
    async with stack.admin() as admin, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
    to = unique_number()
    bootstrap = stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"]
    replies_topic = f"{stack.prefix}sms.send-replies"
    consumer = AIOKafkaConsumer(replies_topic, bootstrap_servers=bootstrap)
    await consumer.start()
    await consumer.seek_to_end()
    request_id = uuid.uuid4()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for correlation in ("first", "second"):
            request = SendRequest(
                request_id=request_id,
                body_hash=hashlib.sha256(b"same").hexdigest(),
                use_case_id=uuid.UUID(use_case["id"]),
                to_phone_number=to,
                message="Only once",
                received_at=datetime.now(UTC),
                reply_topic=replies_topic,
                correlation_id=f"{correlation}-{request_id}",
                config_offset=-1,
            )
            await producer.send_and_wait(
                f"{stack.prefix}sms.send-requests",
                key=request_id.bytes,
                value=request.model_dump_json().encode(),
            )
        replies: list[SendReply] = []
        deadline = time.monotonic() + 30
        while len(replies) < 2 and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    reply = SendReply.model_validate_json(message.value)
                    if reply.request_id == request_id:
                        replies.append(reply)
    finally:
        await producer.stop()
        await consumer.stop()
    assert [r.status_code for r in replies] == [201, 201]
    assert replies[0].record == replies[1].record
    async with stack.sim_client() as sim:
        assert len(await sim_messages(sim, to)) == 1


async def test_worker_restart_loses_and_doubles_nothing(stack: Stack) -> None:
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        numbers = [unique_number() for _ in range(6)]
        await sim.post("/_sim/config", json={"scenarios": dict.fromkeys(numbers, "none")})
        records = []
        for to in numbers:
            answer = await client.post(
                "/v1/sms/",
                json={"use_case_id": use_case["id"], "to_phone_number": to, "message": "x"},
            )
            assert answer.status_code == 201, answer.text
            records.append(answer.json())
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        for record in records[:3]:
            params = callback_params(record["message_sid"], "sent")
            assert (await http.post(
                "/v1/webhook/twilio/sms-status", data=params, headers=signed(stack, params)
            )).status_code == 204  # fmt: skip
        stack.restart_worker()
        for record in records:
            for status in ("sent", "delivered"):
                params = callback_params(record["message_sid"], status)
                answer = await http.post(
                    "/v1/webhook/twilio/sms-status", data=params, headers=signed(stack, params)
                )
                assert answer.status_code == 204
    for record in records:
        final = await wait_for(stack, record["id"], lambda r: r["status"] == "delivered")
        assert final["handed_off_at"] is not None
    # sms.status: versions 1..n for each record, and a version never means two things (a
    # redelivery may publish the same version again, identical; consumers drop it by version).
    contents = await status_events(stack)
    for record in records:
        by_version: dict[int, set[bytes]] = {}
        for version, value in contents[record["id"]]:
            by_version.setdefault(version, set()).add(value)
        assert sorted(by_version) == list(range(1, len(by_version) + 1))
        assert all(len(values) == 1 for values in by_version.values()), by_version
        assert len(by_version) == 3  # pending, sent, delivered


@pytest.fixture(scope="module")
def rocksdb_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The worker with the production table store (the other stacks use memory://)."""
    running = Stack(tmp_path_factory.mktemp("rocksdb"), kafka_bootstrap, table_store="rocksdb://")
    with running.running():
        yield running


async def test_a_worker_stopped_during_a_twilio_call_finishes_it_first(
    rocksdb_stack: Stack,
) -> None:
    """SIGTERM while sends wait on Twilio: the worker answers them before it stops, so
    each was sent once and a retry with the same key gets that answer, not a 503.

    Faust stops the tables before the agents (and the worker does not wait for streams to
    drain), so it is the send agent that waits for its batches in flight when cancelled;
    their outcomes are then written to a stopped RocksDB table, which reopens its database.
    The warm restart must find them.
    """
    stack = rocksdb_stack
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        numbers = [unique_number() for _ in range(3)]
        keys = {to: str(uuid.uuid4()) for to in numbers}

        async def send_to(to: str) -> httpx.Response:
            return await send(client, use_case["id"], to, "x", **{"Idempotency-Key": keys[to]})

        async def all_at_twilio() -> bool:
            return all([await sim_messages(sim, to) for to in numbers])

        await sim.post("/_sim/config", json={"create_delay_ms": 3000})
        try:
            first = [asyncio.create_task(send_to(to)) for to in numbers]
            # The simulator records each create, then waits 3 s before it answers.
            await wait_until_async(all_at_twilio, 10, "the sends at the simulator", 0.05)
            await asyncio.to_thread(stack.restart_worker)  # SIGTERM, then a warm start
            answers = await asyncio.gather(*first)
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        retries = [await send_to(to) for to in numbers]
        for to, answer, retry in zip(numbers, answers, retries, strict=True):
            assert answer.status_code == 201, answer.text
            assert retry.status_code == 201, retry.text
            assert retry.json() == answer.json()
            assert len(await sim_messages(sim, to)) == 1


async def status_events(stack: Stack) -> dict[str, list[tuple[int, bytes]]]:
    events: dict[str, list[tuple[int, bytes]]] = {}
    for record in await stack.read_topic("sms.status"):
        version = json.loads(record.value)["version"]
        events.setdefault(record.key.decode(), []).append((version, record.value))
    return events


@pytest.fixture(scope="module")
def twilio_down_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    closed = f"http://127.0.0.1:{free_port()}"
    running = Stack(
        tmp_path_factory.mktemp("down"), kafka_bootstrap,
        twilio_api_base_url=closed, twilio_lookup_base_url=closed,
    )  # fmt: skip
    with running.running():
        yield running


async def test_twilio_down_answers_503_with_retry_after(twilio_down_stack: Stack) -> None:
    stack = twilio_down_stack
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        started = time.monotonic()
        answer = await client.post(
            "/v1/sms/",
            json={"use_case_id": use_case["id"], "to_phone_number": unique_number(),
                  "message": "x"},
        )  # fmt: skip
        assert time.monotonic() - started < 20
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "provider_unavailable"
        assert int(answer.headers["Retry-After"]) > 0
        listed = await client.get("/v1/sms/", params={"use_case_id": use_case["id"]})
        assert listed.json()["items"] == []


@pytest.fixture(scope="module")
def narrow_stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("narrow"), kafka_bootstrap, send_max_in_flight="2")
    with running.running():
        yield running


async def test_sends_past_capacity_are_shed_not_queued(narrow_stack: Stack) -> None:
    """Past SMSLANE_SEND_MAX_IN_FLIGHT the ingress answers 503 with Retry-After instead of
    queueing into 504s; what it accepted is sent once, what it shed is never sent."""
    stack = narrow_stack
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        numbers = [unique_number() for _ in range(6)]
        await sim.post("/_sim/config", json={"create_delay_ms": 1000})
        try:
            answers = await asyncio.gather(
                *(client.post("/v1/sms/", json={"use_case_id": use_case["id"],
                                                "to_phone_number": to, "message": "x"})
                  for to in numbers)
            )  # fmt: skip
        finally:
            await sim.post("/_sim/config", json={"create_delay_ms": 0})
        accepted = [to for to, a in zip(numbers, answers, strict=True) if a.status_code == 201]
        shed = [(to, a) for to, a in zip(numbers, answers, strict=True) if a.status_code == 503]
        assert len(accepted) == 2 and len(shed) == 4, [a.status_code for a in answers]
        for _, answer in shed:
            assert answer.json()["code"] == "service_unavailable"
            assert answer.headers["Retry-After"] == "1"
        for to in accepted:
            assert len(await sim_messages(sim, to)) == 1
        for to, _ in shed:
            assert await sim_messages(sim, to) == []
        retried = await client.post(
            "/v1/sms/", json={"use_case_id": use_case["id"], "to_phone_number": shed[0][0],
                              "message": "x"},
        )  # fmt: skip
        assert retried.status_code == 201, retried.text


async def test_kafka_down_gives_503_not_a_hang(tmp_path: Path) -> None:
    """An ingress whose broker does not answer: readyz and sends answer 503, bounded."""
    port = free_port()
    env = {
        "SMSLANE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "SMSLANE_HTTP_PORT": str(port),
        "SMSLANE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "SMSLANE_API_KEYS": API_KEY,
        "SMSLANE_ADMIN_API_KEYS": ADMIN_KEY,
        "SMSLANE_KAFKA_TIMEOUT_SECONDS": "2",
        "SMSLANE_DATA_DIR": str(tmp_path),
        "SMSLANE_SECRET_KEYS": new_key(),
        "PATH": "/usr/bin:/bin",
    }
    ingress = Child("ingress", ["ingress"], env, tmp_path)
    ingress.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), 30, "ingress up")
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            started = time.monotonic()
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and "Kafka" in ready.json()["detail"]
            # /readyz is public: it names what does not answer, never where it is.
            assert env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"] not in ready.text
            assert str(tmp_path) not in ready.text
            answer = await http.post(
                "/v1/sms/",
                headers={"Authorization": f"Bearer {API_KEY}"},
                json={"use_case_id": str(uuid.uuid4()), "to_phone_number": "+14155550123",
                      "message": "x"},
            )  # fmt: skip
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "service_unavailable"
            assert time.monotonic() - started < 15
    finally:
        ingress.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
