"""Batches acked once handled (streams.batches), on a Faust memory channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from feeds.secret_box import new_key
from schemas.settings import Settings
from streams.app import create_app
from streams.batches import event_batches, finished_batches
from streams.reconcile.agent import ReconcileAgent


class Acks:
    """A stream over a fresh channel whose acks are listed (by offset) as well as done."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.stream: Any = app.channel(key_type=bytes, value_type=bytes).stream()
        self.acked: list[int] = []
        self.stream.ack = self.ack
        self._more = asyncio.Event()

    async def ack(self, event: faust.EventT[Any]) -> bool:
        self.acked.append(event.message.offset)
        self._more.set()
        return await type(self.stream).ack(self.stream, event)

    async def until(self, count: int) -> None:
        """Wait for ``count`` acks."""
        while len(self.acked) < count:
            self._more.clear()
            await asyncio.wait_for(self._more.wait(), 5)

    async def gathered(self) -> None:
        """Until the stream took every message delivered (into a batch, say)."""
        for _ in range(1000):
            if self.stream.channel.queue.empty():
                return
            await asyncio.sleep(0)
        raise AssertionError("the stream took none of the messages")

    async def deliver(self, count: int) -> None:
        """``count`` messages of a topic the app reads, as its consumer hands them over (of
        the current generation: Faust's stream drops the others)."""
        topic = "smslane.sms.reconcile"
        await deliver(self.stream, [
            Message(topic, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(topic, 0),
                    generation_id=self.app.consumer_generation_id)
            for offset in range(count)
        ])  # fmt: skip


async def deliver(stream: Any, messages: list[Message]) -> None:
    """Hand ``messages`` to ``stream`` as the consumer does (onto the queue of its channel,
    the iterator ``channel.stream()`` made)."""
    for message in messages:
        await stream.channel.deliver(message)


def memory_app() -> faust.App:
    """The worker's app as built, on ``memory://`` tables, never started."""
    worker = create_app(Settings(table_store="memory://", secret_keys=(new_key(),)))
    worker.app.flow_control.resume()
    return worker.app


@pytest.fixture
def app() -> faust.App:
    return memory_app()


async def test_a_batch_is_acked_when_the_next_is_asked_for(app: faust.App) -> None:
    acks = Acks(app)
    handled: list[int] = []

    async def consume() -> None:
        async for events in finished_batches(acks.stream, 10, 0.01):
            assert acks.acked == handled  # this batch not yet
            handled.extend(e.message.offset for e in events)

    task = asyncio.create_task(consume())
    await acks.deliver(3)
    await acks.until(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert acks.acked == handled == [0, 1, 2]


async def test_a_batch_whose_handling_raised_is_not_acked(app: faust.App) -> None:
    acks = Acks(app)

    async def consume() -> None:
        async for _ in finished_batches(acks.stream, 10, 0.01):
            raise RuntimeError("a bug")

    task = asyncio.create_task(consume())
    await acks.deliver(2)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(task, 5)
    await acks.stream.stop()
    assert acks.acked == []


async def test_the_reconcile_agent_stopped_mid_batch_acks_none_of_it(app: faust.App) -> None:
    """With ``take_events`` the stop acked the batch: its orders were never asked again."""
    reconcile = app.agents["reconcile_interrupted"].fun.__self__
    assert isinstance(reconcile, ReconcileAgent)
    started = asyncio.Event()

    async def asking_twilio(events: Sequence[faust.EventT[Any]]) -> None:
        started.set()
        await asyncio.Event().wait()  # a Twilio list call that outlives the stop

    reconcile._reconcile = asking_twilio  # type: ignore[method-assign]
    acks = Acks(app)
    task = asyncio.create_task(reconcile.run(acks.stream))
    await acks.deliver(2)
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await acks.stream.stop()
    assert acks.acked == []


async def offsets_of_batches(acks: Acks, size: int, within: float, count: int) -> list[list[int]]:
    """The offsets of each batch ``event_batches`` gives, until ``count`` events came."""
    seen: list[list[int]] = []
    async with contextlib.aclosing(event_batches(acks.stream, size, within)) as batches:
        async for events in batches:
            seen.append([e.message.offset for e in events])
            if sum(map(len, seen)) >= count:
                break
    return seen


async def test_a_batch_never_holds_more_than_its_size(app: faust.App) -> None:
    acks = Acks(app)
    task = asyncio.create_task(offsets_of_batches(acks, 2, 3600.0, 4))
    await acks.deliver(5)
    # A full batch is given at once: the hour-long window never runs out here.
    assert await asyncio.wait_for(task, 5) == [[0, 1], [2, 3]]


async def test_an_idle_stream_leaves_no_timer_running(app: faust.App) -> None:
    """Faust's ``noack_take`` woke every ``within`` with nothing to take (a timer per wake)."""
    acks = Acks(app)
    waiting = asyncio.create_task(offsets_of_batches(acks, 10, 0.01, 1))
    for _ in range(20):  # let the stream start and the batches wait for a first event
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    assert [h for h in loop._scheduled if not h.cancelled()] == []  # type: ignore[attr-defined]
    await acks.deliver(1)
    assert await asyncio.wait_for(waiting, 5) == [[0]]


async def test_a_stopped_stream_ends_the_batches_and_acks_none(app: faust.App) -> None:
    acks = Acks(app)
    handled: list[int] = []

    async def consume() -> None:
        async for events in finished_batches(acks.stream, 10, 3600.0):
            handled.extend(e.message.offset for e in events)

    task = asyncio.create_task(consume())
    await acks.deliver(2)
    await acks.gathered()  # the window still open
    await acks.stream.stop()
    await asyncio.wait_for(task, 5)
    assert handled == acks.acked == []
