"""What the side sinks beside the status sink share: poll a topic, write each batch (held and
retried while the store refuses it), commit its offsets only then, at least once.

A :class:`TopicSink` subclass says how a batch is decoded and stored; ``sinks.inbound`` and
``sinks.webhooks`` are two.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from schemas.topics import Codec
from sinks.runner import Backoff, Batch, _commit, _log_held, _wait_paused
from store import Store
from store.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def decode_values(batch: Batch, codec: Codec[T], what: str) -> list[T]:
    """The values of ``batch`` decoded with ``codec``; one that is not ``what`` (or a
    tombstone) is logged and skipped."""
    values = []
    for records in batch.values():
        for record in records:
            try:
                if record.value is None:
                    raise ValueError("the value is empty (a tombstone)")
                values.append(codec.decode(record.value))
            except (ValidationError, ValueError) as exc:
                log.error(
                    "sink: skipping a value that is not %s at %s[%d]@%d: %s",
                    what, record.topic, record.partition, record.offset, exc,
                    extra={"topic": record.topic, "offset": record.offset},
                )  # fmt: skip
    return values


class TopicSink(Generic[T]):
    """Consumes ``consumer``'s topic into ``store`` until ``stop``: poll, write, commit."""

    def __init__(
        self, store: Store, stop: asyncio.Event, backoff: Backoff, consumer: AIOKafkaConsumer
    ) -> None:
        self.store, self.stop, self.backoff, self.consumer = store, stop, backoff, consumer

    def decode(self, batch: Batch) -> list[T]:
        """The values of a batch worth storing (log and skip the others)."""
        raise NotImplementedError

    async def store_items(self, items: list[T]) -> None:
        """Write ``items``; raise what the store raised for it to be held and retried."""
        raise NotImplementedError

    async def after_batch(self) -> None:
        """Called after every poll (housekeeping)."""

    async def run(self, poll_timeout_ms: int = 500) -> None:
        await self.consumer.start()
        try:
            while not self.stop.is_set():
                try:
                    batch = await self.consumer.getmany(timeout_ms=poll_timeout_ms, max_records=500)
                except KafkaError as exc:  # the client reconnects by itself; keep reading
                    log.warning("sink: reading %s failed (%s); retrying", self.consumer, exc)
                    await asyncio.sleep(0.5)
                    continue
                if batch:
                    if not await self.write(self.decode(batch)):
                        return  # stopped while the database was down: nothing committed
                    await _commit(self.consumer, batch)
                await self.after_batch()
        finally:
            await self.consumer.stop()

    async def write(self, items: list[T]) -> bool:
        """Store ``items``, holding them while the store refuses; False if stopped."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.store_items(items)
            except (StoreUnavailable, SQLAlchemyError) as exc:
                delay = self.backoff.delay(attempt)
                _log_held(exc, len(items), attempt, delay)
                if await _wait_paused(self.consumer, self.stop, delay):
                    return False
                continue
            if attempt > 1:
                self.consumer.resume(*self.consumer.assignment())
            return True
