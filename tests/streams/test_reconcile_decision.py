"""Reconciliation's decision alone: found, not found yet, not found after the window,
ambiguous bodies, two interrupted requests with the same number and body, messages another
request claimed, and Twilio not asked."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from schemas.events import SendRequest, SendTarget
from streams.reconcile import decision
from streams.reconcile.decision import Adopt, Resend, Wait
from streams.sending.provider import TwilioMessage
from tests.streams.factories import T0, USE_CASE_ID

TO = "+14155552671"
SERVICE = "MG" + "0" * 32
MARKER_AT = T0
ENDS_AT = decision.window_end(MARKER_AT, send_timeout_s=10, margin_s=30)
TARGET = SendTarget(account_sid="AC" + "1" * 32, messaging_service_sid=SERVICE, to=TO)


def request(body: str = "Your code is 1234") -> SendRequest:
    return SendRequest(
        request_id=uuid.uuid4(),
        body_hash=hashlib.sha256(body.encode()).hexdigest(),
        use_case_id=USE_CASE_ID,
        to_phone_number=TO,
        message=body,
        received_at=T0,
        reply_topic="r",
        correlation_id="c",
    )


def message(
    sid: str, body: str = "Your code is 1234", *, after_s: float = 1.0, **overrides: object
) -> TwilioMessage:
    values: dict[str, object] = {
        "sid": sid, "to": TO, "body": body, "messaging_service_sid": SERVICE,
        "status": "sent", "date_created": MARKER_AT + timedelta(seconds=after_s),
    }  # fmt: skip
    values.update(overrides)
    return TwilioMessage(**values)  # type: ignore[arg-type]


def found(req: SendRequest, *messages: TwilioMessage) -> list[TwilioMessage]:
    return decision.candidates(req, TARGET, MARKER_AT, ENDS_AT, messages)


def test_the_window_is_the_deadline_plus_the_margin() -> None:
    assert MARKER_AT + timedelta(seconds=40) == ENDS_AT


def test_found_is_adopted() -> None:
    req = request()
    verdict = decision.verdict(req.request_id, found(req, message("SM1")), {}, T0, ENDS_AT)
    assert verdict == Adopt("SM1")


def test_not_found_waits_until_the_first_attempt_can_no_longer_arrive() -> None:
    req = request()
    assert decision.verdict(req.request_id, [], {}, T0 + timedelta(seconds=5), ENDS_AT) == Wait(
        ENDS_AT
    )
    assert decision.verdict(req.request_id, [], {}, ENDS_AT, ENDS_AT) == Resend()


def test_only_the_same_body_service_number_and_time_match() -> None:
    req = request()
    others = [
        message("SM_body", body="Your code is 9999"),
        message("SM_service", messaging_service_sid="MG" + "9" * 32),
        message("SM_to", to="+14155550000"),
        message("SM_before", after_s=-60),  # created before the attempt began
        message("SM_undated", date_created=None),
    ]
    assert found(req, *others) == []
    assert [m.sid for m in found(req, *others, message("SM_right"))] == ["SM_right"]


def test_a_message_created_seconds_before_the_marker_still_matches() -> None:
    """Twilio's clock and ours differ, and its date_created has whole seconds."""
    req = request()
    assert [m.sid for m in found(req, message("SM1", after_s=-3))] == ["SM1"]


def test_two_interrupted_requests_with_one_body_adopt_two_messages() -> None:
    first, second = request(), request()
    messages = found(first, message("SM_a", after_s=1), message("SM_b", after_s=2))
    one = decision.verdict(first.request_id, messages, {}, T0, ENDS_AT)
    assert one == Adopt("SM_a")
    two = decision.verdict(second.request_id, messages, {"SM_a": first.request_id}, T0, ENDS_AT)
    assert two == Adopt("SM_b")


