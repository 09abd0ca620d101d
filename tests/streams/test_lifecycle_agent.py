"""The lifecycle agent's batching on a Faust memory channel: which events a stop acks.

Faust's stream, buffering and acking are real; the tables are dicts and the producer a list
that can hold a publish forever, as a full producer buffer does while the worker stops.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from faust.types import TP, Message

from schemas.records import SmsCreated, SmsStatusEvent
from schemas.topics import Topics
from streams.lifecycle.agents import LifecycleAgent
from streams.lifecycle.batch import WriteBehind
from streams.lifecycle.processor import LifecycleProcessor
from streams.lifecycle.tables import HeldTable, RecordTable
from tests.streams.factories import MESSAGE_SID, create_record
from tests.streams.test_batches import Acks, deliver, memory_app
from tests.streams.test_lifecycle_processor import RULES, ListPublisher, callback

SID = MESSAGE_SID.encode()


@dataclass
class StallingPublisher(ListPublisher):
    """Takes ``stall_after`` versions, then waits forever on the next one."""

    stall_after: int = 1_000_000
    stalled: asyncio.Event = field(default_factory=asyncio.Event)

    async def status(self, event: SmsStatusEvent) -> None:
        if len(self.statuses) >= self.stall_after:
            self.stalled.set()
            await asyncio.Event().wait()
        await super().status(event)


@dataclass
class Run:
    """One life of the agent: its stream (and what it acked), what it published."""

    agent: LifecycleAgent
    acks: Acks
    published: StallingPublisher


@pytest.fixture
def agent() -> LifecycleAgent:
    lifecycle = memory_app().agents["track_lifecycle"].fun.__self__
    assert isinstance(lifecycle, LifecycleAgent)
    return lifecycle


def start(agent: LifecycleAgent, records: dict[bytes, bytes], published: StallingPublisher) -> Run:
    """A fresh stream over ``records`` (the table as the last flush left it)."""
    agent.batched = tuple(WriteBehind(table, lambda _: None) for table in (records, {}))
    agent.processor = LifecycleProcessor(
        RecordTable(agent.batched[0]), HeldTable(agent.batched[1]), RULES, published
    )
    return Run(agent, Acks(agent.app), published)


def messages(agent: LifecycleAgent) -> list[Message]:
    """A created event and its two callbacks, offsets 0, 1, 2 of one partition."""
    topics = {source: name for name, source in agent.sources.items()}
    created = SmsCreated(**create_record().model_dump())
    values = [
        ("created", Topics.CREATED.codec.encode(created)),
        ("callback", Topics.CALLBACKS.codec.encode(callback("sent", 1))),
        ("callback", Topics.CALLBACKS.codec.encode(callback("delivered", 2))),
    ]
    return [
        Message(topics[source], 0, offset, 0.0, 0, None, SID, value, None, tp=TP(topics[source], 0),
                generation_id=agent.app.consumer_generation_id)
        for offset, (source, value) in enumerate(values)
    ]  # fmt: skip


async def run_over(run: Run, batch: list[Message]) -> asyncio.Task[None]:
    task = asyncio.create_task(run.agent.run(run.acks.stream))
    await deliver(run.acks.stream, batch)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stop_while_a_batch_waits_on_the_producer_acks_none_of_it(
    agent: LifecycleAgent,
) -> None:
    """With ``take_events`` the stop acked all three events (its ``finally`` runs when the
    generator is closed): the consumer committed them, and the replay below never came."""
    records: dict[bytes, bytes] = {}
    first = start(agent, records, StallingPublisher(stall_after=1))
    batch = messages(agent)
    task = await run_over(first, batch)
    await asyncio.wait_for(first.published.stalled.wait(), 5)
    await stop(task)
    await first.acks.stream.stop()
    assert first.acks.acked == []
    assert records == {}  # the batch's writes were never handed over

    replay = start(agent, records, StallingPublisher())
    task = await run_over(replay, [m for m in batch if m.offset not in first.acks.acked])
    await replay.acks.until(len(batch))
    await stop(task)
    assert replay.acks.acked == [0, 1, 2]
    assert [e.version for e in replay.published.statuses] == [1, 2, 3]
    assert agent.processor.records.get(SID) is not None
    # A version published before the stop is published again with the same content.
    assert replay.published.statuses[0] == first.published.statuses[0]
