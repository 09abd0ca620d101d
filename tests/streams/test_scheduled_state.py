"""The rules of messages sent with ``send_at``: ranks, the Twilio mapping, transitions, and the
eviction and repair clocks that start no earlier than ``send_at``."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from schemas.records import TWILIO_STATUS_MAP, SmsStatus, SmsStatusEvent, record_status
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.state import CallbackFacts, apply_callback, parse_callback
from streams.repair import decision as repair
from streams.repair.agent import StatusRepair
from tests.streams.factories import USE_CASE_ID, RecordsOf, at, create_record
from tests.streams.test_state import facts

SCHEDULED, PENDING, SENT = SmsStatus.SCHEDULED, SmsStatus.PENDING, SmsStatus.SENT
CANCELED, DELIVERED = SmsStatus.CANCELED, SmsStatus.DELIVERED
SEND_AT = at(30 * 86_400)
T9 = at(900)


def test_scheduled_ranks_below_pending_and_canceled_is_terminal() -> None:
    assert SCHEDULED.rank < PENDING.rank < SENT.rank < DELIVERED.rank == CANCELED.rank
    assert CANCELED.terminal and not SCHEDULED.terminal
    assert {s for s in SmsStatus if s.terminal} == {
        DELIVERED, SmsStatus.FAILED, SmsStatus.UNDELIVERED, CANCELED,
    }  # fmt: skip


@pytest.mark.parametrize("twilio_status", TWILIO_STATUS_MAP)
def test_without_send_at_the_contract_table_holds(twilio_status: str) -> None:
    assert record_status(twilio_status, scheduled=False) == TWILIO_STATUS_MAP[twilio_status]


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [("scheduled", SCHEDULED), ("canceled", CANCELED), ("queued", PENDING), ("sent", SENT),
     ("failed", SmsStatus.FAILED), ("delivered", DELIVERED)],
)  # fmt: skip
def test_with_send_at_scheduled_and_canceled_are_kept(
    twilio_status: str, status: SmsStatus
) -> None:
    assert record_status(twilio_status, scheduled=True) == status


def test_unknown_twilio_status_maps_to_nothing() -> None:
    assert record_status("bogus", scheduled=True) is None


def test_a_canceled_callback_cancels_a_scheduled_record() -> None:
    record = create_record(status=SCHEDULED, send_at=SEND_AT)
    changed = apply_callback(record, facts("canceled"))
    assert changed == record.model_copy(
        update={"status": CANCELED, "canceled_at": T9, "updated_at": T9}
    )


def test_a_canceled_callback_fails_a_record_sent_at_once() -> None:
    changed = apply_callback(create_record(), facts("canceled", error_code=None))
    assert changed is not None
    assert (changed.status, changed.canceled_at, changed.errored_at) == (
        SmsStatus.FAILED, None, T9,
    )  # fmt: skip


def test_a_scheduled_record_goes_on_through_the_usual_lifecycle() -> None:
    record = create_record(status=SCHEDULED, send_at=SEND_AT)
    for twilio_status, status in (("scheduled", None), ("queued", PENDING), ("sent", SENT),
                                  ("delivered", DELIVERED)):  # fmt: skip
        changed = apply_callback(record, facts(twilio_status))
        assert (changed.status if changed else None) == status
        record = changed or record
    assert record.handed_off_at == T9 and record.canceled_at is None


def test_a_canceled_record_never_changes() -> None:
    canceled = create_record(status=CANCELED, send_at=SEND_AT, canceled_at=T9, updated_at=T9)
    for twilio_status in TWILIO_STATUS_MAP:
        assert apply_callback(canceled, facts(twilio_status)) is None


def test_a_late_scheduled_callback_does_not_regress_a_pending_record() -> None:
    record = create_record(status=PENDING, send_at=SEND_AT)
    parsed = parse_callback({"MessageSid": record.message_sid, "MessageStatus": "scheduled"}, T9)
    assert isinstance(parsed, CallbackFacts)
    assert apply_callback(record, parsed) is None


RULES = Housekeeping(
    hold_for=timedelta(minutes=5), max_held=10,
    retention=timedelta(days=7), stale_after=timedelta(days=14),
)  # fmt: skip


def test_a_scheduled_record_is_not_stale_before_its_send_at() -> None:
    created = at(0)
    assert RULES.evictable(SCHEDULED, created, created + timedelta(days=14))  # no send_at
    assert not RULES.evictable(SCHEDULED, created, SEND_AT, send_at=SEND_AT)
    assert not RULES.evictable(
        SCHEDULED, created, SEND_AT + timedelta(days=14, seconds=-1), send_at=SEND_AT
    )
    assert RULES.evictable(SCHEDULED, created, SEND_AT + timedelta(days=14), send_at=SEND_AT)


def test_a_canceled_record_is_kept_for_the_retention_from_its_cancel() -> None:
    assert RULES.evictable(CANCELED, T9, T9 + timedelta(days=7), send_at=SEND_AT)


def test_repair_waits_for_send_at() -> None:
    after = timedelta(minutes=10)
    record = create_record(status=SCHEDULED, send_at=SEND_AT)
    assert record.quiet_since == SEND_AT
    assert not repair.due(SCHEDULED, record.quiet_since, None, SEND_AT, after)
    assert repair.due(SCHEDULED, record.quiet_since, None, SEND_AT + after, after)
    later = create_record(updated_at=SEND_AT + after, send_at=SEND_AT)
    assert later.quiet_since == SEND_AT + after


async def test_repair_leaves_a_scheduled_record_alone_until_after_its_send_at() -> None:
    after = timedelta(minutes=10)
    worker = SimpleNamespace(
        config=None, settings=SimpleNamespace(status_repair_after_seconds=after.seconds),
        topic=lambda name: None,
    )  # fmt: skip
    waiting = create_record(status=SCHEDULED, send_at=SEND_AT)
    at_once = create_record(message_sid="SM" + "1" * 32)
    records = RecordsOf(waiting, at_once)
    repair = StatusRepair(worker, None, records, clock=lambda: at(3600))  # type: ignore[arg-type]
    assert await repair._due(repair.clock()) == [at_once.message_sid.encode()]
    repair.clock = lambda: SEND_AT + after
    assert set(await repair._due(repair.clock())) == {
        waiting.message_sid.encode(), at_once.message_sid.encode(),
    }  # fmt: skip


def test_an_event_written_before_the_new_fields_still_decodes() -> None:
    old = {
        "id": "0b7e4c1a-5d2f-4e8b-a9c3-1f6d2e8b7a40", "use_case_id": str(USE_CASE_ID),
        "message_sid": "SM" + "0" * 32, "to_number": "+14155552671", "body": "hi",
        "status": "sent", "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:01Z", "version": 2,
    }  # fmt: skip
    event = SmsStatusEvent.model_validate(old)
    assert (event.send_at, event.validity_period, event.client_reference) == (None, None, None)
    assert event.canceled_at is None and not event.record().scheduled
    assert SmsStatusEvent.model_validate({**old, "added_later": 1}).version == 2
