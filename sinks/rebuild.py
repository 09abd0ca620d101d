"""``smslane store rebuild``: fill an empty store from ``sms.status``, read from offset 0.

``sms.status`` is compacted (see ``schemas.topics``): it holds the latest version of every
record forever, so reading it from the beginning rebuilds the whole store. The rebuild reads
without a consumer group (its partitions assigned, nothing committed, the sink's group left
alone), takes the end offsets once at its start and stops there; later events are the live
sink's. Rows are written exactly as the sink writes them (``sinks.runner.write_batch``):
version-ordered upserts, a row the database refuses for its values skipped and logged, a
database that is down or read-only waited for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from feeds import kafka_clients
from schemas.settings import Settings
from schemas.topics import Topics
from sinks.runner import Backoff, Batch, decode_batch, write_batch
from store import Store
from store.errors import unavailable_as_store_error
from store.tables import sms_records

log = logging.getLogger(__name__)


class RebuildRefused(Exception):
    """The rebuild cannot start; the message is one line for the operator."""


@dataclass(frozen=True)
class RebuildProgress:
    """How far a rebuild is: offsets read of the ``total`` between the start and the end."""

    read: int
    total: int
    events: int
    rows: int


@dataclass(frozen=True)
class RebuildSummary:
    """What a finished (or stopped) rebuild did."""

    topic: str
    partitions: int
    #: Offsets from the beginning to the end taken at the start (compaction leaves gaps).
    total: int
    #: Status events read and applied, values that were not events (logged and skipped).
    events: int
    skipped: int
    #: Rows written (a record's newest version in a batch counts once).
    rows: int
    #: Records in the store at the end.
    records: int
    seconds: float
    complete: bool


async def rebuild_store(
    settings: Settings,
    database_url: str,
    *,
    force: bool = False,
    on_progress: Callable[[RebuildProgress], None] | None = None,
    stop: asyncio.Event | None = None,
    batch_size: int = 1000,
    backoff: Backoff | None = None,
) -> RebuildSummary:
    """Fill the store at ``database_url`` from ``sms.status`` offset 0 up to today's end.

    Raises :class:`RebuildRefused` when the store already holds records (unless ``force``:
    then the upserts only ever raise a row to a newer version) or the topic does not exist;
    :class:`~store.errors.StoreUnavailable` when the database does not answer at the start.
    """
    started = time.monotonic()
    stop = stop or asyncio.Event()
    store = await _open_store(database_url, force)
    try:
        topic = Topics.STATUS.name(settings.topic_prefix)
        consumer = kafka_clients.consumer(
            settings,
            client_id=f"{settings.app_id}-store-rebuild",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            reader = _Reader(consumer, store, stop, backoff or Backoff(), on_progress)
            await reader.start(settings, topic)
            complete = await reader.run(batch_size)
        finally:
            await consumer.stop()
        return RebuildSummary(
            topic=topic, partitions=len(reader.ends), total=reader.total, events=reader.events,
            skipped=reader.skipped, rows=reader.rows, records=await _count_records(store),
            seconds=time.monotonic() - started, complete=complete,
        )  # fmt: skip
    finally:
        await store.close()


def shown_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


async def _open_store(database_url: str, force: bool) -> Store:
    store = await Store.open(database_url)
    try:
        held = await _count_records(store)
    except BaseException:
        await store.close()
        raise
    if held and not force:
        await store.close()
        raise RebuildRefused(
            f"the store at {shown_url(database_url)} already holds {held} record(s): rebuild "
            "fills an empty database (--force applies the topic over them, newer versions win)"
        )
    return store


async def _count_records(store: Store) -> int:
    query = select(func.count()).select_from(sms_records)
    with unavailable_as_store_error():
        async with store.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())


async def _partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of ``topic``; none when it does not exist (never creates it)."""
    admin = kafka_clients.admin(settings)
    await admin.start()
    try:
        if topic not in await admin.list_topics():  # all topics: no auto-creation
            return []
        (description,) = await admin.describe_topics([topic])
        return sorted(int(partition["partition"]) for partition in description["partitions"])
    finally:
        await admin.close()


def trim_batch(batch: Batch, ends: dict[TopicPartition, int]) -> Batch:
    """The records of ``batch`` before the end offsets taken at the start."""
    return {
        tp: [record for record in records if record.offset < ends[tp]]
        for tp, records in batch.items()
        if tp in ends
    }


class _Reader:
    """Reads the assigned partitions from their beginning to ``ends`` and writes them."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        store: Store,
        stop: asyncio.Event,
        backoff: Backoff,
        on_progress: Callable[[RebuildProgress], None] | None,
    ) -> None:
        self.consumer, self.store, self.stop, self.backoff = consumer, store, stop, backoff
        self.on_progress = on_progress
        self.starts: dict[TopicPartition, int] = {}
        self.ends: dict[TopicPartition, int] = {}
        self.events = self.skipped = self.rows = 0

    @property
    def total(self) -> int:
        return sum(self.ends[tp] - self.starts[tp] for tp in self.ends)

    async def start(self, settings: Settings, topic: str) -> None:
        """Assign every partition of ``topic`` at its beginning; note where each ends now."""
        numbers = await _partitions_of(settings, topic)
        if not numbers:
            raise RebuildRefused(f"the topic {topic} does not exist on the broker")
        partitions = [TopicPartition(topic, number) for number in numbers]
        self.consumer.assign(partitions)
        self.starts = await self.consumer.beginning_offsets(partitions)
        self.ends = await self.consumer.end_offsets(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        log.info(
            "rebuild: reading %s from the beginning, %d partitions, %d offsets",
            topic, len(partitions), self.total, extra={"topic": topic, "offsets": self.total},
        )  # fmt: skip

    async def run(self, batch_size: int) -> bool:
        """Read and write until every partition reached its end; False if stopped first."""
        while not self.stop.is_set():
            remaining = await self._remaining()
            self._report(remaining)
            if remaining == 0:
                return True
            batch = trim_batch(
                await self.consumer.getmany(timeout_ms=500, max_records=batch_size), self.ends
            )
            records = sum(len(records) for records in batch.values())
            if not records:
                continue
            events = decode_batch(batch)
            rows = await write_batch(self.consumer, self.store, events, self.stop, self.backoff)
            if rows is None:
                return False
            self.events += len(events)
            self.skipped += records - len(events)
            self.rows += rows
        return False

    async def _remaining(self) -> int:
        """Offsets still to read; a partition at its end is paused (nothing more to fetch)."""
        remaining = 0
        for tp, end in self.ends.items():
            left = max(0, end - await self.consumer.position(tp))
            if left == 0:
                self.consumer.pause(tp)
            remaining += left
        return remaining

    def _report(self, remaining: int) -> None:
        if self.on_progress is not None:
            progress = RebuildProgress(self.total - remaining, self.total, self.events, self.rows)
            self.on_progress(progress)