def test_a_message_adopted_by_another_request_is_never_adopted_again() -> None:
    first, second = request(), request()
    messages = found(first, message("SM_a"))
    adopted = {"SM_a": first.request_id}
    assert decision.verdict(second.request_id, messages, adopted, T0, ENDS_AT) == Wait(ENDS_AT)
    assert decision.verdict(second.request_id, messages, adopted, ENDS_AT, ENDS_AT) == Resend()


def test_a_repeated_order_gets_the_same_adoption() -> None:
    req = request()
    messages = found(req, message("SM_a", after_s=1), message("SM_b", after_s=2))
    adopted = {"SM_b": req.request_id}
    assert decision.verdict(req.request_id, messages, adopted, T0, ENDS_AT) == Adopt("SM_b")


def test_a_message_created_after_the_window_is_not_a_candidate() -> None:
    """The interrupted attempt could no longer arrive then: such a message is another
    request's (the same body sent again to the same number)."""
    req = request()
    late = message("SM_late", after_s=(ENDS_AT - MARKER_AT).total_seconds() + 11)
    in_time = message("SM_in_time", after_s=(ENDS_AT - MARKER_AT).total_seconds() + 9)
    assert [m.sid for m in found(req, late, in_time)] == ["SM_in_time"]


def test_a_message_the_send_path_created_for_another_request_is_never_adopted() -> None:
    """Issue #23's reproduction: A is interrupted, B (same body, same number) is sent and
    gets SM_B. A waits while its attempt may arrive, then is sent: it never adopts SM_B."""
    a, b = request(), request()
    messages = found(a, message("SM_B", after_s=5))
    claimed = {"SM_B": b.request_id}
    assert decision.verdict(a.request_id, messages, claimed, T0, ENDS_AT) == Wait(ENDS_AT)
    assert decision.verdict(a.request_id, messages, claimed, ENDS_AT, ENDS_AT) == Resend()
    assert decision.refused(a.request_id, messages, claimed) == ["SM_B"]


def test_a_request_adopts_its_own_claimed_message_and_refuses_none() -> None:
    req = request()
    messages = found(req, message("SM_own"))
    claimed = {"SM_own": req.request_id}
    assert decision.verdict(req.request_id, messages, claimed, ENDS_AT, ENDS_AT) == Adopt("SM_own")
    assert decision.refused(req.request_id, messages, claimed) == []


def test_twilio_not_asked_waits_and_is_never_a_resend() -> None:
    """Configuration not caught up, token not opened, list call failed: not knowing is not
    "Twilio never got it", however late."""
    req = request()
    assert decision.verdict(req.request_id, None, {}, T0, ENDS_AT) == Wait(ENDS_AT, "unasked")
    late = ENDS_AT + timedelta(hours=1)
    verdict = decision.verdict(req.request_id, None, {}, late, ENDS_AT)
    assert verdict == Wait(late + decision.CANNOT_LOOK_RETRY, "unasked")
    assert decision.refused(req.request_id, None, {}) == []


def test_a_candidate_too_recent_for_its_claim_to_be_seen_waits_even_past_the_window() -> None:
    """B's claim of SM_B is published once B's create call returns: an order published
    before that cannot tell SM_B from the interrupted attempt's message. It waits (neither
    adopts nor resends) until the order's time is a claim lag past SM_B's creation."""
    a = request()
    lag = decision.claim_lag(send_timeout_s=10)
    assert lag == timedelta(seconds=10) + decision.CLOCK_SLACK
    recent = message("SM_B", after_s=30)
    created = MARKER_AT + timedelta(seconds=30)
    ordered_at = created + lag - timedelta(seconds=1)
    too_soon = decision.verdict(
        a.request_id, [recent], {}, ENDS_AT, ENDS_AT, claims_seen_until=ordered_at - lag
    )
    assert too_soon == Wait(ENDS_AT + timedelta(seconds=1), "claims")
    seen = decision.verdict(a.request_id, [recent], {}, ENDS_AT, ENDS_AT, claims_seen_until=created)
    assert seen == Adopt("SM_B")  # no claim came: it is the interrupted attempt's
