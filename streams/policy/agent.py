"""The policy timer: scheduled messages whose rules changed are canceled at Twilio.

Every :data:`EVERY_S` it looks at the scheduled records of ``record_by_sid`` this worker
holds, when the configuration changed since the last look (policy changes are configuration
changes) and at least every :data:`RESCAN_EVERY_S` otherwise (a record created from a request
checked just before a change). For each one :func:`~streams.policy.decision.cancel_reason`
no longer allows, it orders a :class:`~schemas.events.CancelRequest` with the reason on
``sms.send-requests``: the send agent cancels it like an API cancel, and the record turns
``canceled`` through the lifecycle. An order is not repeated within :data:`RETRY_AFTER_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol

from schemas.events import CancelRequest
from schemas.records import SmsStatus
from schemas.topics import Topics
from streams.lifecycle.tables import LifecycleState, RecordHead
from streams.policy.decision import Policies, cancel_reason
from streams.worker import Worker

log = logging.getLogger(__name__)

EVERY_S = 2.0
RESCAN_EVERY_S = 60.0
RETRY_AFTER_S = 60.0


class Records(Protocol):
    def scan_heads(self) -> Iterator[tuple[bytes, RecordHead]]: ...
    def get(self, sid: bytes) -> LifecycleState | None: ...


class View(Policies, Protocol):
    """The rules' view, and how far the configuration has been applied."""

    @property
    def applied_offset(self) -> int: ...


class PolicyCancels:
    """The timer's steps: whether to look, what to cancel, the orders."""

    def __init__(
        self,
        config: View,
        records: Records,
        order: Callable[[CancelRequest], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.records, self.order = config, records, order
        self.clock = clock
        self._looked_at: tuple[int, float] = (-2, 0.0)
        self._ordered: dict[bytes, float] = {}

    async def tick(self) -> int:
        """Look if it is time; how many cancels were ordered."""
        now = self.clock()
        offset, last = self._looked_at
        if offset == self.config.applied_offset and now - last < RESCAN_EVERY_S:
            return 0
        self._looked_at = (self.config.applied_offset, now)
        self._ordered = {s: t for s, t in self._ordered.items() if now - t < RETRY_AFTER_S}
        ordered = 0
        for sid in await self._scheduled():
            if sid not in self._ordered and await self._cancel_if_disallowed(sid):
                self._ordered[sid] = now
                ordered += 1
        return ordered

    async def _scheduled(self) -> list[bytes]:
        found = []
        for scanned, (sid, head) in enumerate(self.records.scan_heads(), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)  # a big table must not starve the event loop
            if head.status is SmsStatus.SCHEDULED:
                found.append(sid)
        return found

    async def _cancel_if_disallowed(self, sid: bytes) -> bool:
        state = self.records.get(sid)
        if state is None or state.record.status is not SmsStatus.SCHEDULED:
            return False
        reason = cancel_reason(state.record, self.config)
        if reason is None:
            return False
        record = state.record
        log.info(
            "canceling scheduled sid=%s: %s", record.message_sid, reason,
            extra={"message_sid": record.message_sid, "record_id": str(record.id)},
        )  # fmt: skip
        await self.order(CancelRequest(record=record, received_at=_now(), reason=reason))
        return True


def register(worker: Worker, records: Records) -> PolicyCancels:
    """Declare the policy timer on the worker's app."""
    topic = worker.topic(Topics.SEND_REQUESTS.base_name)
    codec = Topics.SEND_REQUESTS.codec

    async def order(cancel: CancelRequest) -> None:
        await topic.send(key=cancel.record.id.bytes, value=codec.encode(cancel))

    policy = PolicyCancels(worker.config, records, order)
    worker.app.timer(interval=EVERY_S)(policy.tick)
    return policy


def _now() -> datetime:
    return datetime.now(UTC)
