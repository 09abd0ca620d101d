"""The worker's index of its lanes: when each is due, without reading the table.

The ``webhook_lanes`` table holds each lane's events (their bodies included); decoding all of
them at every dispatch would cost in proportion to a dead endpoint's backlog. The index keeps
only each lane's endpoint, next attempt time and head event time. The agent updates it with
every lane it writes; a full scan of the table rebuilds it after a rebalance (the partitions
held changed, and a recovered table was not written by this agent) and every
:data:`REBUILD_EVERY_S`, so a lane it missed waits at most that long.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from streams.webhooks.lanes import Lane

REBUILD_EVERY_S = 60.0


class DueEntry(NamedTuple):
    endpoint_id: uuid.UUID
    next_attempt_at: datetime
    #: When the head event happened (for the oldest-pending gauge).
    head_created_at: datetime


class LaneIndex:
    """Lane key → :class:`DueEntry`, for the lanes this worker holds."""

    def __init__(self) -> None:
        self.entries: dict[bytes, DueEntry] = {}
        self._generation: int | None = None
        self._built_at = 0.0

    def put(self, key: bytes, lane: Lane | None) -> None:
        """The lane ``key`` as it now is (None: gone)."""
        if lane is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = DueEntry(
                lane.endpoint_id, lane.next_attempt_at, lane.head.created_at
            )

    def stale(self, generation: int) -> bool:
        """Whether a rebalance happened since the last rebuild, or it is time for one."""
        return (
            generation != self._generation or time.monotonic() - self._built_at >= REBUILD_EVERY_S
        )

    def rebuild(self, lanes: Iterable[tuple[bytes, Lane]], generation: int) -> None:
        """Index exactly ``lanes`` (a scan of the table)."""
        self.entries = {}
        for key, lane in lanes:
            self.put(key, lane)
        self._generation, self._built_at = generation, time.monotonic()

    def due(self, now: datetime) -> list[tuple[bytes, uuid.UUID]]:
        """The lanes due at ``now``, with their endpoint."""
        return [(key, e.endpoint_id) for key, e in self.entries.items() if e.next_attempt_at <= now]
