"""The lifecycle agent's two tables, typed: ``record_by_sid`` and ``held_by_sid``.

Both are keyed by ``message_sid`` (bytes). Every read and write of their values goes through
:class:`RecordTable` and :class:`HeldTable`, the one place that knows their encoding: one
:class:`~schemas.topics.Codec` per table (:data:`RECORDS`, :data:`HELD`). The table underneath
is anything with ``get``, item assignment and deletion, ``keys``, ``values`` and ``items``: the
worker's Faust tables, a dict in unit tests.

A ``rocksdb://`` Faust table reads from, and writes its changelog to, the partition of the
*current event* (faust/stores/rocksdb.py ``_get``): the agent reads and writes a key only while
it handles an event of that key. Timers have no current event; their reads search every
partition, and they never write.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.events import RawCallback
from schemas.records import SmsRecord, SmsStatus, SmsStatusEvent, quiet_since
from schemas.topics import Codec

log = logging.getLogger(__name__)


class LifecycleState(BaseModel):
    """Value of ``record_by_sid``: the record, its version, the receipt that made it, and the
    subaccount and Messaging Service the message was sent through (from its ``sms.created``
    event; ``None`` in states written before they were kept)."""

    model_config = ConfigDict(frozen=True)

    record: SmsRecord
    version: int
    last_receipt: str | None = None
    account_sid: str | None = None
    messaging_service_sid: str | None = None

    def status_event(self) -> SmsStatusEvent:
        """This version of the record as a value of ``sms.status``."""
        return SmsStatusEvent(**self.record.model_dump(), version=self.version)


class Held(BaseModel):
    """Value of ``held_by_sid``: callbacks that arrived before their message was recorded."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    callbacks: tuple[RawCallback, ...]


class RecordHead(BaseModel):
    """The fields of a stored record that eviction, repair and the record gauge look at."""

    model_config = ConfigDict(frozen=True)

    status: SmsStatus
    updated_at: datetime
    send_at: datetime | None = None

    @property
    def quiet_since(self) -> datetime:
        return quiet_since(self.updated_at, self.send_at)


class _StoredHead(BaseModel):
    """A ``record_by_sid`` value read for its :class:`RecordHead` alone: the same JSON as
    :class:`LifecycleState`, the other fields skipped (less than half the cost of decoding
    the whole state, which matters to a scan of millions)."""

    record: RecordHead


RECORDS: Codec[LifecycleState] = Codec(LifecycleState)
HELD: Codec[Held] = Codec(Held)
_HEADS: Codec[_StoredHead] = Codec(_StoredHead)


class Table(Protocol):
    """What the wrappers need of the table under them."""

    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...
    def keys(self) -> Iterable[bytes]: ...
    def values(self) -> Iterable[bytes]: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class RecordTable:
    """``record_by_sid``: message sid → :class:`LifecycleState`."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, sid: bytes) -> LifecycleState | None:
        """The state of ``sid``; raises ``pydantic.ValidationError`` on an undecodable value
        (the event that reads it is then skipped as poison, the value left as it is)."""
        value = self._table.get(sid)
        return None if value is None else RECORDS.decode(value)

    def put(self, sid: bytes, state: LifecycleState) -> None:
        self._table[sid] = RECORDS.encode(state)

    def delete(self, sid: bytes) -> None:
        del self._table[sid]

    def head(self, sid: bytes) -> RecordHead | None:
        """Status and last change of ``sid``; ``None`` when absent or undecodable."""
        return _head(self._table.get(sid))

    def scan_heads(self) -> Iterator[tuple[bytes, RecordHead]]:
        """The head of every decodable record, over a snapshot of the keys: the caller may
        await between items. Values are read as they are when reached (records removed
        since the snapshot are skipped). Keys, not values, are copied: the table may hold
        millions of records."""
        for sid in list(self._table.keys()):
            head = self.head(sid)
            if head is not None:
                yield sid, head

    def count_by_status(self) -> Counter[SmsStatus]:
        """Records by status, undecodable values left out. One synchronous pass over the
        table: nothing changes it meanwhile, so the counts are exact at one instant."""
        tally: Counter[SmsStatus] = Counter()
        for value in self._table.values():
            head = _head(value)
            if head is not None:
                tally[head.status] += 1
        return tally


def _head(value: bytes | None) -> RecordHead | None:
    if value is None:
        return None
    try:
        return _HEADS.decode(value).record
    except ValidationError:
        return None


class HeldTable:
    """``held_by_sid``: message sid → :class:`Held`, and how many sids are held.

    Counting a Faust table is a full scan, so the count is kept beside it: writes and
    deletions through this wrapper step it, and every :meth:`scan` sets it from the table
    (after a restart or a rebalance it is too low until the next scan).
    """

    def __init__(self, table: Table) -> None:
        self._table = table
        self._sids: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._sids)

    def get(self, sid: bytes) -> Held | None:
        """The callbacks held for ``sid``; raises ``pydantic.ValidationError`` on an
        undecodable value."""
        value = self._table.get(sid)
        return None if value is None else HELD.decode(value)

    def put(self, sid: bytes, held: Held) -> None:
        self._table[sid] = HELD.encode(held)
        self._sids.add(sid)

    def delete(self, sid: bytes) -> None:
        del self._table[sid]
        self._sids.discard(sid)

    def pop(self, sid: bytes) -> tuple[RawCallback, ...]:
        """Remove ``sid``'s entry; the callbacks it held (none when it had no entry)."""
        held = self.get(sid)
        if held is None:
            return ()
        self.delete(sid)
        return held.callbacks

    def scan(self) -> list[tuple[bytes, Held]]:
        """A snapshot of every decodable entry (the caller may await while it walks it);
        the count is set from the table."""
        entries = list(self._table.items())
        self._sids = {sid for sid, _ in entries}
        decoded = []
        for sid, value in entries:
            try:
                decoded.append((sid, HELD.decode(value)))
            except ValidationError:
                log.error(
                    "held_by_sid holds an undecodable value for sid=%s",
                    sid.decode(errors="replace"),
                )
        return decoded
