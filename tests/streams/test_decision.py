"""The send decision as pure functions: admission, checks around Lookup, deadline, answers."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from feeds.config import ConfigView
from schemas.config import ConfigChange, OptOut, Subaccount, config_key
from schemas.errors import (
    DestinationOptedOut,
    IdempotencyKeyReused,
    InvalidDestination,
    ProviderUnavailable,
    ServiceUnavailable,
    UseCaseNotFound,
)
from schemas.events import SendRequest, SendTarget
from streams.sending import decision
from streams.sending.decision import Conflict, Interrupted, New, Prechecked, Ready, Replay
from streams.sending.outcomes import Outcome
from tests.streams.factories import (
    T0,
    TEST_BOX,
    create_brand,
    create_sender,
    create_use_case,
    sealed,
)

USE_CASE = create_use_case()
ACCOUNT = Subaccount(account_sid=USE_CASE.account_sid, auth_token="t", created_at=T0, updated_at=T0)


def view(*, account: bool = True, opted_out: str | None = None) -> ConfigView:
    config = ConfigView(TEST_BOX)
    entities: list[object] = [create_brand(), USE_CASE, create_sender()]
    if account:
        entities.append(sealed(ACCOUNT))
    if opted_out:
        entities.append(OptOut(use_case_id=USE_CASE.id, phone_number=opted_out, created_at=T0))
    for offset, entity in enumerate(entities):
        config.apply("k", ConfigChange(entity=entity).model_dump_json().encode(), offset)
    return config


def request(body: str = "hi", to: str = "+14155552671") -> SendRequest:
    return SendRequest(
        request_id=uuid.uuid4(),
        body_hash=hashlib.sha256(body.encode()).hexdigest(),
        use_case_id=USE_CASE.id,
        to_phone_number=to,
        message=body,
        received_at=T0,
        reply_topic="r",
        correlation_id="c",
    )


# -- admission ------------------------------------------------------------------------


def test_admission_of_each_kind_of_stored_outcome() -> None:
    req = request()
    done = Outcome(body_hash=req.body_hash, decided_at=T0, status_code=201)
    assert decision.admission_for(req, None, T0) == New()
    assert decision.admission_for(req, done, T0 + timedelta(hours=23)) == Replay(done)
    assert decision.admission_for(req, done, T0 + timedelta(hours=24)) == New()
    other = done.model_copy(update={"body_hash": "other"})
    assert decision.admission_for(req, other, T0) == Conflict()
    marker = Outcome.marker(req, T0)
    assert decision.admission_for(req, marker, T0) == Interrupted(marker)


def test_an_interrupted_request_is_answered_503_with_when_to_come_back() -> None:
    until = T0 + timedelta(seconds=20)
    answer = decision.interrupted_answer(request(), T0, until)
    assert answer.status_code == 503 and answer.retry_after == 21
    assert answer.error is not None and answer.error.code == "provider_unavailable"
    late = decision.interrupted_answer(request(), until + timedelta(seconds=5), until)
    assert late.retry_after == 2  # reconciliation is due: come back soon
    old = decision.interrupted_answer(request(), T0, None)  # a marker without its request
    assert old.retry_after == 60


# -- the checks -----------------------------------------------------------------------


def test_precheck_finds_the_use_case_number_and_subaccount() -> None:
    config = view()
    checked = decision.precheck(request(), config.use_cases.get(USE_CASE.id), config)
    assert isinstance(checked, Prechecked)
    assert checked.destination.e164 == "+14155552671" and checked.account == ACCOUNT
    assert isinstance(decision.precheck(request(), None, config), UseCaseNotFound)
    bad = decision.precheck(request(to="+1415"), USE_CASE, config)
    assert isinstance(bad, InvalidDestination)


def prechecked(config: ConfigView, to: str = "+14155552671") -> Prechecked:
    checked = decision.precheck(request(to=to), USE_CASE, config)
    assert isinstance(checked, Prechecked)
    return checked


@pytest.mark.parametrize(
    ("line_type", "expected"),
    [("invalid", InvalidDestination), ("landline", InvalidDestination), ("mobile", Ready)],
)
def test_postcheck_reads_the_line_type(line_type: str, expected: type) -> None:
    config = view()
    assert isinstance(
        decision.postcheck(prechecked(config), line_type, config, conflict=False), expected
    )


def test_a_conflict_answers_409_only_after_the_checks_pass() -> None:
    config = view(opted_out="+14155552671")
    checked = prechecked(config)
    assert isinstance(decision.postcheck(checked, None, config, conflict=True), DestinationOptedOut)
    config = view()
    assert isinstance(
        decision.postcheck(prechecked(config), None, config, conflict=True), IdempotencyKeyReused
    )


def test_a_use_case_without_its_subaccount_is_a_provider_error() -> None:
    config = view(account=False)
    error = decision.postcheck(prechecked(config), None, config, conflict=False)
    assert isinstance(error, ProviderUnavailable)
    assert decision.check_failed(request(), error, T0).retry_after == 60
    lagging = decision.check_failed(request(), ServiceUnavailable("lagging"), T0)
    assert lagging.retry_after == 2
    assert decision.check_failed(request(), UseCaseNotFound(), T0).retry_after is None


def test_a_use_case_whose_subaccount_token_no_key_opens_is_a_provider_error() -> None:
    config = view(account=False)
    config.undecryptable[USE_CASE.account_sid] = sealed(ACCOUNT)
    error = decision.postcheck(prechecked(config), None, config, conflict=False)
    assert isinstance(error, ProviderUnavailable)
    assert USE_CASE.account_sid in error.detail and "SMSLANE_SECRET_KEYS" in error.detail


# -- the deadline ---------------------------------------------------------------------


def test_the_deadline_comes_from_the_broker_clock_when_the_topic_has_it() -> None:
    skewed = T0 - timedelta(minutes=2)  # the ingress's clock is two minutes behind
    broker = T0.timestamp()
    by_broker = decision.send_deadline(broker, decision.LOG_APPEND_TIME, skewed, 10.0)
    assert by_broker == broker + 10.0 - decision.REPLY_MARGIN_S
    by_ingress = decision.send_deadline(broker, 0, skewed, 10.0)  # CreateTime: not trusted
    assert by_ingress == skewed.timestamp() + 10.0 - decision.REPLY_MARGIN_S


# -- Twilio's answer ------------------------------------------------------------------


def ready() -> Ready:
    config = view()
    checked = decision.postcheck(prechecked(config), None, config, conflict=False)
    assert isinstance(checked, Ready)
    return checked


def test_a_created_message_is_a_pending_record_dated_when_received() -> None:
    req = request()
    outcome = decision.created(req, ready(), "SM" + "a" * 32, T0 + timedelta(seconds=1))
    assert outcome.status_code == 201 and outcome.record is not None
    assert outcome.record.created_at == req.received_at
    assert outcome.record.status == "pending"


def test_a_created_message_is_published_with_the_subaccount_and_service_it_went_through() -> None:
    sent_through = ready()
    outcome = decision.created(request(), sent_through, "SM" + "a" * 32, T0)
    event = outcome.created_event()
    assert event.account_sid == sent_through.account.account_sid
    assert event.messaging_service_sid == sent_through.use_case.messaging_service_sid
    assert event.record() == outcome.record  # the public record leaves them out
    assert "account_sid" not in outcome.reply(request()).model_dump_json()


def test_an_adopted_message_is_published_with_the_subaccount_and_service_of_its_marker() -> None:
    req = request()
    target = SendTarget(
        account_sid="AC" + "7" * 32, messaging_service_sid="MG" + "7" * 32, to=req.to_phone_number
    )
    marker = Outcome.marker(req, T0, target)
    event = decision.adopted(marker, req, req.to_phone_number, "SM" + "b" * 32, T0).created_event()
    assert (event.account_sid, event.messaging_service_sid) == (
        target.account_sid,
        target.messaging_service_sid,
    )
    older = decision.adopted(Outcome.marker(req, T0), req, req.to_phone_number, "SM" + "b" * 32, T0)
    assert older.created_event().account_sid is None  # the lifecycle falls back to today's


def test_twilio_21610_is_an_opt_out_to_record() -> None:
    decided = decision.rejected(request(), ready(), 21610, "unsubscribed", T0)
    assert decided.outcome.status_code == 422
    assert decided.outcome.error is not None
    assert decided.outcome.error.code == "destination_opted_out"
    assert decided.opt_out is not None and decided.opt_out.phone_number == "+14155552671"
    assert decided.opt_out.source == "twilio_21610"  # an opt-in keyword may clear it
    assert config_key(decided.opt_out).endswith(":+14155552671:twilio_21610")


def test_an_unknown_twilio_error_is_a_503_to_retry_later() -> None:
    decided = decision.rejected(request(), ready(), 30001, "queue overflow", T0)
    assert (decided.outcome.status_code, decided.outcome.retry_after) == (503, 60)
    assert decided.opt_out is None
    assert decision.forget_after(decided.outcome)  # Twilio did nothing: a retry may send


def test_a_lost_answer_stays_in_flight_and_is_never_forgotten() -> None:
    outcome = decision.maybe_sent(request(), "timeout", T0, T0 + timedelta(seconds=8))
    assert outcome.in_flight and not decision.forget_after(outcome)
    down = decision.provider_down(request(), "connection refused", 5, T0)
    assert not down.in_flight and decision.forget_after(down)


def test_a_lost_answer_says_to_come_back_when_reconciliation_can_settle_it() -> None:
    """Not a fixed minute: at the end of the marker's window Twilio either shows the
    message (adopted) or never got it (sent once), so a retry then gets the answer."""
    until = T0 + timedelta(seconds=33)
    outcome = decision.maybe_sent(request(), "TimeoutError", T0 + timedelta(seconds=9), until)
    assert (outcome.status_code, outcome.retry_after) == (503, 25)
    assert outcome.error is not None and outcome.error.code == "provider_unavailable"
    assert "Retry-After" in outcome.error.detail
    late = decision.maybe_sent(request(), "TimeoutError", until, until)
    assert late.retry_after == 2
    assert decision.come_back_after(T0, T0 + timedelta(minutes=10)) == 60  # at most a minute


def test_expiry_is_the_idempotency_window() -> None:
    outcome = Outcome(body_hash="h", decided_at=datetime(2026, 1, 1, tzinfo=UTC), status_code=201)
    assert not decision.expired(outcome, outcome.decided_at + timedelta(hours=23, minutes=59))
    assert decision.expired(outcome, outcome.decided_at + decision.IDEMPOTENCY_WINDOW)
