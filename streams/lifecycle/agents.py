"""The lifecycle agent: created records and raw callbacks into per-message state.

``sms.created``, ``sms.callbacks`` and ``sms.lifecycle-control`` are all keyed by
``message_sid`` and share their partition count, so one agent reads them as one stream and
the tables ``record_by_sid`` and ``held_by_sid`` stay co-partitioned with it. Every change of
a record goes to ``sms.status`` keyed by the record's id with the next ``version``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.events import LifecycleControl, RawCallback
from schemas.records import SmsRecord, SmsStatus, SmsStatusEvent
from schemas.topics import Topics
from streams import metrics
from streams.lifecycle.state import CallbackFacts, Rejected, apply_callback, parse_callback

log = logging.getLogger(__name__)


class LifecycleState(BaseModel):
    """Value of ``record_by_sid``: the record, its version, the receipt that made it."""

    model_config = ConfigDict(frozen=True)

    record: SmsRecord
    version: int
    last_receipt: str | None = None


class Held(BaseModel):
    """Value of ``held_by_sid``: callbacks that arrived before their message was recorded."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    callbacks: tuple[RawCallback, ...]


def _status_and_updated(value: bytes) -> tuple[SmsStatus, datetime] | None:
    """The two fields eviction needs, without validating the whole record."""
    try:
        record = orjson.loads(value)["record"]
        return SmsStatus(record["status"]), datetime.fromisoformat(record["updated_at"])
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return None


