"""Plain factories for the sink tests: sensible defaults, override what the test is about."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from schemas.records import SmsRecord, SmsStatus, SmsStatusEvent

#: Every factory-made record is created one second after the previous one.
BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_sequence = itertools.count(1)


def make_event(**overrides: Any) -> SmsStatusEvent:
    """A version-1 ``pending`` event of a new record, ``overrides`` applied."""
    n = next(_sequence)
    created_at = overrides.get("created_at", BASE_TIME + timedelta(seconds=n))
    fields: dict[str, Any] = {
        "id": uuid4(),
        "use_case_id": uuid4(),
        "message_sid": f"SM{uuid4().hex}",
        "to_number": f"+1555{n % 10_000_000:07d}",
        "body": f"message {n}",
        "status": SmsStatus.PENDING,
        "created_at": created_at,
        "updated_at": created_at,
        "version": 1,
    }
    fields.update(overrides)
    return SmsStatusEvent(**fields)


def next_version(event: SmsStatusEvent, **changes: Any) -> SmsStatusEvent:
    """The event of the record's next change: ``version + 1``, ``changes`` applied."""
    updated_at = changes.pop("updated_at", event.updated_at + timedelta(seconds=1))
    return event.model_copy(
        update={"version": event.version + 1, "updated_at": updated_at, **changes}
    )


def lifecycle(event: SmsStatusEvent) -> list[SmsStatusEvent]:
    """Versions 1-3 of a record: created (``event``), sent with a sender, then delivered."""
    sent = next_version(
        event,
        status=SmsStatus.SENT,
        from_number="+15550001111",
        num_segments=1,
        handed_off_at=event.created_at + timedelta(seconds=1),
    )
    delivered = next_version(
        sent, status=SmsStatus.DELIVERED, delivered_at=event.created_at + timedelta(seconds=2)
    )
    return [event, sent, delivered]


def make_histories(count: int, **overrides: Any) -> list[list[SmsStatusEvent]]:
    """``count`` records, each as the list of its three versions."""
    return [lifecycle(make_event(**overrides)) for _ in range(count)]


def interleave(histories: Sequence[Sequence[SmsStatusEvent]]) -> list[SmsStatusEvent]:
    """All versions of all records, each record's versions in order, records interleaved."""
    out: list[SmsStatusEvent] = []
    for layer in itertools.zip_longest(*histories):
        out.extend(event for event in layer if event is not None)
    return out


def expected_rows(events: Iterable[SmsStatusEvent]) -> dict[UUID, tuple[SmsRecord, int]]:
    """What the table must hold after ``events``: each record at its highest version."""
    latest: dict[UUID, SmsStatusEvent] = {}
    for event in events:
        if event.id not in latest or event.version > latest[event.id].version:
            latest[event.id] = event
    return {key: (event.record(), event.version) for key, event in latest.items()}
