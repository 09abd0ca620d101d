"""Status repair: records whose callbacks never came are checked against Twilio.

A timer, not an agent: every :func:`interval` it scans ``record_by_sid`` (a snapshot of its
keys) for records still ``pending`` or ``sent`` past ``SMSLANE_STATUS_REPAIR_AFTER_SECONDS``,
fetches at most :data:`MAX_PER_TICK` of them from Twilio (:data:`CONCURRENCY` at a time)
and publishes each answer to ``sms.callbacks`` as the callback Twilio would have sent, so
the lifecycle agent applies it through the same state machine, with the fetch time as its
received time. Each record is checked again later while Twilio reports it unfinished, each
wait twice the last, up to ``decision.MAX_CHECKS``.

With several workers, each checks the records of the partitions it holds (standby copies
included): a record may then be fetched twice, and the second callback changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from feeds.config import ConfigView
from schemas.config import Subaccount
from schemas.events import RawCallback
from schemas.records import record_status
from schemas.topics import Topics
from streams import metrics
from streams.lifecycle.tables import LifecycleState, RecordHead
from streams.repair import decision
from streams.repair.decision import Checked
from streams.sending.provider import ProviderDown, TwilioGateway
from streams.worker import Worker

log = logging.getLogger(__name__)

MAX_PER_TICK = 100
CONCURRENCY = 5


class Records(Protocol):
    """What repair reads of ``record_by_sid``."""

    def scan_heads(self) -> Iterator[tuple[bytes, RecordHead]]: ...
    def get(self, sid: bytes) -> LifecycleState | None: ...


def interval(after: timedelta) -> float:
    """How often the timer runs: a tenth of the wait, between 1 s and 60 s."""
    return max(1.0, min(60.0, after.total_seconds() / 10))


class StatusRepair:
    """The repair timer, one method per step."""

    def __init__(
        self,
        worker: Worker,
        gateway: TwilioGateway,
        records: Records,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.gateway, self.records = gateway, records
        #: What "now" is for the waits (tests move it; scheduled records wait for send_at).
        self.clock = clock
        self.config: ConfigView = worker.config
        self.after = timedelta(seconds=worker.settings.status_repair_after_seconds)
        self.callbacks_topic = worker.topic(Topics.CALLBACKS.base_name)
        self._checked: dict[bytes, Checked] = {}

    async def tick(self) -> None:
        now = self.clock()
        due = await self._due(now)
        if due:
            slots = asyncio.Semaphore(CONCURRENCY)
            await asyncio.gather(*(self._repair(sid, now, slots) for sid in due))
        self._forget_old(now)

    async def _due(self, now: datetime) -> list[bytes]:
        due = []
        for scanned, (sid, head) in enumerate(self.records.scan_heads(), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)  # a big table must not starve the event loop
            checked = self._checked.get(sid)
            if decision.due(head.status, head.quiet_since, checked, now, self.after):
                due.append(sid)
                if len(due) >= MAX_PER_TICK:
                    break
        return due

    async def _repair(self, sid: bytes, now: datetime, slots: asyncio.Semaphore) -> None:
        state = self.records.get(sid)
        if state is None:
            return
        self._checked[sid] = decision.after_check(self._checked.get(sid), now, self.after)
        account = self._account(state)
        if account is None:
            metrics.REPAIRED.labels("no_account").inc()
            log.warning(
                "status repair of %s skipped: subaccount %s is not configured; retried later",
                sid.decode(), state.account_sid or "of its use case",
            )  # fmt: skip
            return
        try:
            async with slots:
                message = await self.gateway.fetch_message(account, state.record.message_sid)
        except ProviderDown as exc:
            metrics.REPAIRED.labels("failed").inc()
            log.warning("status repair of %s failed (%s); retried later", sid.decode(), exc)
            return
        if message is None:
            log.warning("status repair: Twilio does not know %s", sid.decode())
            return
        record = state.record
        changed = record_status(message.status.lower(), scheduled=record.scheduled) != record.status
        metrics.REPAIRED.labels("changed" if changed else "unchanged").inc()
        raw = RawCallback(
            receipt_id=uuid.uuid4(),
            received_at=datetime.now(UTC),
            params=decision.callback_params(message, account.account_sid),
        )
        await self.callbacks_topic.send(key=sid, value=Topics.CALLBACKS.codec.encode(raw))
        log.info(
            "status repair: Twilio reports %s for a record at %s since %s",
            message.status, state.record.status, state.record.updated_at.isoformat(),
            extra={"message_sid": state.record.message_sid, "record_id": str(state.record.id)},
        )  # fmt: skip

    def _account(self, state: LifecycleState) -> Subaccount | None:
        """The subaccount the message was sent through; for a state kept before that was
        known, the one its use case names today."""
        use_case = self.config.use_cases.get(state.record.use_case_id)
        account_sid = decision.account_to_ask(state.account_sid, use_case)
        return self.config.subaccounts.get(account_sid) if account_sid is not None else None

    def _forget_old(self, now: datetime) -> None:
        """Drop the bookkeeping of records long done with (bounded memory)."""
        horizon = now - self.after * (2**decision.MAX_CHECKS)
        for sid in [s for s, c in self._checked.items() if c.next_at < horizon]:
            del self._checked[sid]


def register(worker: Worker, gateway: TwilioGateway, records: Records) -> StatusRepair:
    """Declare the repair timer on the worker's app."""
    repair = StatusRepair(worker, gateway, records)
    worker.app.timer(interval=interval(repair.after))(repair.tick)
    return repair
