"""The worker restarted, killed and doubled, on the production configuration.

Real broker, ``rocksdb://`` tables with the data directory kept, real processes, ``kill -9``
as well as SIGTERM, and clients that retry the way the README says (tests/faults/client.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from schemas.events import RawCallback, SendReply, SendRequest
from smslane.processes import Child, free_port, wait_until
from tests.factories import create_use_case, sim_messages, unique_number
from tests.faults.client import Sent, send_until_answered
from tests.harness import ACCOUNT_SID, SENDERS, Stack
from tests.integration.test_lifecycle import wait_for
from tests.integration.test_send import send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("faults-worker"), kafka_bootstrap, table_store="rocksdb://",
        send_timeout_seconds="6", reconcile_margin_seconds="2",
        # A callback lost in a takeover is repaired from Twilio, as in production but after
        # 5 s instead of 15 min, so that "every record reaches delivered" holds in the test.
        status_repair_after_seconds="5",
    )  # fmt: skip
    with running.running():
        yield running


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_restarted_worker_sends(stack: Stack, sig: signal.Signals) -> None:
    """Configure, send, restart the worker with its data directory, send again: 201.

    (A worker whose configuration came only from a GlobalTable's changelog callbacks
    refused every send after a restart: the table replays nothing from persisted offsets.)
    """
    async with stack.admin() as admin, stack.client() as client:
        use_case = await create_use_case(admin)
        assert (await send(client, use_case["id"], unique_number())).status_code == 201
        killed = time.monotonic()
        await asyncio.to_thread(stack.restart_worker, sig)
        ready = time.monotonic()
        answer = await send(client, use_case["id"], unique_number())
        assert answer.status_code == 201, answer.text
        print(
            f"{sig.name}: ready {ready - killed:.1f}s after the signal, "
            f"first 201 {time.monotonic() - killed:.1f}s after it"
        )


async def test_a_request_from_a_skewed_ingress_clock_is_sent(stack: Stack) -> None:
    """The worker's deadline comes from the broker's append time, not from the ingress's
    ``received_at``: an ingress whose clock is two minutes behind still gets its sends
    (with the old check every one was refused as "waited too long")."""
    async with stack.admin() as admin:
        use_case = await create_use_case(admin)
    to = unique_number()
    request = SendRequest(
        request_id=uuid.uuid4(),
        body_hash=hashlib.sha256(b"skewed").hexdigest(),
        use_case_id=uuid.UUID(use_case["id"]),
        to_phone_number=to,
        message="skewed",
        received_at=datetime.now(UTC) - timedelta(minutes=2),
        reply_topic=f"{stack.prefix}sms.send-replies",
        correlation_id=uuid.uuid4().hex,
    )
    reply = await _request_reply(stack, request)
    assert reply.status_code == 201, reply.error
    async with stack.sim_client() as sim:
        assert len(await sim_messages(sim, to)) == 1


async def _request_reply(stack: Stack, request: SendRequest) -> SendReply:
    """Publish ``request`` the way an ingress does and wait for the worker's reply."""
    bootstrap = stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"]
    consumer = AIOKafkaConsumer(request.reply_topic, bootstrap_servers=bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        await consumer.seek_to_end()
        await producer.send_and_wait(
            f"{stack.prefix}sms.send-requests",
            key=request.request_id.bytes,
            value=request.model_dump_json().encode(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    reply = SendReply.model_validate_json(message.value)
                    if reply.correlation_id == request.correlation_id:
                        return reply
        raise AssertionError("no reply from the worker")
    finally:
        await producer.stop()
        await consumer.stop()


async def _send_all(stack: Stack, use_case_id: str, batch: list[Sent]) -> None:
    async with stack.client() as client:
        await asyncio.gather(*(send_until_answered(client, use_case_id, s) for s in batch))


async def _assert_accounted_for(stack: Stack, sends: list[Sent]) -> int:
    """Every send ended 201 with its message created once at Twilio, those cut off inside
    the Twilio call included (reconciled); none is stuck. Returns how many were cut off."""
    stuck = [s for s in sends if not s.created]
    assert not stuck, [(s.to, s.answers) for s in stuck]
    async with stack.sim_client() as sim:
        for sent in sends:
            created = await sim_messages(sim, sent.to)
            assert [m["sid"] for m in created] == [sent.final[1]["message_sid"]], sent.answers
    for sent in sends:
        await wait_for(stack, sent.final[1]["id"], lambda r: r["status"] == "delivered")
    return sum(s.interrupted for s in sends)


async def test_kill_9_during_a_stream_of_sends(stack: Stack) -> None:
    """kill -9 while sends flow; clients retry on 503/504 with their keys."""
    async with stack.admin() as admin:
        use_case = await create_use_case(admin)
    sends = [Sent(unique_number(), f"stream {n}") for n in range(40)]

    async def kill_and_restart() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.restart_worker, signal.SIGKILL)

    async def paced() -> None:
        tasks = []
        for sent in sends:  # ~10 sends a second, so the kill lands mid-stream
            tasks.append(asyncio.create_task(_send_all(stack, use_case["id"], [sent])))
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks)

    await asyncio.gather(paced(), kill_and_restart())
    interrupted = await _assert_accounted_for(stack, sends)
    print(f"kill -9 mid-stream: {len(sends)} sends, {interrupted} interrupted in the call")


async def test_sigterm_during_a_burst_of_creates_and_callbacks(stack: Stack) -> None:
    """A graceful stop while creates and callbacks pour in: every record reaches sms.status
    with every version, none of them twice with different content, and the store holds the
    last. Half the messages are silent at the simulator: their callbacks come as a burst
    written straight to sms.callbacks (each ``sent`` redelivered many times, so that the
    lifecycle publishes all along) just before the SIGTERM, and status repair finishes
    them; the other half are created while the worker stops.

    Whether the stop cuts a lifecycle batch short is a race (Faust stops its fetcher, then
    the tables, then the agents): what a cut-short batch used to lose (take_events acked
    it) is shown deterministically in tests/streams/test_lifecycle_agent.py."""
    async with stack.admin() as admin, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        quiet = [Sent(unique_number(), f"quiet {n}") for n in range(10)]
        await sim.post("/_sim/config", json={"silent_numbers": [s.to for s in quiet]})
        try:
            await _send_all(stack, use_case["id"], quiet)
            loud = [Sent(unique_number(), f"burst {n}") for n in range(10)]
            sending = asyncio.create_task(_send_all(stack, use_case["id"], loud))
            await _callback_burst(stack, [s.final[1]["message_sid"] for s in quiet], copies=40)
            await asyncio.to_thread(stack.restart_worker, signal.SIGTERM)
            await sending
        finally:
            await sim.post("/_sim/config", json={"silent_numbers": []})
    sends = quiet + loud
    await _assert_accounted_for(stack, sends)
    published = await _status_versions(stack)
    async with stack.client() as client:
        for sent in sends:
            record_id = sent.final[1]["id"]
            versions = published[record_id]
            assert sorted(versions) == list(range(1, len(versions) + 1)), (record_id, versions)
            twice = {v: contents for v, contents in versions.items() if len(contents) > 1}
            assert not twice, (record_id, twice)
            (last,) = versions[max(versions)]
            stored = (await client.get(f"/v1/sms/{record_id}")).json()
            assert {**json.loads(last), "version": None} == {**stored, "version": None}
    print(f"SIGTERM mid-burst: {len(sends)} records, {sum(map(len, published.values()))} versions")


async def _callback_burst(stack: Stack, sids: list[str], copies: int) -> None:
    """A ``sent`` callback for each of ``sids``, each delivered ``copies`` times (the same
    receipt, as a redelivery: the lifecycle publishes its version again each time)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        for sid in sids:
            params = {"AccountSid": ACCOUNT_SID, "MessageSid": sid, "MessageStatus": "sent",
                      "From": SENDERS[0], "NumSegments": "1"}  # fmt: skip
            raw = RawCallback(receipt_id=uuid.uuid4(), received_at=datetime.now(UTC), params=params)
            for _ in range(copies):
                await producer.send(stack.topic("sms.callbacks"), raw.model_dump_json().encode(),
                                    key=sid.encode())  # fmt: skip
        await producer.flush()
    finally:
        await producer.stop()


async def _status_versions(stack: Stack) -> dict[str, dict[int, set[str]]]:
    """record id → version → every distinct content published for it on sms.status."""
    published: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for message in await stack.read_topic("sms.status"):
        value = json.loads(message.value)
        published[value["id"]][value["version"]].add(json.dumps(value, sort_keys=True))
    return published


def _second_worker(stack: Stack) -> Child:
    env = {
        **stack.env,
        "SMSLANE_DATA_DIR": str(stack.root / "var2"),
        "SMSLANE_WORKER_METRICS_PORT": str(free_port()),
    }
    return Child("worker2", ["worker"], env, stack.root / "logs")


async def _group_members(stack: Stack) -> dict[str, int]:
    """client host/id → partitions of sms.send-requests assigned to it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([f"{stack.prefix}smslane"])
        (group,) = response.groups
        members: dict[str, int] = {}
        for member_id, *_, assignment in group[5]:  # (error, id, state, type, protocol, members)
            decoded = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
            topics = dict(decoded.assignment) if decoded else {}
            members[member_id] = len(topics.get(f"{stack.prefix}sms.send-requests", []))
        return members
    finally:
        await admin.close()


async def test_two_workers_share_partitions_and_one_is_killed_mid_call(stack: Stack) -> None:
    """A second worker takes half the partitions; kill -9 one while Twilio holds creates:
    the other takes over, nothing is sent twice, nothing lost, nothing stuck."""
    second = _second_worker(stack)
    second.start()
    ready2 = Path(second.env["SMSLANE_DATA_DIR"]) / "worker.ready"
    try:
        await asyncio.to_thread(wait_until, ready2.exists, 90, "second worker ready")

        async def shared() -> bool:
            members = await _group_members(stack)
            return len(members) == 2 and all(members.values())

        deadline = time.monotonic() + 60
        while not await shared():
            assert time.monotonic() < deadline, await _group_members(stack)
            await asyncio.sleep(0.5)
        async with stack.admin() as admin, stack.sim_client() as sim:
            use_case = await create_use_case(admin)
            await sim.post("/_sim/config", json={"create_delay_ms": 1500})
        sends = [Sent(unique_number(), f"two workers {n}") for n in range(12)]
        try:
            running = asyncio.create_task(_send_all(stack, use_case["id"], sends))
            await asyncio.sleep(0.8)  # the creates are at the simulator, answers on hold
            await asyncio.to_thread(second.stop, signal.SIGKILL)
            await running
        finally:
            async with stack.sim_client() as sim:
                await sim.post("/_sim/config", json={"create_delay_ms": 0})
        interrupted = await _assert_accounted_for(stack, sends)
        print(f"two workers, one killed: {len(sends)} sends, {interrupted} interrupted")
        async with stack.client() as client:  # and the survivor sends to every partition
            for _ in range(4):
                assert (await send(client, use_case["id"], unique_number())).status_code == 201
    finally:
        second.stop()


async def test_a_worker_that_lost_its_disk_restores_its_tables_before_it_is_ready(
    stack: Stack,
) -> None:
    """kill -9, the data directory deleted, start: the tables come back from their
    changelogs in bulk (the log says how many records), in the form Faust's recovery reads:
    a retried request is answered from the restored outcome (never sent twice), and the
    callbacks, held at the simulator until after the restart, move the restored records."""
    async with stack.admin() as admin, stack.client() as client, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        await sim.post("/_sim/config", json={"callback_delay_ms": 8000})
        try:
            keyed = {unique_number(): uuid.uuid4().hex for _ in range(5)}
            sids = {}
            for to, key in keyed.items():
                answer = await send(client, use_case["id"], to, **{"Idempotency-Key": key})
                assert answer.status_code == 201, answer.text
                sids[to] = answer.json()["id"]
            stack.worker.stop(signal.SIGKILL)
        finally:
            await sim.post("/_sim/config", json={"callback_delay_ms": 5.0})
        shutil.rmtree(stack.worker_data)
        stack.ready_file.unlink(missing_ok=True)
        mark = stack.worker.log_path.stat().st_size  # the log is appended to at each start
        stack.worker.start()
        await asyncio.to_thread(stack.wait_worker_ready)
        with stack.worker.log_path.open(errors="replace") as file:
            file.seek(mark)
            log = file.read()
        restored = re.findall(r"tables restored: (\d+) changelog records", log)
        assert restored and int(restored[0]) >= 2 * len(keyed), log[-3000:]
        # Faust found every file up to date: it had nothing left to replay.
        assert "Restoring state from changelog topics" not in log
        for to, key in keyed.items():
            again = await send(client, use_case["id"], to, **{"Idempotency-Key": key})
            assert again.status_code in (200, 201), again.text
            assert again.json()["id"] == sids[to]
            assert len(await sim_messages(sim, to)) == 1
        for record_id in sids.values():
            await wait_for(stack, record_id, lambda r: r["status"] == "delivered", timeout_s=60)
        assert (await send(client, use_case["id"], unique_number())).status_code == 201
