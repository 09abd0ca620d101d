"""The lifecycle of each message, one method per step: records and callbacks in, versions out.

:class:`LifecycleProcessor` handles one event of ``sms.created``, ``sms.callbacks`` or
``sms.lifecycle-control`` at a time, over the typed tables of :mod:`streams.lifecycle.tables`,
and sends what it decides through a :class:`Publisher`: every change of a record goes to
``sms.status`` with the next ``version``. The status rules are the pure functions of
:mod:`streams.lifecycle.state`, the housekeeping rules those of
:mod:`streams.lifecycle.housekeeping`. Nothing here knows Faust: :mod:`streams.lifecycle.agents`
feeds it, always with the event of the key it reads and writes; unit tests feed it with dicts
and a list.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Literal, Protocol

from pydantic import ValidationError

from schemas.events import LifecycleControl, RawCallback
from schemas.records import SmsCreated, SmsStatusEvent
from schemas.topics import Topics
from streams import metrics
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.state import (
    CallbackFacts,
    Rejected,
    apply_callback,
    from_other_subaccount,
    parse_callback,
)
from streams.lifecycle.tables import Held, HeldTable, LifecycleState, RecordTable

log = logging.getLogger(__name__)

#: Which topic an event came from.
Source = Literal["created", "callback", "control"]

CREATED = Topics.CREATED.codec
CALLBACKS = Topics.CALLBACKS.codec
CONTROL = Topics.LIFECYCLE_CONTROL.codec


class Publisher(Protocol):
    """Where the processor's decisions go."""

    async def status(self, event: SmsStatusEvent) -> None:
        """Publish a version of a record (``sms.status``, keyed by the record's id)."""

    async def order(self, sid: bytes, order: LifecycleControl) -> None:
        """Send a housekeeping order to the processor itself (``sms.lifecycle-control``,
        keyed by ``sid``), so that the deletion runs on the partition that owns the key."""


