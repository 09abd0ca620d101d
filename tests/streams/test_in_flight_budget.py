"""The send agent's bound on requests in flight (pure asyncio, no Kafka)."""

from __future__ import annotations

import asyncio

from streams.sending.agents import InFlightBudget


async def test_a_batch_waits_until_its_requests_fit() -> None:
    budget = InFlightBudget(10)
    await budget.take(6)
    waiting = asyncio.create_task(budget.take(5))
    await asyncio.sleep(0)
    assert not waiting.done()  # 6 + 5 > 10
    budget.releaser(6)(None)
    await asyncio.wait_for(waiting, 1.0)
    assert budget.used == 5


async def test_small_batches_are_not_capped_by_their_number() -> None:
    """Twenty one-request batches in flight at once (a bound of 8 batches stalled them)."""
    budget = InFlightBudget(500)
    for _ in range(20):
        await asyncio.wait_for(budget.take(1), 1.0)
    assert budget.used == 20


async def test_a_batch_larger_than_the_limit_goes_alone() -> None:
    budget = InFlightBudget(10)
    await asyncio.wait_for(budget.take(25), 1.0)  # nothing else in flight: never stuck
    waiting = asyncio.create_task(budget.take(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    budget.give_back(25)
    await asyncio.wait_for(waiting, 1.0)
