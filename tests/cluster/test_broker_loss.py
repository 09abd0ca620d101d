"""Losing a broker of a three-broker cluster mid-traffic loses nothing.

Replication 3 (the default on three brokers), ``min.insync.replicas=2``, the worker on
``rocksdb://``, worker, sink and ingress as processes. While sends (with Idempotency-Keys,
from clients that retry as the README says) and their status callbacks flow, the broker that
leads the most of the stack's partitions is killed (-9) or stopped (SIGTERM), then started
again. Every send must end 201 with its message created once at Twilio, every record reach
``delivered`` (its callbacks applied), and the ingress accept sends again: an idempotent
producer that broke on the restart (``OutOfOrderSequenceNumber``) is replaced.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from feeds.kafka_admin import describe_topic_configs
from feeds.topics import describe_topics
from smslane.kafka_cluster import ClusterNode, LocalCluster
from tests.factories import create_use_case, sim_messages, unique_number
from tests.faults.client import Sent, send_until_answered
from tests.harness import Stack
from tests.integration.test_lifecycle import wait_for

pytestmark = pytest.mark.integration

#: Sends per run, ~10 a second: the broker is lost one second in, back about five later.
SENDS = 50


@pytest.fixture(scope="module")
def stack(kafka_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("cluster-faults"), kafka_cluster.bootstrap_servers,
        table_store="rocksdb://", send_timeout_seconds="6", reconcile_margin_seconds="2",
    )  # fmt: skip
    with running.running():
        yield running


async def busiest_leader(stack: Stack, cluster: LocalCluster) -> ClusterNode:
    """The node that leads the most partitions of the stack's topics (changelogs included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(stack.prefix)]
        leaders = Counter(
            part["leader"]
            for description in await admin.describe_topics(ours)
            for part in description["partitions"]
        )
    finally:
        await admin.close()
    node_id = leaders.most_common(1)[0][0]
    return next(node for node in cluster.nodes if node.node_id == node_id)


@pytest.mark.timeout(300)  # the cluster and the stack start in its setup
async def test_every_topic_of_the_stack_has_three_replicas_and_min_insync_2(
    stack: Stack,
) -> None:
    """The catalog's topics and the tables' changelogs (Faust creates those) alike."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(stack.prefix)]
        found = await describe_topics(admin, ours)
        configs = await describe_topic_configs(admin, {n: ["min.insync.replicas"] for n in ours})
    finally:
        await admin.close()
    assert sum(name.endswith("-changelog") for name in found) >= 4
    assert {topic.replicas for topic in found.values()} == {3}, found
    assert {c["min.insync.replicas"] for c in configs.values()} == {"2"}, configs


class Run:
    """One stream of sends with a broker lost in it; what each send got and when."""

    def __init__(self, stack: Stack, use_case_id: str) -> None:
        self.stack, self.use_case_id = stack, use_case_id
        self.sends = [Sent(unique_number(), f"cluster {n}") for n in range(SENDS)]
        self.finished: dict[str, float] = {}
        self.lost_at = 0.0

    async def send_one(self, sent: Sent) -> None:
        async with self.stack.client() as client:
            await send_until_answered(client, self.use_case_id, sent, give_up_after_s=90)
        self.finished[sent.key] = time.monotonic()

    async def stream(self) -> None:
        tasks = []
        for sent in self.sends:
            tasks.append(asyncio.create_task(self.send_one(sent)))
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks)

    async def lose_broker(self, node: ClusterNode, sig: signal.Signals) -> None:
        await asyncio.sleep(1.0)
        pid = node.recorded_pid()
        assert pid is not None
        self.lost_at = time.monotonic()
        if sig == signal.SIGKILL:
            os.kill(pid, signal.SIGKILL)
        else:
            await asyncio.to_thread(node.stop)
        await asyncio.sleep(5.0)
        await asyncio.to_thread(node.start)

    def first_201_after_loss(self) -> float | None:
        after = [
            done - self.lost_at
            for sent in self.sends
            if sent.created and (done := self.finished.get(sent.key, 0.0)) > self.lost_at
        ]
        return min(after) if after else None


async def accounted_for(stack: Stack, run: Run) -> dict[str, int]:
    """Lost (no 201), doubled (created more than once at Twilio), stuck (record short of
    delivered although its callbacks were answered 2xx) and callbacks Twilio gave up on."""
    figures = Counter[str]()
    async with stack.sim_client() as sim:
        for sent in run.sends:
            if not sent.created:
                figures["lost"] += 1
                continue
            created = await sim_messages(sim, sent.to)
            figures["doubled"] += len(created) > 1
            callbacks = [c for m in created for c in m["callbacks"]]
            figures["callbacks_given_up"] += sum(c["outcome"] == "failed" for c in callbacks)
            record = await wait_for(
                stack, sent.final[1]["id"], lambda r: r["status"] == "delivered", timeout_s=60
            )
            figures["stuck"] += record["status"] != "delivered"
    return {key: figures[key] for key in ("lost", "doubled", "stuck", "callbacks_given_up")}


@pytest.mark.timeout(300)  # the cluster and the stack start in the first one's setup
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_losing_the_busiest_broker_mid_stream_loses_nothing(
    stack: Stack, kafka_cluster: LocalCluster, sig: signal.Signals
) -> None:
    async with stack.admin() as admin:
        use_case = await create_use_case(admin)
    node = await busiest_leader(stack, kafka_cluster)
    run = Run(stack, use_case["id"])
    await asyncio.gather(run.stream(), run.lose_broker(node, sig))
    figures = await accounted_for(stack, run)
    retried = sum(len(s.answers) > 1 for s in run.sends)
    replaced = stack.ingress.log_path.read_text().count("cannot write any more")
    first = run.first_201_after_loss()
    print(
        f"{sig.name} of node {node.node_id}: {SENDS} sends, {figures}, {retried} retried, "
        f"first 201 {first if first is None else round(first, 1)} s after the loss, "
        f"ingress producer replaced {replaced} time(s) so far"
    )
    assert figures == {"lost": 0, "doubled": 0, "stuck": 0, "callbacks_given_up": 0}
    assert first is not None
