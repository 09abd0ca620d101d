"""The worker's Faust app, as built (no broker: nothing here starts but its consumer)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from faust.types import TP

from feeds.fetch_wait import IDLE_FETCH_WAIT_MS
from feeds.secret_box import new_key
from schemas.settings import Settings
from smslane.processes import wait_until_async
from streams.app import create_app
from tests.sinks.helpers import new_topic


async def test_the_worker_consumer_fetches_with_the_configured_wait() -> None:
    """Faust builds its consumer with fetch_max_wait_ms=1500; ours takes the setting, so a
    busy partition never waits behind a fetch of idle ones for 1.5 s."""
    worker = create_app(Settings(kafka_fetch_max_wait_ms=25, secret_keys=(new_key(),)))
    thread = worker.app.consumer._thread
    consumer = thread._create_worker_consumer(worker.app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 25
        assert consumer._group_id == worker.app.conf.id  # still Faust's consumer otherwise
    finally:
        await consumer.stop()


async def test_the_worker_producer_is_idempotent_and_a_fatal_error_crashes_the_worker() -> None:
    """Faust's producer cannot be replaced under its own futures: the worker stops (once)
    so that its supervisor starts it with a new producer; other errors do not stop it."""
    from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber
    from faust.exceptions import ProducerSendError

    from streams.producer import IdempotentProducer

    worker = create_app(Settings(secret_keys=(new_key(),)))
    producer = worker.app.producer
    assert isinstance(producer, IdempotentProducer)
    assert producer._settings_extra()["enable_idempotence"] is True
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    worker.app.crash = crash
    producer.crash_if_fatal(KafkaTimeoutError())
    refused = ProducerSendError("Error while sending")
    refused.__cause__ = OutOfOrderSequenceNumber()
    producer.crash_if_fatal(refused)
    producer.crash_if_fatal(OutOfOrderSequenceNumber())  # the same breakage, seen again
    assert producer._crashing is not None
    await producer._crashing
    assert crashes == [refused]


def test_the_tables_changelogs_get_the_replication_and_min_insync() -> None:
    worker = create_app(Settings(secret_keys=(new_key(),)), replication=3)
    assert worker.app.conf.topic_replication_factor == 3
    for table in worker.app.tables.values():
        assert table.changelog_topic.config["min.insync.replicas"] == "2"


@pytest.fixture
async def two_partitions(kafka_bootstrap: str) -> AsyncIterator[str]:
    async with new_topic(kafka_bootstrap, "fetch-wait", 2) as name:
        yield name


class Fetches:
    """The fetch requests a consumer sends: (wait ms, partitions named), in order."""

    def __init__(self, client: Any) -> None:
        self.sent: list[tuple[int, set[TopicPartition]]] = []
        self._send = client.send
        client.send = self.send

    async def send(self, node_id: int, request: Any, **kw: Any) -> Any:
        if isinstance(request, FetchRequest):
            named = {TopicPartition(t, part[0]) for t, parts in request.topics for part in parts}
            self.sent.append((request._max_wait_ms, named))
        return await self._send(node_id, request, **kw)

    async def naming(
        self, tps: set[TopicPartition], after: int, wait_ms: int | None = None
    ) -> tuple[int, set[TopicPartition]]:
        """The first fetch sent after the first ``after`` that names exactly ``tps`` (and
        waits ``wait_ms``, if given)."""

        def fits(fetch: tuple[int, set[TopicPartition]]) -> bool:
            return fetch[1] == tps and wait_ms in (None, fetch[0])

        async def found() -> tuple[int, set[TopicPartition]] | None:
            return next((f for f in self.sent[after:] if fits(f)), None)

        return await wait_until_async(found, 15.0, f"a fetch naming {sorted(tps)}")


@pytest.mark.integration
async def test_the_worker_fetch_waits_long_when_it_names_every_partition(
    kafka_bootstrap: str, two_partitions: str
) -> None:
    """At idle the fetch names every partition: it waits IDLE_FETCH_WAIT_MS (new data on any
    of them answers it). Once a partition has records buffered, the fetch of the other waits
    SMSLANE_KAFKA_FETCH_MAX_WAIT_MS, unless Faust has paused the buffered one (then nobody
    reads it before the next rebalance) and no records came for IDLE_AFTER_S: right after
    records, every fetch waits short."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_fetch_max_wait_ms=25,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.", secret_keys=(new_key(),),
    )  # fmt: skip
    worker = create_app(settings)
    thread = worker.app.consumer._thread
    await thread.on_start()  # Faust's consumer, as the worker starts it
    consumer = thread._consumer
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        fetches = Fetches(consumer._client)
        tp0, tp1 = TopicPartition(two_partitions, 0), TopicPartition(two_partitions, 1)
        consumer.assign([tp0, tp1])
        assert (await fetches.naming({tp0, tp1}, 0))[0] == IDLE_FETCH_WAIT_MS

        await producer.send_and_wait(two_partitions, b"x", partition=0)  # buffered, unread
        assert (await fetches.naming({tp1}, 0))[0] == 25

        worker.app.consumer._paused_partitions.add(TP(two_partitions, 0))
        paused_at = len(fetches.sent)
        await fetches.naming({tp1}, paused_at, IDLE_FETCH_WAIT_MS)  # once quiet
        short = [wait for wait, named in fetches.sent[paused_at:] if named == {tp1}]
        assert short[0] == 25  # the records came less than IDLE_AFTER_S ago
    finally:
        await producer.stop()
        await consumer.stop()
