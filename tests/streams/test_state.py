"""The status state machine: parsing callbacks, every transition, and order independence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import TWILIO_STATUS_MAP, SmsRecord, SmsStatus
from streams.lifecycle.state import (
    CallbackFacts,
    Rejected,
    apply_callback,
    from_other_subaccount,
    parse_callback,
)
from tests.streams.factories import MESSAGE_SID, at, create_record

PENDING, SENT, DELIVERED, FAILED, UNDELIVERED = (
    SmsStatus.PENDING,
    SmsStatus.SENT,
    SmsStatus.DELIVERED,
    SmsStatus.FAILED,
    SmsStatus.UNDELIVERED,
)
#: The statuses of a message sent without ``send_at``: this file's records (scheduled ones
#: are in ``test_scheduled_state.py``).
IMMEDIATE = (PENDING, SENT, DELIVERED, FAILED, UNDELIVERED)
SENDER = "+14155550100"
T9 = at(900)


def facts(twilio_status: str, received_at: datetime = T9, **overrides: Any) -> CallbackFacts:
    values: dict[str, Any] = {
        "message_sid": MESSAGE_SID,
        "twilio_status": twilio_status,
        "status": TWILIO_STATUS_MAP[twilio_status],
        "from_number": None,
        "num_segments": None,
        "error_code": None,
        "received_at": received_at,
    }
    values.update(overrides)
    return CallbackFacts(**values)


def parsed(params: dict[str, str], received_at: datetime = T9) -> CallbackFacts:
    result = parse_callback(params, received_at)
    assert isinstance(result, CallbackFacts), result
    return result


def replay(record: SmsRecord, callbacks: Iterable[CallbackFacts]) -> SmsRecord:
    for callback in callbacks:
        changed = apply_callback(record, callback)
        if changed is not None:
            record = changed
    return record


# --- parse_callback ---------------------------------------------------------------------

#: The contract's table, written out rather than read from TWILIO_STATUS_MAP.
CONTRACT_STATUS_TABLE = [
    ("accepted", PENDING),
    ("scheduled", PENDING),
    ("queued", PENDING),
    ("sending", PENDING),
    ("sent", SENT),
    ("delivered", DELIVERED),
    ("read", DELIVERED),
    ("undelivered", UNDELIVERED),
    ("failed", FAILED),
    ("canceled", FAILED),
]


@pytest.mark.parametrize(("twilio_status", "status"), CONTRACT_STATUS_TABLE)
def test_every_contract_status_maps(twilio_status: str, status: SmsStatus) -> None:
    result = parsed({"MessageSid": MESSAGE_SID, "MessageStatus": twilio_status})
    assert (result.twilio_status, result.status) == (twilio_status, status)


def test_contract_table_is_the_whole_map() -> None:
    assert dict(CONTRACT_STATUS_TABLE) == TWILIO_STATUS_MAP


def test_full_callback() -> None:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": MESSAGE_SID,
        "SmsSid": MESSAGE_SID,
        "MessageStatus": "undelivered",
        "SmsStatus": "undelivered",
        "From": SENDER,
        "To": "+14155552671",
        "NumSegments": "2",
        "ErrorCode": "30003",
        "ApiVersion": "2010-04-01",
    }
    assert parse_callback(params, T9) == CallbackFacts(
        message_sid=MESSAGE_SID,
        twilio_status="undelivered",
        status=UNDELIVERED,
        from_number=SENDER,
        num_segments=2,
        error_code=30003,
        received_at=T9,
        account_sid="AC" + "0" * 32,
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"MessageStatus": "sent"}, "missing MessageSid"),
        ({"MessageSid": "", "MessageStatus": "sent"}, "missing MessageSid"),
        ({"MessageSid": "  ", "SmsSid": "", "MessageStatus": "sent"}, "missing MessageSid"),
        ({"MessageSid": MESSAGE_SID}, "missing MessageStatus"),
        ({"MessageSid": MESSAGE_SID, "MessageStatus": ""}, "missing MessageStatus"),
        ({"MessageSid": MESSAGE_SID, "MessageStatus": "foo"}, "unknown MessageStatus 'foo'"),
        ({"MessageSid": MESSAGE_SID, "SmsStatus": "received"}, "unknown MessageStatus 'received'"),
        ({}, "missing MessageSid"),
    ],
)
def test_rejected(params: dict[str, str], reason: str) -> None:
    assert parse_callback(params, T9) == Rejected(reason)


def test_sms_sid_and_sms_status_stand_in() -> None:
    result = parsed({"SmsSid": "SMfallback", "SmsStatus": "sent"})
    assert (result.message_sid, result.status) == ("SMfallback", SENT)


def test_message_fields_win_over_sms_fields() -> None:
    result = parsed(
        {"MessageSid": "SMa", "SmsSid": "SMb", "MessageStatus": "delivered", "SmsStatus": "sent"}
    )
    assert (result.message_sid, result.status) == ("SMa", DELIVERED)


def test_blank_message_fields_fall_back() -> None:
    result = parsed({"MessageSid": " ", "SmsSid": "SMb", "MessageStatus": "", "SmsStatus": "sent"})
    assert (result.message_sid, result.status) == ("SMb", SENT)


def test_status_is_case_insensitive() -> None:
    result = parsed({"MessageSid": MESSAGE_SID, "MessageStatus": " Delivered "})
    assert (result.twilio_status, result.status) == ("delivered", DELIVERED)


@pytest.mark.parametrize(
    ("extra", "from_number", "num_segments", "error_code", "warnings"),
    [
        ({}, None, None, None, ()),
        ({"From": "", "NumSegments": "", "ErrorCode": ""}, None, None, None, ()),
        ({"From": f" {SENDER} "}, SENDER, None, None, ()),
        ({"NumSegments": "0"}, None, None, None, ()),
        ({"NumSegments": "3"}, None, 3, None, ()),
        ({"NumSegments": "two"}, None, None, None, ("ignored non-numeric NumSegments 'two'",)),
        ({"NumSegments": "-1"}, None, None, None, ("ignored non-numeric NumSegments '-1'",)),
        ({"ErrorCode": "30008"}, None, None, 30008, ()),
        ({"ErrorCode": "3000x"}, None, None, None, ("ignored non-numeric ErrorCode '3000x'",)),
        ({"ErrorCode": "٣٠٠٠٣"}, None, None, None, ("ignored non-numeric ErrorCode '٣٠٠٠٣'",)),
        (
            {"ErrorCode": "n/a", "NumSegments": "1.5"},
            None,
            None,
            None,
            ("ignored non-numeric ErrorCode 'n/a'", "ignored non-numeric NumSegments '1.5'"),
        ),
    ],
)
def test_optional_fields(
    extra: dict[str, str],
    from_number: str | None,
    num_segments: int | None,
    error_code: int | None,
    warnings: tuple[str, ...],
) -> None:
    result = parsed({"MessageSid": MESSAGE_SID, "MessageStatus": "failed", **extra})
    assert (result.from_number, result.num_segments, result.error_code) == (
        from_number,
        num_segments,
        error_code,
    )
    assert result.warnings == warnings


def test_received_at_is_kept() -> None:
    received_at = at(-86_400 * 365)
    assert parsed({"MessageSid": "SMx", "MessageStatus": "sent"}, received_at).received_at == (
        received_at
    )


# --- apply_callback: every (record status x callback status) pair ------------------------

REPRESENTATIVE = {
    PENDING: "queued",
    SENT: "sent",
    DELIVERED: "delivered",
    FAILED: "failed",
    UNDELIVERED: "undelivered",
}


def record_in(status: SmsStatus) -> SmsRecord:
    """A consistent record that reached ``status`` through the usual path."""
    return {
        PENDING: create_record(),
        SENT: create_record(
            status=SENT, from_number=SENDER, num_segments=1, handed_off_at=at(1), updated_at=at(1)
        ),
        DELIVERED: create_record(
            status=DELIVERED,
            from_number=SENDER,
            num_segments=1,
            handed_off_at=at(1),
            delivered_at=at(2),
            updated_at=at(2),
        ),
        FAILED: create_record(status=FAILED, errored_at=at(1), error_code=30008, updated_at=at(1)),
        UNDELIVERED: create_record(
            status=UNDELIVERED,
            from_number=SENDER,
            num_segments=1,
            handed_off_at=at(1),
            errored_at=at(2),
            error_code=30005,
            updated_at=at(2),
        ),
    }[status]


_ERR = {"errored_at": T9, "error_code": 30003}
TRANSITIONS: list[tuple[SmsStatus, SmsStatus, dict[str, Any] | None]] = [
    (PENDING, PENDING, None),
    (PENDING, SENT, {"status": SENT, "handed_off_at": T9}),
    (PENDING, DELIVERED, {"status": DELIVERED, "handed_off_at": T9, "delivered_at": T9}),
    (PENDING, FAILED, {"status": FAILED, **_ERR}),
    (PENDING, UNDELIVERED, {"status": UNDELIVERED, "handed_off_at": T9, **_ERR}),
    (SENT, PENDING, None),
    (SENT, SENT, None),
    (SENT, DELIVERED, {"status": DELIVERED, "delivered_at": T9}),
    (SENT, FAILED, {"status": FAILED, **_ERR}),
    (SENT, UNDELIVERED, {"status": UNDELIVERED, **_ERR}),
    *[
        (terminal, status, None)
        for terminal in (DELIVERED, FAILED, UNDELIVERED)
        for status in IMMEDIATE
    ],
]


def test_transition_table_is_exhaustive() -> None:
    assert {(a, b) for a, b, _ in TRANSITIONS} == {(a, b) for a in IMMEDIATE for b in IMMEDIATE}


@pytest.mark.parametrize(("current", "incoming", "changes"), TRANSITIONS)
def test_transition(
    current: SmsStatus, incoming: SmsStatus, changes: dict[str, Any] | None
) -> None:
    record = record_in(current)
    result = apply_callback(record, facts(REPRESENTATIVE[incoming], error_code=30003))
    if changes is None:
        assert result is None
    else:
        assert result == record.model_copy(update={**changes, "updated_at": T9})


@pytest.mark.parametrize("twilio_status", TWILIO_STATUS_MAP)
@pytest.mark.parametrize("terminal", [DELIVERED, FAILED, UNDELIVERED])
def test_terminal_record_never_changes(terminal: SmsStatus, twilio_status: str) -> None:
    bare = record_in(terminal).model_copy(update={"from_number": None, "num_segments": None})
    callback = facts(twilio_status, from_number=SENDER, num_segments=2, error_code=30001)
    assert apply_callback(bare, callback) is None


def test_read_after_delivered_is_dropped() -> None:
    assert apply_callback(record_in(DELIVERED), facts("read")) is None


@pytest.mark.parametrize(("twilio_status", "status"), CONTRACT_STATUS_TABLE)
def test_every_twilio_status_from_pending(twilio_status: str, status: SmsStatus) -> None:
    result = apply_callback(create_record(), facts(twilio_status))
    assert (result.status if result else PENDING) == status


def test_error_status_without_error_code() -> None:
    result = apply_callback(record_in(SENT), facts("undelivered"))
    assert result is not None
    assert (result.errored_at, result.error_code) == (T9, None)


def test_error_code_on_other_statuses_is_ignored() -> None:
    result = apply_callback(record_in(SENT), facts("delivered", error_code=30003))
    assert result is not None
    assert (result.errored_at, result.error_code) == (None, None)


def test_mismatched_message_sid_is_a_bug() -> None:
    with pytest.raises(ValueError, match="SMother"):
        apply_callback(create_record(), facts("sent", message_sid="SMother"))


# --- filling from_number / num_segments --------------------------------------------------


def test_non_raising_callback_fills_both() -> None:
    result = apply_callback(create_record(), facts("queued", from_number=SENDER, num_segments=2))
    assert result == create_record(from_number=SENDER, num_segments=2, updated_at=T9)


def test_non_raising_callback_fills_one() -> None:
    result = apply_callback(create_record(), facts("sending", from_number=SENDER))
    assert result == create_record(from_number=SENDER, updated_at=T9)


def test_same_rank_fill_on_sent() -> None:
    record = record_in(SENT).model_copy(update={"num_segments": None})
    result = apply_callback(record, facts("sent", num_segments=3, received_at=at(5)))
    assert result == record.model_copy(update={"num_segments": 3, "updated_at": at(5)})


def test_raising_callback_also_fills() -> None:
    result = apply_callback(create_record(), facts("sent", from_number=SENDER, num_segments=1))
    assert result == create_record(
        status=SENT, from_number=SENDER, num_segments=1, handed_off_at=T9, updated_at=T9
    )


def test_filled_values_are_never_overwritten() -> None:
    record = record_in(SENT)
    assert apply_callback(record, facts("sent", from_number="+14155550199", num_segments=9)) is None
    result = apply_callback(record, facts("delivered", from_number="+14155550199", num_segments=9))
    assert result is not None
    assert (result.from_number, result.num_segments) == (SENDER, 1)


def test_duplicate_is_dropped() -> None:
    callback = facts("sent", from_number=SENDER, num_segments=1)
    once = apply_callback(create_record(), callback)
    assert once is not None
    assert apply_callback(once, callback) is None


def test_regression_is_dropped() -> None:
    assert apply_callback(record_in(SENT), facts("queued", from_number=SENDER)) is None


def test_delivered_before_sent_keeps_first_handoff_evidence() -> None:
    """The late ``sent`` is dropped; ``handed_off_at`` is when delivery was learnt."""
    record = replay(create_record(), [facts("delivered", at(20)), facts("sent", at(10))])
    assert (record.handed_off_at, record.delivered_at, record.updated_at) == (at(20),) * 3


# --- order independence (hypothesis) ------------------------------------------------------

#: Statuses after the optional pre-handoff ones (accepted, queued, sending), per outcome.
OUTCOMES = {
    "delivered": ["sent", "delivered"],
    "undelivered": ["sent", "undelivered"],
    "failed": ["failed"],
    "sent": ["sent"],
}
HANDOFF = {SENT, DELIVERED, UNDELIVERED}


@st.composite
def lifecycles(draw: st.DrawFn, outcome: str) -> list[CallbackFacts]:
    """One message's callbacks in lifecycle order, parsed from Twilio-shaped form fields.

    As Twilio does: the sender and the segment count, once known, are on every later callback
    with the same value (``NumSegments`` is ``"0"`` or absent before); ``ErrorCode`` may appear
    anywhere. ``received_at`` is arbitrary, not even increasing.
    """
    prefix = [s for s in ("accepted", "queued", "sending") if draw(st.booleans())]
    statuses = prefix + OUTCOMES[outcome]
    n = len(statuses)
    from_since = draw(st.integers(0, n))  # n: the sender is never reported
    segments_since = draw(st.integers(0, n))
    sender = draw(st.sampled_from([SENDER, "+14155550101", "+16135550123"]))
    segments = draw(st.integers(1, 10))
    callbacks = []
    for i, twilio_status in enumerate(statuses):
        params = {"AccountSid": "AC" + "0" * 32, "MessageSid": MESSAGE_SID}
        params["MessageStatus"] = params["SmsStatus"] = twilio_status
        if i >= from_since:
            params["From"] = sender
        if i >= segments_since:
            params["NumSegments"] = str(segments)
        elif draw(st.booleans()):
            params["NumSegments"] = "0"
        error_code = draw(st.sampled_from([None, 30003, 30005, 30008, 21610]))
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        callbacks.append(parsed(params, at(draw(st.integers(0, 3600)))))
    return callbacks


@st.composite
def deliveries(draw: st.DrawFn, callbacks: list[CallbackFacts]) -> list[CallbackFacts]:
    """``callbacks`` in any order, some delivered twice or more (identical facts), plus
    Twilio retries of non-terminal callbacks (same fields, a later ``received_at``)."""
    n = len(callbacks)
    copies = draw(st.lists(st.sampled_from(callbacks), max_size=2 * n))
    non_terminal = [c for c in callbacks if not c.status.terminal]
    retries = [
        replace(c, received_at=at(draw(st.integers(0, 3600))))
        for c in (draw(st.lists(st.sampled_from(non_terminal), max_size=n)) if non_terminal else [])
    ]
    return draw(st.permutations(callbacks + copies + retries))


#: The fields the order of callbacks cannot change, for a lifecycle that ends terminal.
ORDER_FREE = set(SmsRecord.model_fields) - {"handed_off_at"}


def check_order_independence(outcome: str, data: st.DataObject) -> None:
    callbacks = data.draw(lifecycles(outcome))
    in_order = replay(create_record(), callbacks)
    delivered = data.draw(deliveries(callbacks))
    shuffled = replay(create_record(), delivered)

    last = callbacks[-1]
    assert in_order.status == last.status
    assert in_order.updated_at == last.received_at
    assert in_order.from_number == next((c.from_number for c in callbacks if c.from_number), None)
    assert in_order.model_dump(include=ORDER_FREE) == shuffled.model_dump(include=ORDER_FREE)

    if outcome == "failed":
        assert in_order.handed_off_at is None
        assert shuffled.handed_off_at is None
    else:
        # Lifecycle order: the `sent` callback. Any order: the first applied callback that
        # proves a handoff (`sent`, a retry of it, or the terminal one overtaking them).
        assert in_order.handed_off_at == callbacks[-2].received_at
        assert shuffled.handed_off_at == next(
            c.received_at for c in delivered if c.status in HANDOFF
        )


@pytest.mark.parametrize("outcome", ["delivered", "undelivered", "failed"])
@settings(max_examples=300)
@given(data=st.data())
def test_any_order_ends_in_the_same_record(outcome: str, data: st.DataObject) -> None:
    check_order_independence(outcome, data)


@settings(max_examples=200)
@given(data=st.data())
def test_sent_only_lifecycle_agrees_on_what_it_knows(data: st.DataObject) -> None:
    """Not terminal, so no promise on ``updated_at``; status and fills still agree."""
    callbacks = data.draw(lifecycles("sent"))
    in_order = replay(create_record(), callbacks)
    shuffled = replay(create_record(), data.draw(deliveries(callbacks)))
    fields = {"status", "from_number", "num_segments", "delivered_at", "errored_at", "error_code"}
    assert in_order.status == SENT
    assert in_order.model_dump(include=fields) == shuffled.model_dump(include=fields)
    assert shuffled.handed_off_at is not None


ACCOUNT_X, ACCOUNT_Y = "AC" + "1" * 32, "AC" + "2" * 32


@pytest.mark.parametrize(
    ("callback_account", "record_account", "dropped"),
    [
        (ACCOUNT_X, ACCOUNT_X, False),
        (ACCOUNT_X, ACCOUNT_Y, True),
        (None, ACCOUNT_Y, True),  # a callback naming no subaccount is not from the message's
        (ACCOUNT_X, None, False),  # a record kept before its subaccount was: as before
    ],
)
def test_a_callback_counts_only_from_the_subaccount_of_its_message(
    callback_account: str | None, record_account: str | None, dropped: bool
) -> None:
    params = {"MessageSid": MESSAGE_SID, "MessageStatus": "delivered"}
    if callback_account is not None:
        params["AccountSid"] = callback_account
    assert from_other_subaccount(parsed(params), record_account) is dropped
