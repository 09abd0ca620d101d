"""Faust table helpers shared by the agents: writes bound to their event, awaitable writes."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import faust
from faust.streams import _current_event


def bind_event(event: faust.EventT[Any]) -> None:
    """Make ``event`` the current event of this task, for table writes from a batch.

    Faust sends a table's changelog to the partition of the current event; inside a
    ``take_events`` batch that must be the event being handled, not the batch's last one.
    Only the context variable is set: the stream's own ``current_event`` attribute belongs
    to its background buffering and must not be touched.
    """
    _current_event.set(weakref.ref(event))


class ChangelogTable(faust.Table[bytes, bytes]):
    """A Faust table whose writes can be awaited until they are in Kafka."""

    _last_write: asyncio.Future[Any] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self._last_write = future
        return future

    def put(self, key: Any, value: Any) -> asyncio.Future[Any]:
        """``table[key] = value``; the future is done when the broker has acked the
        changelog message (acks=all), unlike Faust's buffer flush, which gives up after
        100 ms and waits for everything else in flight too."""
        self[key] = value
        assert self._last_write is not None
        return self._last_write


def changelog_table(app: faust.App, name: str, **kwargs: Any) -> ChangelogTable:
    """Declare a :class:`ChangelogTable` on ``app``, as ``app.Table`` would."""
    table = ChangelogTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    app.tables.add(table)
    return table
