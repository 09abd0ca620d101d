"""A table's writes held for the length of one batch: one write per key per batch.

The lifecycle agent takes events in batches. Under each of its typed tables it puts a
:class:`WriteBehind`: within a batch, a key's reads see the batch's own writes, and its
writes stay in memory until :meth:`WriteBehind.flush` hands the table (and so its changelog)
only each key's last value. A message whose ``sent`` and ``delivered`` callbacks fall in one
batch then costs one changelog record, not two.

Nothing is lost by holding writes: the batch's events are acked only after the flush, and
Faust flushes its producer before it commits offsets, so a crash before the flush replays
the batch from the table as it was before it.

Writes of a key go to the table with that key's *owner* bound (:meth:`WriteBehind.own`): the
agent passes each event there before handling it, and a ``rocksdb://`` Faust table writes to
(and reads from) the partition of the bound event. Every event of a key comes from the same
partition (the agent's topics are co-partitioned), so any of them will do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from streams import metrics
from streams.lifecycle.tables import Table
from streams.tables import ScansBelow

log = logging.getLogger(__name__)

Owner = TypeVar("Owner")

#: A pending deletion.
_DELETED = None


class WriteBehind(ScansBelow, Generic[Owner]):
    """A :class:`~streams.lifecycle.tables.Table` over another, its writes held until
    :meth:`flush`. Scans (``keys``, ``values``, ``items``) read the table underneath: they
    serve the housekeeping timers, whose orders are checked again when they are applied."""

    _table: Table

    def __init__(self, table: Table, bind: Callable[[Owner], None]) -> None:
        self._table = table
        self._bind = bind
        self._pending: dict[bytes, bytes | None] = {}
        self._owners: dict[bytes, Owner] = {}
        self._owner: Owner | None = None

    def own(self, owner: Owner) -> None:
        """Bind ``owner`` (the event about to be handled): reads of the table underneath go
        to its partition, and so will the writes of every key it writes."""
        self._owner = owner
        self._bind(owner)

    def get(self, key: bytes) -> bytes | None:
        if key in self._pending:
            return self._pending[key]
        return self._table.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._hold(key, value)

    def __delitem__(self, key: bytes) -> None:
        self._hold(key, _DELETED)

    def _hold(self, key: bytes, value: bytes | None) -> None:
        if self._owner is None:
            raise RuntimeError("a write outside a batch: no event owns it")
        self._pending[key] = value
        self._owners[key] = self._owner

    @property
    def pending(self) -> int:
        """Keys written since the last flush."""
        return len(self._pending)

    def flush(self) -> None:
        """Write each key's last value of the batch to the table underneath (a deletion
        of a key it does not hold is skipped), each with its owner bound. A write that
        fails is logged and counted as a poison event; the others still happen."""
        pending, owners = self._pending, self._owners
        self._pending, self._owners, self._owner = {}, {}, None
        for key, value in pending.items():
            self._bind(owners[key])
            try:
                self._write(key, value)
            except Exception:
                # As for an event that fails while handled one at a time: logged, counted,
                # skipped; the other keys of the batch are still written.
                log.exception("could not write sid=%s at the end of a batch", key.decode())
                metrics.lifecycle_event("poison")

    def _write(self, key: bytes, value: bytes | None) -> None:
        if value is not None:
            self._table[key] = value
        elif self._table.get(key) is not None:
            del self._table[key]
