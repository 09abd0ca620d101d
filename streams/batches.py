"""Batches of a Faust stream's events, taken with no timer while the stream is idle.

Faust's ``take(n, within=t)`` and ``noack_take`` wake every ``t`` seconds whether or not an
event came (and mode's ``wait_first`` creates three tasks per wake): 200 wakes a second for
a 5 ms window, most of an idle worker's CPU. :func:`event_batches` waits for a batch's first
event without a timer, then gives the batch ``within`` seconds from that event (or until it
holds ``size``) to fill. A lone event waits at most ``within``, as before.

Like ``noack_take``, it takes the stream's events with acks disabled (a processor of the
stream fills the batch while the stream is drained in the background): nothing is acked
unless the caller acks it. Faust commits only up to the first unacked offset, so an event
never acked is redelivered after a restart.

Faust's ``take_events`` acks every event of a batch in its ``finally``: when the generator is
closed (a worker stopped with SIGTERM while a batch waits on the producer, an agent that
crashes), the events it never handled are acked all the same, and the consumer commits
them: they are never seen again. :func:`finished_batches` acks a batch's events only when the
code that handles it asks for the next one, so a batch cut short is redelivered from its
first event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import faust


class BatchTaker:
    """Fills batches from ``stream`` (a ``faust.Stream``) through a processor of its own.

    The processor runs in the stream's background drainer, one event at a time; it waits
    while a full batch, or one being handled, is not yet given back (asking for the next
    batch gives it back), so a batch never holds more than ``size`` events."""

    def __init__(self, stream: Any, size: int, within: float) -> None:
        self.stream, self.size, self.within = stream, size, within
        self._events: list[faust.EventT[Any]] = []
        self._first_at = 0.0
        self._open = asyncio.Event()  # the processor may add to the batch
        self._wake: asyncio.Future[None] | None = None  # the loop waits on it
        self._acks_were = True

    def attach(self) -> None:
        """Take the stream's events from now on, acks disabled, drained in the background."""
        self._acks_were, self.stream.enable_acks = self.stream.enable_acks, False
        self.stream.add_processor(self._add)
        self.stream._enable_passive(aiter(self.stream.channel))
        self._open.set()

    def detach(self) -> None:
        self.stream.enable_acks = self._acks_were
        with contextlib.suppress(ValueError):
            self.stream._processors.remove(self._add)
        self._open.set()  # a drainer waiting in ``_add`` goes on (its event stays unacked)

    async def next_batch(self, stopped: asyncio.Future[None]) -> list[faust.EventT[Any]]:
        """The next batch (which gives the previous one back); empty once ``stopped``."""
        self._open.set()
        if not self._events:
            await self._wait(stopped, None)  # no timer: the first event wakes us
        remaining = self.within - (asyncio.get_running_loop().time() - self._first_at)
        if self._events and len(self._events) < self.size and remaining > 0:
            await self._wait(stopped, remaining)  # full, or the window closes
        if stopped.done():
            return []
        batch, self._events = self._events, []
        self._open.clear()  # until the caller gives this batch back
        return batch

    async def _wait(self, stopped: asyncio.Future[None], seconds: float | None) -> None:
        """Until ``_add`` wakes us, the stream stops, or ``seconds`` (None: no timer)."""
        self._wake = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait(
                (self._wake, stopped), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._wake = None

    async def _add(self, value: Any) -> Any:
        """The stream's processor: the current event joins the batch."""
        await self._open.wait()
        event = self.stream.current_event
        if event is None:
            raise RuntimeError("a batch found the stream's current event is None")
        self._events.append(event)
        count = len(self._events)
        if count == 1:
            self._first_at = asyncio.get_running_loop().time()
        if count >= self.size:
            self._open.clear()
        wake = self._wake
        if (count == 1 or count >= self.size) and wake is not None and not wake.done():
            wake.set_result(None)
        return value


async def event_batches(
    stream: Any, size: int, within: float
) -> AsyncGenerator[list[faust.EventT[Any]], None]:
    """Batches of at most ``size`` events of ``stream`` (a ``faust.Stream``): whatever came
    within ``within`` seconds of a batch's first event. None is acked: the caller acks each
    event when it is done with it. Asking for the next batch gives the previous one back."""
    taker = BatchTaker(stream, size, within)
    stopped = asyncio.ensure_future(stream.wait_until_stopped())
    taker.attach()
    try:
        while batch := await taker.next_batch(stopped):
            yield batch
    finally:
        stopped.cancel()
        if stopped.done() and not stopped.cancelled():
            stopped.exception()  # retrieved: mode asserts a stop it may have reset since
        taker.detach()


async def finished_batches(
    stream: Any, size: int, within: float
) -> AsyncIterator[Sequence[faust.EventT[Any]]]:
    """Batches of at most ``size`` events (or what came within ``within`` seconds of the
    first). A batch's events are acked when the caller asks for the next batch: never when
    it stops before (cancelled, or raised), since the generator is then closed at its
    ``yield``.

    ``stream`` is a ``faust.Stream`` (``StreamT`` lacks ``_enable_passive``)."""
    async with contextlib.aclosing(event_batches(stream, size, within)) as batches:
        async for events in batches:
            yield events
            for event in events:
                await stream.ack(event)
