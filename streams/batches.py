"""Batches of a Faust stream whose events are acked only once the batch was handled.

Faust's ``take_events`` acks every event of a batch in its ``finally``: when the generator is
closed (a worker stopped with SIGTERM while a batch waits on the producer, an agent that
crashes), the events it never handled are acked all the same, and the consumer commits
them: they are never seen again. :func:`finished_batches` takes batches with
``noack_take`` instead and acks a batch's events only when the code that handles it asks
for the next one, so a batch cut short is redelivered from its first event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust


async def finished_batches(
    stream: Any, size: int, within: float
) -> AsyncIterator[Sequence[faust.EventT[Any]]]:
    """Batches of at most ``size`` events (or what came within ``within`` seconds). A
    batch's events are acked when the caller asks for the next batch: never when it stops
    before (cancelled, or raised), since the generator is then closed at its ``yield``.

    ``stream`` is a ``faust.Stream`` (``StreamT`` lacks ``noack_take``)."""
    async for events in stream.noack_take(size, within=within):
        yield events
        for event in events:
            await stream.ack(event)
