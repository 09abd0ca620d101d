"""The runner's retry delays: exponential, then flat at the cap, never zero."""

from __future__ import annotations

from sinks.runner import Backoff


def test_delays_grow_then_stay_at_the_cap() -> None:
    backoff = Backoff(initial_s=0.5, factor=2.0, max_s=30.0)

    delays = [backoff.delay(attempt) for attempt in range(1, 12)]

    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == 30.0 and max(delays) == 30.0
    assert delays == sorted(delays)
