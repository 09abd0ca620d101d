"""``smslane sms tail``: follow ``sms.status`` the way a downstream consumer does.

This is smslane's reference consumer of its downstream topic (docs/downstream.md): an
``aiokafka`` consumer of ``Topics.STATUS``, each value read with the catalog's codec into an
``SmsStatusEvent``, and redeliveries dropped by ``version`` (:class:`StatusChanges`). Unlike
a real downstream service it joins no consumer group and commits nothing: it reads every
partition from the end (or from the beginning) and forgets its place when it stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterable
from datetime import UTC
from typing import TextIO

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from feeds import kafka_clients
from schemas.records import SmsStatus, SmsStatusEvent
from schemas.settings import Settings
from schemas.topics import Topics
from smslane.stack import topic_partitions

log = logging.getLogger(__name__)

#: How long one poll waits for new values before checking for Ctrl-C again.
POLL_MS = 500


class TailError(Exception):
    """Kafka does not answer, or the topic does not exist: one line for a person."""


def status_line(event: SmsStatusEvent) -> str:
    """One printed change: time (``updated_at``, UTC), id, status, to, error code or ``-``."""
    when = event.updated_at.astimezone(UTC).isoformat(timespec="milliseconds")
    when = when.replace("+00:00", "Z")
    error = "-" if event.error_code is None else str(event.error_code)
    return f"{when}  {event.id}  {event.status.value:<11}  {event.to_number}  {error}"


class StatusChanges:
    """Per record, the highest ``version`` applied and the status it had.

    A value whose version is not above the last one is a redelivery (delivery is at least
    once): a downstream consumer drops it. A newer version with the same status (e.g. the
    sender number filled in while still ``pending``) is a change of the record but not of
    its status: the tail applies it without printing a line.
    """

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, SmsStatus]] = {}

    def apply(self, event: SmsStatusEvent) -> bool:
        """Apply ``event``; True when it changed the record's status (or is its first)."""
        key = str(event.id)
        previous = self._latest.get(key)
        if previous is not None and event.version <= previous[0]:
            return False
        self._latest[key] = (event.version, event.status)
        return previous is None or previous[1] != event.status


class StatusTail:
    """Assign every partition, move to the end (or the beginning), print changes until
    ``stop`` is set."""

    def __init__(self, settings: Settings, *, from_beginning: bool, out: TextIO) -> None:
        self.settings = settings
        self.topic = Topics.STATUS.name(settings.topic_prefix)
        self.from_beginning = from_beginning
        self.out = out
        self.changes = StatusChanges()
        self.codec = Topics.STATUS.codec

    async def run(self, stop: asyncio.Event) -> None:
        if log.getEffectiveLevel() > logging.DEBUG:  # -v keeps aiokafka's own info lines
            logging.getLogger("aiokafka").setLevel(logging.WARNING)
        consumer = kafka_clients.consumer(
            self.settings,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            raise TailError(
                f"Kafka does not answer at {self.settings.kafka_bootstrap_servers}: {exc}"
            ) from None
        try:
            partitions = await self.assign(consumer)
            self.announce(len(partitions))
            await self.follow(consumer, stop)
        finally:
            await consumer.stop()

    async def assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the topic, positioned where printing starts."""
        if self.topic not in await consumer.topics():  # metadata of every topic, none created
            raise TailError(
                f"no topic {self.topic} at {self.settings.kafka_bootstrap_servers} "
                "(is SMSLANE_TOPIC_PREFIX right? smslane creates it when a process starts)"
            )
        count = await topic_partitions(self.settings, self.topic)
        partitions = [TopicPartition(self.topic, p) for p in range(count)]
        consumer.assign(partitions)
        if self.from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # fixes "now" before the first line is announced
        return partitions

    def announce(self, partitions: int) -> None:
        start = "from the beginning" if self.from_beginning else "from now"
        sys.stderr.write(
            f"following {self.topic} ({partitions} partitions) at "
            f"{self.settings.kafka_bootstrap_servers} {start}; Ctrl-C stops\n"
        )
        sys.stderr.flush()

    async def follow(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=POLL_MS)
            for records in batches.values():
                self.print_changes(records)

    def print_changes(self, records: Iterable[ConsumerRecord]) -> None:
        for record in records:
            try:
                event: SmsStatusEvent = self.codec.decode(record.value)
            except (ValidationError, TypeError):
                sys.stderr.write(
                    f"skipped {record.topic}[{record.partition}]@{record.offset}: "
                    "not an sms.status value\n"
                )
                continue
            if self.changes.apply(event):
                self.out.write(status_line(event) + "\n")
        self.out.flush()


async def _tail(settings: Settings, from_beginning: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await StatusTail(settings, from_beginning=from_beginning, out=sys.stdout).run(stop)


def run_tail(settings: Settings, *, from_beginning: bool) -> int:
    """``smslane sms tail``: 0 when stopped by Ctrl-C (or SIGTERM, or a closed pipe)."""
    try:
        asyncio.run(_tail(settings, from_beginning))
    except TailError as exc:
        sys.stderr.write(f"smslane sms tail: {exc}\n")
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        pass
    except BrokenPipeError:  # `smslane sms tail | head`: stop quietly, flush nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
