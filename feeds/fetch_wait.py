"""A consumer's fetch wait chosen per fetch: long when the fetch names every partition of its
broker that the consumer reads, short when it leaves one out.

aiokafka keeps one fetch in flight per broker. It names only the partitions with nothing
buffered (and not paused), and a partition left out is fetched again only once that fetch has
returned. So a long wait on a fetch of idle partitions delays the busy partitions whose buffers
drain meanwhile; that is why the worker's wait is short (SMSLANE_KAFKA_FETCH_MAX_WAIT_MS).
But when the fetch names every partition, nothing waits behind it: new data on any of them
answers it at once, and the wait only bounds how often an idle consumer asks. Then
:data:`IDLE_FETCH_WAIT_MS` applies.

The long wait also waits for quiet: only once no fetch has brought records for
:data:`IDLE_AFTER_S`. Under load a fetch that happens to name everything (every buffer just
drained) keeps the short wait, so a busy consumer fetches exactly as it did before this rule.

A partition the reader has set aside (``unread``: Faust's paused partitions, such as its
changelogs once recovered) keeps one batch buffered that nobody drains until the next
rebalance, which cancels the fetch in flight anyway: leaving it out delays nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest

#: The wait of a fetch naming every partition the consumer reads on that broker: aiokafka's
#: own default. An idle consumer then asks twice a second (40 times at 25 ms); longer would
#: save little next to its other periodic work (heartbeats, commits, the config feed's polls).
IDLE_FETCH_WAIT_MS = 500
#: How long without records before a fetch may wait :data:`IDLE_FETCH_WAIT_MS`.
IDLE_AFTER_S = 1.0


def fetch_wait_ms(
    left_out: Iterable[TopicPartition],
    unread: Container[TopicPartition],
    *,
    quiet_s: float,
    busy_ms: int,
    idle_ms: int,
) -> int:
    """The wait of a fetch that leaves ``left_out`` (partitions of its broker it does not
    name) out, ``quiet_s`` after records last came: ``busy_ms`` if one of them will be read
    before the fetch returns or records came within :data:`IDLE_AFTER_S`, else ``idle_ms``."""
    if quiet_s < IDLE_AFTER_S or any(tp not in unread for tp in left_out):
        return busy_ms
    return idle_ms


def _nothing_unread() -> Container[TopicPartition]:
    return ()


class IdleWaitFetcher(Fetcher):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's fetcher with :func:`fetch_wait_ms` applied to each fetch it builds."""

    _idle_wait_ms: int = IDLE_FETCH_WAIT_MS
    _unread: Callable[[], Container[TopicPartition]] = staticmethod(_nothing_unread)
    #: ``time.monotonic()`` when a fetch last brought records (or an error).
    _last_records: float = float("-inf")

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        brought = bool(await super()._proc_fetch_request(assignment, node_id, request))
        if brought:
            self._last_records = time.monotonic()
        return brought

    def _get_actions_per_node(self, assignment: Any) -> Any:
        actions = super()._get_actions_per_node(assignment)
        for node_id, request in actions[0]:
            named = {TopicPartition(topic, part[0]) for topic, parts in request.topics
                     for part in parts}  # fmt: skip
            left_out = (
                tp for tp in assignment.tps
                if tp not in named and self._select_read_replica(tp) == node_id
            )  # fmt: skip
            request._max_wait_ms = fetch_wait_ms(
                left_out, self._unread(), quiet_s=time.monotonic() - self._last_records,
                busy_ms=self._fetch_max_wait_ms, idle_ms=self._idle_wait_ms,
            )  # fmt: skip
        return actions


def check_aiokafka() -> None:
    """Fail loudly if aiokafka's fetcher no longer looks the way :class:`IdleWaitFetcher`
    relies on (a private API: each fetch built by ``_get_actions_per_node`` as a
    ``FetchRequest`` whose wait is ``_max_wait_ms``)."""
    request = FetchRequest(7, 1, 1, 0, [])
    relied_on = (
        "_get_actions_per_node", "_select_read_replica", "_fetch_requests_routine",
        "_proc_fetch_request",
    )  # fmt: skip
    missing = [name for name in relied_on if not callable(getattr(Fetcher, name, None))]
    if missing or getattr(request, "_max_wait_ms", None) != 7:
        raise RuntimeError(
            f"aiokafka changed: its Fetcher or FetchRequest is not what {__name__} expects "
            f"(missing {missing or 'FetchRequest._max_wait_ms'})"
        )


def use_idle_wait(
    consumer: Any,
    unread: Callable[[], Container[TopicPartition]] = _nothing_unread,
    idle_ms: int = IDLE_FETCH_WAIT_MS,
) -> None:
    """Make the started aiokafka ``consumer``'s fetcher an :class:`IdleWaitFetcher`: its
    fetches wait ``idle_ms`` when they name every partition of their broker but ``unread``'s,
    the consumer's ``fetch_max_wait_ms`` otherwise. aiokafka builds its fetcher inside
    ``start()``, so the instance changes class; the fetch loop looks the method up per fetch."""
    check_aiokafka()
    fetcher: Any = getattr(consumer, "_fetcher", None)
    if type(fetcher) is not Fetcher:
        raise RuntimeError(f"aiokafka changed: a started consumer's _fetcher is {fetcher!r}")
    fetcher.__class__ = IdleWaitFetcher
    fetcher._idle_wait_ms = idle_ms
    fetcher._unread = unread
