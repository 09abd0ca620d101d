"""Faust table helpers shared by the agents: writes bound to their event, awaitable writes,
reads in one store lookup."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

import faust
from faust.streams import _current_event
from faust.types import TableT


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


class Scannable(Protocol):
    """A table's scans."""

    def keys(self) -> Iterable[bytes]: ...
    def values(self) -> Iterable[bytes]: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class ScansBelow:
    """``keys``, ``values`` and ``items`` of the table underneath, as they are."""

    _table: Scannable

    def keys(self) -> Iterable[bytes]:
        return self._table.keys()

    def values(self) -> Iterable[bytes]:
        return self._table.values()

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        return self._table.items()


class StoreReads(ScansBelow):
    """A Faust table whose reads go straight to its store: one lookup per read.

    ``table.get(key)`` is ``Mapping.get`` over the table's ``__getitem__``, which asks the
    store whether it holds the key, then reads it (two RocksDB reads, and an absent key goes
    through ``__missing__`` and a ``KeyError``); the store's own ``get`` reads once, from the
    partition of the current event as the table would. Writes and deletions go through the
    table, so they reach its changelog as before.
    """

    _table: TableT[bytes, bytes]

    def __init__(self, table: TableT[bytes, bytes]) -> None:
        self._table = table
        self._store = table.data

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._store.get(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._table[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._table[key]
