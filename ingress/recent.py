"""Records this ingress answered 201 for in the last minutes, for read-your-writes.

A ``GET /v1/sms/{id}`` right after the 201 must find the record, but the sink writes it
to the store a few milliseconds later. Instead of writing the store on the send path (an
SQLite write lock per send, contended with the sink), the ingress remembers what it just
answered and serves it until the store has it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID

from schemas.records import SmsRecord


class RecentRecords:
    """A bounded, expiring map of record id → the record as created."""

    def __init__(self, size: int = 10_000, ttl_s: float = 300.0) -> None:
        self.size, self.ttl_s = size, ttl_s
        self._items: OrderedDict[UUID, tuple[float, SmsRecord]] = OrderedDict()

    def put(self, record: SmsRecord) -> None:
        self._items[record.id] = (time.monotonic() + self.ttl_s, record)
        self._items.move_to_end(record.id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, record_id: UUID) -> SmsRecord | None:
        item = self._items.get(record_id)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[record_id]
            return None
        return item[1]
