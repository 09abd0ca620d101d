"""An idempotent Kafka producer that is replaced when it can no longer write.

aiokafka's idempotent producer has states it never leaves: after a broker restart it may
answer ``OutOfOrderSequenceNumber`` to every later write to a partition (aiokafka issue
#1017; measured here: 4,054 refusals in a row until the process was restarted), and a
``ProducerFenced`` / unknown producer id, or any error that ends its sender task, fails
every later send the same way. A :class:`ReplacingProducer` then starts a new producer (a
new producer id, sequences from 0), stops the old one, and sends the write again once on
the new one. Sending again is safe: the broker refused the write it answered so, and every
topic smslane writes is read by consumers that drop duplicates by key or id anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata

log = logging.getLogger(__name__)

#: Errors after which aiokafka's producer refuses every later write of the partition (or all).
FATAL_PRODUCER_ERRORS: tuple[type[Exception], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
)
#: How long stopping a broken producer may take (it may still hold batches it cannot send).
_STOP_TIMEOUT_S = 5.0


def is_fatal(exc: BaseException) -> bool:
    """True for an error that leaves the producer unable to write again."""
    return isinstance(exc, FATAL_PRODUCER_ERRORS) or isinstance(
        exc.__cause__, FATAL_PRODUCER_ERRORS
    )


def sender_stopped(producer: AIOKafkaProducer) -> bool:
    """True when the producer's background sender has ended: every later send fails with
    the error that ended it (aiokafka's ``Sender._fail_all``)."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return task is not None and task.done()


class ReplacingProducer:
    """An :class:`AIOKafkaProducer` made by ``factory``, replaced on a fatal error.

    ``factory`` builds a producer with the settings of its process (``acks="all"``,
    ``enable_idempotence=True``); it is called once at :meth:`start` and once per
    replacement.
    """

    def __init__(self, factory: Callable[[], AIOKafkaProducer], name: str) -> None:
        self.factory = factory
        self.name = name
        self.replacements = 0
        self._producer: AIOKafkaProducer | None = None
        self._replacing = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError(f"{self.name}: the producer is not started")
        return self._producer

    async def start(self) -> None:
        producer = self.factory()
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_and_wait(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, **kw: Any
    ) -> RecordMetadata:
        """Send and wait for the broker's ack; on a fatal error, replace the producer and
        send once more on the new one (its error, if any, is raised)."""
        producer = self.producer
        try:
            return await producer.send_and_wait(topic, value, key=key, **kw)
        except Exception as exc:
            if not (is_fatal(exc) or sender_stopped(producer)):
                raise
            await self.replace(producer, exc)
        return await self.producer.send_and_wait(topic, value, key=key, **kw)

    async def replace(self, broken: AIOKafkaProducer, error: BaseException) -> None:
        """Put a new producer in place of ``broken`` (once, however many sends saw it
        fail), then stop ``broken`` in the background."""
        async with self._replacing:
            if self._producer is not broken:
                return  # another send replaced it already
            log.warning(
                "%s: the Kafka producer cannot write any more (%s); replacing it",
                self.name, type(error).__name__,
            )  # fmt: skip
            fresh = self.factory()
            try:
                await fresh.start()
            except BaseException:  # the broker is away, or the request gave up: next send tries
                self._stop_later(fresh)
                raise
            self._producer = fresh
            self.replacements += 1
        self._stop_later(broken)

    def _stop_later(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.create_task(_stop_quietly(producer), name=f"{self.name}-stop-producer")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), _STOP_TIMEOUT_S)