def register(worker: Any) -> None:
    """Declare the lifecycle agent, its tables and its housekeeping timers."""
    app: faust.App = worker.app
    settings = worker.settings
    created_topic = worker.topic(Topics.CREATED.base_name)
    callbacks_topic = worker.topic(Topics.CALLBACKS.base_name)
    control_topic = worker.topic(Topics.LIFECYCLE_CONTROL.base_name)
    status_topic = worker.topic(Topics.STATUS.base_name)
    partitions = settings.topic_partitions
    records = app.Table("record_by_sid", key_type=bytes, value_type=bytes, partitions=partitions)
    held = app.Table("held_by_sid", key_type=bytes, value_type=bytes, partitions=partitions)
    hold_for = timedelta(seconds=settings.early_callback_hold_seconds)
    retention: timedelta = settings.record_retention
    stale_after: timedelta = settings.stale_record_after

    def evictable(status: SmsStatus, updated_at: datetime, now: datetime) -> bool:
        """Terminal records go after the retention; unfinished ones once they went stale
        (a carrier that never sends a delivery receipt must not keep them here forever)."""
        return updated_at + (retention if status.terminal else stale_after) <= now

    source = app.topic(
        created_topic.get_topic_name(),
        callbacks_topic.get_topic_name(),
        control_topic.get_topic_name(),
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    )  # fmt: skip

    def count(outcome: str, raw: RawCallback | None = None) -> None:
        metrics.lifecycle_event(outcome, raw)

    async def publish(state: LifecycleState) -> None:
        event = SmsStatusEvent(**state.record.model_dump(), version=state.version)
        await status_topic.send(
            key=str(state.record.id).encode(), value=event.model_dump_json().encode(), force=True
        )

    async def store(sid: bytes, state: LifecycleState) -> None:
        records[sid] = state.model_dump_json().encode()
        await publish(state)

    async def apply(
        state: LifecycleState, raw: RawCallback, facts: CallbackFacts
    ) -> LifecycleState:
        changed = apply_callback(state.record, facts)
        receipt = str(raw.receipt_id)
        if changed is None:
            if state.last_receipt == receipt:
                # A redelivery of the callback that made this version: publish it again in
                # case the first publish was lost; consumers drop it by version.
                await publish(state)
            same_rank = facts.status.rank == state.record.status.rank
            count("duplicate" if same_rank else "regression", raw)
            return state
        metrics.RECORD_COUNTS.changed(state.record.status, changed.status)
        log.info(
            "record changed: %s -> %s%s", state.record.status, changed.status,
            "" if changed.status != state.record.status else " (sender or segments filled)",
            extra={"message_sid": changed.message_sid, "record_id": str(changed.id),
                   "status": changed.status.value, "version": state.version + 1},
        )  # fmt: skip
        state = LifecycleState(record=changed, version=state.version + 1, last_receipt=receipt)
        count("applied", raw)
        return state

    async def on_created(sid: bytes, value: bytes) -> None:
        record = SmsRecord.model_validate_json(value)
        current = records.get(sid)
        if current is not None:
            # A replayed created event: the record exists. Publish its current version
            # again, in case a crash lost the first publish; consumers drop it by version.
            await publish(LifecycleState.model_validate_json(current))
            return
        state = LifecycleState(record=record, version=1)
        held_value = held.get(sid)
        pending: tuple[RawCallback, ...] = ()
        if held_value is not None:
            pending = Held.model_validate_json(held_value).callbacks
            del held[sid]
            held_sids.discard(sid)
        metrics.RECORD_COUNTS.created(record.status)
        await store(sid, state)
        for raw in pending:
            facts = parse_callback(raw.params, raw.received_at)
            if isinstance(facts, CallbackFacts):
                new_state = await apply(state, raw, facts)
                if new_state is not state:
                    state = new_state
                    await store(sid, state)
        if pending:
            log.info(
                "applied %d early callback(s) for sid=%s", len(pending), sid.decode(),
                extra={"message_sid": sid.decode(), "record_id": str(record.id)},
            )  # fmt: skip

    async def on_callback(sid: bytes, value: bytes) -> None:
        raw = RawCallback.model_validate_json(value)
        facts = parse_callback(raw.params, raw.received_at)
        if isinstance(facts, Rejected):
            log.warning(
                "dropping callback sid=%s: %s", sid.decode(errors="replace"), facts.reason,
                extra={"message_sid": sid.decode(errors="replace")},
            )  # fmt: skip
            count("rejected", raw)
            return
        for warning in facts.warnings:
            log.warning("callback sid=%s: %s", facts.message_sid, warning)
        current = records.get(sid)
        if current is None:
            hold(sid, raw)
            return
        state = LifecycleState.model_validate_json(current)
        new_state = await apply(state, raw, facts)
        if new_state is not state:
            await store(sid, new_state)

    def hold(sid: bytes, raw: RawCallback) -> None:
        existing = held.get(sid)
        if existing is None:
            if len(held_sids) >= settings.early_callback_max_held:
                log.warning(
                    "dropping early callback sid=%s: hold is full", sid.decode(),
                    extra={"message_sid": sid.decode()},
                )  # fmt: skip
                count("dropped_hold_full", raw)
                return
            entry = Held(since=raw.received_at, callbacks=(raw,))
        else:
            entry = Held.model_validate_json(existing)
            entry = Held(since=entry.since, callbacks=(*entry.callbacks, raw))
        held[sid] = entry.model_dump_json().encode()
        held_sids.add(sid)
        count("held", raw)

    def on_control(sid: bytes, value: bytes) -> None:
        order = LifecycleControl.model_validate_json(value)
        if order.action == "expire_held":
            entry = held.get(sid)
            if entry is not None and Held.model_validate_json(entry).since + hold_for <= order.at:
                dropped = Held.model_validate_json(entry).callbacks
                del held[sid]
                held_sids.discard(sid)
                log.warning(
                    "dropped %d callback(s) for unknown sid=%s after %.0fs",
                    len(dropped), sid.decode(), hold_for.total_seconds(),
                    extra={"message_sid": sid.decode()},
                )  # fmt: skip
                for raw in dropped:
                    count("dropped_unknown_sid", raw)
        else:
            current = records.get(sid)
            if current is None:
                return
            record = LifecycleState.model_validate_json(current).record
            if evictable(record.status, record.updated_at, order.at):
                del records[sid]
                metrics.RECORD_COUNTS.removed(record.status)
                count("evicted")
                if not record.status.terminal:
                    log.info(
                        "evicted record stuck at %s since %s", record.status, record.updated_at,
                        extra={"message_sid": record.message_sid, "record_id": str(record.id)},
                    )  # fmt: skip

    held_sids: set[bytes] = set()

    @app.agent(source, name="track_lifecycle")
    async def track_lifecycle(stream: faust.StreamT) -> None:
        async for event in stream.events():
            sid, value, topic = event.key, event.value, event.message.topic
            if not sid or value is None:
                continue
            try:
                if topic == callbacks_topic.get_topic_name():
                    await on_callback(sid, value)
                elif topic == created_topic.get_topic_name():
                    await on_created(sid, value)
                else:
                    on_control(sid, value)
            except (ValidationError, ValueError, UnicodeDecodeError) as exc:
                log.error(
                    "skipping poison event at %s[%d]@%d: %s",
                    topic, event.message.partition, event.message.offset, exc,
                )  # fmt: skip
                count("poison")
            except Exception:
                # Never let one event stop the agent (or be retried forever).
                log.exception(
                    "skipping event at %s[%d]@%d after an unexpected error",
                    topic, event.message.partition, event.message.offset,
                )  # fmt: skip
                count("poison")

    @app.timer(interval=max(1.0, min(30.0, hold_for.total_seconds() / 5)))
    async def expire_held_callbacks() -> None:
        now = datetime.now(UTC)
        entries = list(held.items())
        held_sids.clear()  # rebuilt from the table (after a restart it starts empty)
        held_sids.update(sid for sid, _ in entries)
        for sid, value in entries:
            if Held.model_validate_json(value).since + hold_for <= now:
                await control_topic.send(
                    key=sid,
                    value=LifecycleControl(action="expire_held", at=now).model_dump_json().encode(),
                )

    shortest = min(retention, stale_after).total_seconds()

    @app.timer(interval=max(1.0, min(3600.0, shortest / 24)))
    async def evict_old_records() -> None:
        now = datetime.now(UTC)
        orders = stale = 0
        for scanned, (sid, value) in enumerate(records.items(), start=1):
            if scanned % 1000 == 0:
                await asyncio.sleep(0)  # a big table must not starve the event loop
            record = _status_and_updated(value)
            if record is not None and evictable(*record, now):
                await control_topic.send(
                    key=sid,
                    value=LifecycleControl(action="evict", at=now).model_dump_json().encode(),
                )
                orders += 1
                stale += not record[0].terminal
        if orders:
            log.info(
                "ordered eviction of %d record(s): %d terminal older than %s, %d unfinished "
                "unchanged for %s", orders, orders - stale, retention, stale, stale_after,
            )  # fmt: skip
