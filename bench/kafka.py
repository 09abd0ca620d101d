"""Kafka from the harness's side: consumer lag, direct injection of records and callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from bench.loadgen import callback_form
from feeds import kafka_clients
from schemas.events import RawCallback
from schemas.records import SmsRecord
from schemas.settings import Settings
from smslane.processes import wait_until_async


def kafka_settings(bootstrap: str) -> Settings:
    """The broker at ``bootstrap``, with the security settings of this environment
    (``SMSLANE_KAFKA_SECURITY_PROTOCOL`` and the rest), for the harness's own clients."""
    return Settings(kafka_bootstrap_servers=bootstrap)


class LagProbe:
    """Committed offsets of consumer groups against the topics' end offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin = kafka_clients.admin(kafka_settings(bootstrap))
        self._ends = kafka_clients.consumer(kafka_settings(bootstrap), enable_auto_commit=False)

    async def __aenter__(self) -> LagProbe:
        await self._admin.start()
        await self._ends.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ends.stop()
        await self._admin.close()

    async def end_offsets(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        tps = []
        for topic in topics:
            partitions = self._ends.partitions_for_topic(topic)
            if partitions is None:
                await self._ends._client.force_metadata_update()
                partitions = self._ends.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        ends: dict[TopicPartition, int] = await self._ends.end_offsets(tps)
        return ends

    async def lag(self, group: str, topics: Iterable[str]) -> int:
        """Records of ``topics`` not yet committed by ``group``."""
        topics = list(topics)
        ends = await self.end_offsets(topics)
        committed = await self._admin.list_consumer_group_offsets(group)
        total = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            total += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return total

    async def wait_drained(
        self, groups: dict[str, list[str]], timeout_s: float, settle_s: float = 0.0
    ) -> float | None:
        """Seconds until every group has committed everything; None on timeout."""
        started = time.monotonic()

        async def drained() -> bool:
            lags = [await self.lag(group, topics) for group, topics in groups.items()]
            return not any(lags)

        try:
            await wait_until_async(drained, timeout_s, "the groups to drain", interval_s=0.25)
        except TimeoutError:
            return None
        await asyncio.sleep(settle_s)
        return round(time.monotonic() - started, 2)


@contextlib.asynccontextmanager
async def producer(bootstrap: str, **kw: Any) -> AsyncIterator[AIOKafkaProducer]:
    options: dict[str, Any] = {"linger_ms": 20, "acks": 1, "max_batch_size": 256 * 1024}
    options.update(kw)
    prod = kafka_clients.producer(kafka_settings(bootstrap), **options)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


def make_records(count: int, use_case_id: uuid.UUID, first: int = 0) -> list[SmsRecord]:
    """``count`` pending records, as the send agent writes them to ``sms.created``."""
    from bench.loadgen import MESSAGE, destination

    now = datetime.now(UTC)
    return [
        SmsRecord(
            id=uuid.uuid4(),
            use_case_id=use_case_id,
            message_sid=f"SM{uuid.uuid4().hex}",
            to_number=destination(first + n),
            body=MESSAGE,
            created_at=now,
            updated_at=now,
        )
        for n in range(count)
    ]


def callback_value(record: SmsRecord, status: str, account_sid: str, service_sid: str) -> bytes:
    """A ``sms.callbacks`` value, as the webhook publishes it."""
    params = callback_form(account_sid, service_sid, record.message_sid, record.to_number, status)
    raw = RawCallback(receipt_id=uuid.uuid4(), received_at=datetime.now(UTC), params=params)
    return raw.model_dump_json().encode()


async def send_all(
    prod: AIOKafkaProducer, topic: str, items: Iterable[tuple[bytes, bytes]], chunk: int = 5000
) -> int:
    """Produce ``(key, value)`` pairs, waiting for acks chunk by chunk; the count sent."""
    pending: list[asyncio.Future[Any]] = []
    sent = 0
    for key, value in items:
        pending.append(await prod.send(topic, value, key=key))
        sent += 1
        if len(pending) >= chunk:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return sent