class Position(Protocol):
    """Where an event was read, for the log (a Faust ``Message`` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


class LifecycleProcessor:
    """The steps of ``track_lifecycle`` and of its two housekeeping timers."""

    def __init__(
        self, records: RecordTable, held: HeldTable, rules: Housekeeping, publisher: Publisher
    ) -> None:
        self.records = records
        self.held = held
        self.rules = rules
        self.publisher = publisher

    # -- one event -----------------------------------------------------------------------

    async def process(self, source: Source, sid: bytes, value: bytes, at: Position) -> None:
        """Decode one event and handle it. A poison event is logged, counted and skipped:
        one event must never stop the agent (or be retried forever)."""
        try:
            if source == "callback":
                await self.on_callback(sid, CALLBACKS.decode(value))
            elif source == "created":
                await self.on_created(sid, CREATED.decode(value))
            else:
                self.on_control(sid, CONTROL.decode(value))
        except (ValidationError, ValueError, UnicodeDecodeError) as exc:
            log.error(
                "skipping poison event at %s[%d]@%d: %s", at.topic, at.partition, at.offset, exc
            )
            metrics.lifecycle_event("poison")
        except Exception:
            log.exception(
                "skipping event at %s[%d]@%d after an unexpected error",
                at.topic, at.partition, at.offset,
            )  # fmt: skip
            metrics.lifecycle_event("poison")

    async def on_created(self, sid: bytes, created: SmsCreated) -> None:
        """Record a new message as version 1, with the subaccount and service it was sent
        through, then apply the callbacks held for it."""
        current = self.records.get(sid)
        if current is not None:
            # A replayed created event: the record exists. Publish its current version
            # again, in case a crash lost the first publish; consumers drop it by version.
            await self.publish(current)
            return
        state = LifecycleState(
            record=created.record(), version=1, account_sid=created.account_sid,
            messaging_service_sid=created.messaging_service_sid,
        )  # fmt: skip
        await self.store(sid, state)
        metrics.RECORD_COUNTS.created(state.record.status)
        early = self.held.pop(sid)
        if early:
            await self.apply_held(sid, state, early)

    async def apply_held(
        self, sid: bytes, state: LifecycleState, callbacks: tuple[RawCallback, ...]
    ) -> None:
        """Apply callbacks that came before the record, in the order they came."""
        for raw in callbacks:
            facts = parse_callback(raw.params, raw.received_at)
            if isinstance(facts, CallbackFacts):
                changed = await self.apply(state, raw, facts)
                if changed is not state:
                    state = changed
                    await self.store(sid, state)
        log.info(
            "applied %d early callback(s) for sid=%s", len(callbacks), sid.decode(),
            extra={"message_sid": sid.decode(), "record_id": str(state.record.id)},
        )  # fmt: skip

    async def on_callback(self, sid: bytes, raw: RawCallback) -> None:
        """Apply a callback to its record, or hold it until the record exists."""
        facts = parse_callback(raw.params, raw.received_at)
        if isinstance(facts, Rejected):
            log.warning(
                "dropping callback sid=%s: %s", sid.decode(errors="replace"), facts.reason,
                extra={"message_sid": sid.decode(errors="replace")},
            )  # fmt: skip
            metrics.lifecycle_event("rejected", raw)
            return
        for warning in facts.warnings:
            log.warning("callback sid=%s: %s", facts.message_sid, warning)
        state = self.records.get(sid)
        if state is None:
            self.hold(sid, raw)
            return
        changed = await self.apply(state, raw, facts)
        if changed is not state:
            await self.store(sid, changed)

    def hold(self, sid: bytes, raw: RawCallback) -> None:
        """Keep a callback whose message is not recorded yet (Twilio can call back within
        milliseconds of the create call); a new sid is dropped when the hold is full."""
        entry = self.held.get(sid)
        if entry is None:
            if len(self.held) >= self.rules.max_held:
                log.warning(
                    "dropping early callback sid=%s: hold is full", sid.decode(),
                    extra={"message_sid": sid.decode()},
                )  # fmt: skip
                metrics.lifecycle_event("dropped_hold_full", raw)
                return
            entry = Held(since=raw.received_at, callbacks=(raw,))
        else:
            entry = Held(since=entry.since, callbacks=(*entry.callbacks, raw))
        self.held.put(sid, entry)
        metrics.lifecycle_event("held", raw)

    async def apply(
        self, state: LifecycleState, raw: RawCallback, facts: CallbackFacts
    ) -> LifecycleState:
        """The state after the callback: the next version, or ``state`` itself when the
        callback changes nothing (then it is not stored)."""
        if from_other_subaccount(facts, state.account_sid):
            self.drop_foreign(state, raw, facts)
            return state
        changed = apply_callback(state.record, facts)
        receipt = str(raw.receipt_id)
        if changed is None:
            if state.last_receipt == receipt:
                # A redelivery of the callback that made this version: publish it again in
                # case the first publish was lost; consumers drop it by version.
                await self.publish(state)
            same_rank = facts.status_for(state.record).rank == state.record.status.rank
            metrics.lifecycle_event("duplicate" if same_rank else "regression", raw)
            return state
        metrics.RECORD_COUNTS.changed(state.record.status, changed.status)
        log.info(
            "record changed: %s -> %s%s", state.record.status, changed.status,
            "" if changed.status != state.record.status else " (sender or segments filled)",
            extra={"message_sid": changed.message_sid, "record_id": str(changed.id),
                   "status": changed.status.value, "version": state.version + 1},
        )  # fmt: skip
        metrics.lifecycle_event("applied", raw)
        return state.model_copy(
            update={"record": changed, "version": state.version + 1, "last_receipt": receipt}
        )

    @staticmethod
    def drop_foreign(state: LifecycleState, raw: RawCallback, facts: CallbackFacts) -> None:
        """A callback from another subaccount than the message's: logged and counted."""
        log.warning(
            "dropping callback sid=%s from subaccount %s: the message was sent through %s",
            facts.message_sid, facts.account_sid, state.account_sid,
            extra={"message_sid": facts.message_sid, "record_id": str(state.record.id)},
        )  # fmt: skip
        metrics.lifecycle_event("other_subaccount", raw)

    async def store(self, sid: bytes, state: LifecycleState) -> None:
        """Publish the version, then keep it: a publish that fails leaves the table as it
        was (the event is skipped), so the table never holds a version ``sms.status`` has
        not been given, and the next change of the record issues the same version."""
        await self.publish(state)
        self.records.put(sid, state)

    async def publish(self, state: LifecycleState) -> None:
        await self.publisher.status(state.status_event())

    # -- housekeeping orders (on the key's own partition) ----------------------------------

    def on_control(self, sid: bytes, order: LifecycleControl) -> None:
        if order.action == "expire_held":
            self.expire_held(sid, order.at)
        else:
            self.evict(sid, order.at)

    def expire_held(self, sid: bytes, at: datetime) -> None:
        """Drop the callbacks held for ``sid`` if their hold was over at ``at``."""
        entry = self.held.get(sid)
        if entry is None or not self.rules.expired(entry, at):
            return
        self.held.delete(sid)
        log.warning(
            "dropped %d callback(s) for unknown sid=%s after %.0fs",
            len(entry.callbacks), sid.decode(), self.rules.hold_for.total_seconds(),
            extra={"message_sid": sid.decode()},
        )  # fmt: skip
        for raw in entry.callbacks:
            metrics.lifecycle_event("dropped_unknown_sid", raw)

    def evict(self, sid: bytes, at: datetime) -> None:
        """Remove the record of ``sid`` if it was evictable at ``at`` (the timer's view may
        be old: the record may have changed since)."""
        state = self.records.get(sid)
        if state is None:
            return
        record = state.record
        if not self.rules.evictable(record.status, record.updated_at, at, send_at=record.send_at):
            return
        self.records.delete(sid)
        metrics.RECORD_COUNTS.removed(record.status)
        metrics.lifecycle_event("evicted")
        if not record.status.terminal:
            log.info(
                "evicted record stuck at %s since %s", record.status, record.updated_at,
                extra={"message_sid": record.message_sid, "record_id": str(record.id)},
            )  # fmt: skip

    # -- the timers ------------------------------------------------------------------------

    async def order_expiry(self, now: datetime) -> int:
        """Order the expiry of every hold that is over; how many were ordered."""
        order = LifecycleControl(action="expire_held", at=now)
        ordered = 0
        for sid, entry in self.held.scan():
            if self.rules.expired(entry, now):
                await self.publisher.order(sid, order)
                ordered += 1
        return ordered

    async def order_evictions(self, now: datetime) -> int:
        """Order the eviction of every evictable record; how many were ordered."""
        order = LifecycleControl(action="evict", at=now)
        orders = stale = 0
        for scanned, (sid, head) in enumerate(self.records.scan_heads(), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)  # a big table must not starve the event loop
            if self.rules.evictable(head.status, head.updated_at, now, send_at=head.send_at):
                await self.publisher.order(sid, order)
                orders += 1
                stale += not head.status.terminal
        if orders:
            log.info(
                "ordered eviction of %d record(s): %d terminal older than %s, %d unfinished "
                "unchanged for %s", orders, orders - stale, self.rules.retention, stale,
                self.rules.stale_after,
            )  # fmt: skip
        return orders
