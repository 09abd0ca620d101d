"""Every rule of a send, as pure functions over plain values: no Kafka, no HTTP, no clock.

The worker runs a request through them in this order (see :class:`~streams.sending.sender.
Sender`)::

    admission_for(request, stored, now)      # new, a replay, a conflict, or interrupted
    precheck(view, request)                  # use case, pool, campaign, number, subaccount
    <Lookup of the number's line type>
    postcheck(prechecked, line_type, ...)    # line type, opt-out, region, brand, conflict
    <Twilio create, unless past send_deadline(...)>
    outcome_of_create(request, ...)          # the record, or the error Twilio's answer means

The checks themselves (the contract's order) are in :mod:`streams.sending.checks`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.config import OptOut, OptOutSource, Subaccount, UseCase
from schemas.errors import (
    DestinationOptedOut,
    IdempotencyKeyReused,
    InvalidDestination,
    ProviderUnavailable,
    ServiceUnavailable,
    SmslaneError,
)
from schemas.events import ErrorBody, SendRequest, SendTarget
from schemas.records import SmsRecord, SmsStatus
from streams.sending import checks
from streams.sending.outcomes import Outcome

IDEMPOTENCY_WINDOW = timedelta(hours=24)
#: Kept back from the ingress's deadline for the answer's way back to it.
REPLY_MARGIN_S = 0.5
#: Kafka's timestamp type of a record stamped by the broker.
LOG_APPEND_TIME = 1


# -- admission: what a request id already has -------------------------------------------


@dataclass(frozen=True)
class New:
    """Never seen (or forgotten): mark it in flight and decide it."""


@dataclass(frozen=True)
class Replay:
    """Decided before: answer ``outcome`` again."""

    outcome: Outcome


@dataclass(frozen=True)
class Conflict:
    """The id was used with another body: 409 once the contract's earlier checks pass."""


@dataclass(frozen=True)
class Interrupted:
    """An earlier attempt was cut off inside the Twilio call (its marker has no outcome)."""

    marker: Outcome


Admission = New | Replay | Conflict | Interrupted


def admission_for(request: SendRequest, stored: Outcome | None, now: datetime) -> Admission:
    """What the request id's stored outcome (if any, within 24 hours) means for ``request``."""
    if stored is None or now - stored.decided_at >= IDEMPOTENCY_WINDOW:
        return New()
    if stored.body_hash != request.body_hash:
        return Conflict()
    if stored.in_flight:
        return Interrupted(stored)
    return Replay(stored)


def expired(outcome: Outcome, at: datetime) -> bool:
    """Whether an outcome has left the idempotency window at ``at``."""
    return outcome.decided_at + IDEMPOTENCY_WINDOW <= at


def interrupted_answer(
    request: SendRequest, now: datetime, reconcilable_until: datetime | None
) -> Outcome:
    """The answer to a retry of an interrupted request while reconciliation looks for its
    message at Twilio: 503 with the time to come back (``reconcilable_until`` is when the
    first attempt can no longer arrive; None for a marker too old to reconcile)."""
    if reconcilable_until is None:
        error = ProviderUnavailable(
            "An earlier attempt of this request was interrupted while Twilio was being "
            "called; it is not retried, so that the message is never sent twice."
        )
        return error_outcome(request, error, now, retry_after=60)
    error = ProviderUnavailable(
        "An earlier attempt of this request was interrupted while Twilio was being called; "
        "smslane is finding out from Twilio whether it was sent (and sends it once if not). "
        "Retry with the same Idempotency-Key after Retry-After."
    )
    return error_outcome(request, error, now, retry_after=come_back_after(now, reconcilable_until))


def come_back_after(now: datetime, reconcilable_until: datetime) -> int:
    """Retry-After (seconds) for a request reconciliation is to settle: the end of its
    window plus a second, at least 2 and at most 60. A message Twilio has may be adopted
    sooner; one Twilio never got is sent no earlier than that, so a retry then may still get
    one more 503 (with Retry-After 2) while the resend is under way."""
    wait_s = (reconcilable_until - now).total_seconds()
    return max(2, min(60, int(wait_s) + 1))


def adopted(marker: Outcome, request: SendRequest, to: str, sid: str, now: datetime) -> Outcome:
    """The 201 outcome of an interrupted request whose message Twilio did create as ``sid``.

    The record id is derived from the request and the SID, so that a repeated adoption
    yields the same record. Its ``sms.created`` event names the subaccount and service of
    the marker's create call (none on markers older than that snapshot)."""
    record = new_record(request, uuid.uuid5(request.request_id, sid), request.use_case_id, sid, to)
    target = marker.target
    return Outcome(
        body_hash=marker.body_hash, decided_at=now, status_code=201, record=record,
        account_sid=target.account_sid if target else None,
        messaging_service_sid=target.messaging_service_sid if target else None,
    )  # fmt: skip


def new_record(
    request: SendRequest, record_id: uuid.UUID, use_case_id: uuid.UUID, sid: str, to: str
) -> SmsRecord:
    """The first version of the record of a message Twilio created as ``sid``: ``scheduled``
    when the request has ``send_at``, else ``pending``."""
    return SmsRecord(
        id=record_id,
        use_case_id=use_case_id,
        message_sid=sid,
        to_number=to,
        body=request.message,
        status=SmsStatus.SCHEDULED if request.send_at is not None else SmsStatus.PENDING,
        created_at=request.received_at,
        updated_at=request.received_at,
        send_at=request.send_at,
        validity_period=request.validity_period,
        client_reference=request.client_reference,
    )


# -- the checks around the Lookup ---------------------------------------------------------


@dataclass(frozen=True)
class Prechecked:
    """A request whose use case, pool and number passed; Lookup comes next."""

    use_case: UseCase
    destination: checks.Destination
    account: Subaccount | None


@dataclass(frozen=True)
class Ready:
    """A request that passed every check: create it at Twilio."""

    use_case: UseCase
    destination: checks.Destination
    account: Subaccount

    @property
    def target(self) -> SendTarget:
        """Where the create call goes: what the in-flight marker records."""
        return send_target(self.use_case, self.destination.e164)


def send_target(use_case: UseCase, to: str) -> SendTarget:
    """Where a create call for ``use_case`` to ``to`` (E.164) goes."""
    return SendTarget(
        account_sid=use_case.account_sid, messaging_service_sid=use_case.messaging_service_sid,
        to=to,
    )  # fmt: skip


def expected_target(request: SendRequest, use_case: UseCase | None) -> SendTarget | None:
    """Where ``request``'s create call is expected to go, by a configuration that may not
    have caught up yet (the checks decide; None when it cannot be told)."""
    destination = checks.parse_destination(request.to_phone_number)
    if use_case is None or not isinstance(destination, checks.Destination):
        return None
    return send_target(use_case, destination.e164)


def precheck(
    request: SendRequest, use_case: UseCase | None, config: Any
) -> Prechecked | SmslaneError:
    """Checks 1-4 and the number's validity; ``config`` is the worker's configuration view."""
    senders = config.sender_list(request.use_case_id)
    error = checks.check_use_case(use_case, senders)
    if error is not None:
        return error
    assert use_case is not None
    destination = checks.parse_destination(request.to_phone_number)
    if isinstance(destination, SmslaneError):
        return destination
    return Prechecked(use_case, destination, config.subaccounts.get(use_case.account_sid))


def postcheck(
    prechecked: Prechecked, line_type: str | None, config: Any, *, conflict: bool
) -> Ready | SmslaneError:
    """Checks 5-8 after the Lookup, then the conflict (409) and the subaccount."""
    use_case, destination = prechecked.use_case, prechecked.destination
    if line_type == "invalid":
        return InvalidDestination(
            f"Twilio Lookup reports {destination.e164} as not a valid phone number."
        )
    error = checks.check_destination(
        destination,
        line_type,
        config.opted_out(use_case.id, destination.e164),
        use_case,
        config.brands.get(use_case.brand_id),
    )
    if error is not None:
        return error
    if conflict:
        return IdempotencyKeyReused()
    if prechecked.account is None and use_case.account_sid in config.undecryptable:
        return ProviderUnavailable(
            f"The auth token of the use case's Twilio subaccount {use_case.account_sid} "
            "cannot be decrypted with the configured SMSLANE_SECRET_KEYS."
        )
    if prechecked.account is None:
        return ProviderUnavailable(
            f"The use case's Twilio subaccount {use_case.account_sid} is not configured."
        )
    return Ready(use_case, destination, prechecked.account)


def check_failed(request: SendRequest, error: SmslaneError, now: datetime) -> Outcome:
    """The answer to a request that failed a check: the error, and when to retry for the
    503s (the worker's configuration lagging: soon; no subaccount configured: later)."""
    retry_after = None
    if isinstance(error, ProviderUnavailable):
        retry_after = 60
    elif isinstance(error, ServiceUnavailable):
        retry_after = 2
    return error_outcome(request, error, now, retry_after=retry_after)


# -- the deadline -----------------------------------------------------------------------


def send_deadline(
    timestamp_s: float | None, timestamp_type: int | None, received_at: datetime, timeout_s: float
) -> float:
    """When the ingress stops waiting for a request (epoch seconds), less a margin.

    The ingress waits ``timeout_s`` from the broker's ack of the request. The requests topic
    stamps each record with the broker's clock when it is appended (LogAppendTime), never
    after that ack, so the append time plus ``timeout_s`` is never later than the moment the
    ingress gives up, whatever the ingress's own clock says: only the broker's and the
    worker's clocks need to agree. A record without a broker timestamp (a topic created
    before it had that setting) falls back to the ingress's ``received_at``.
    """
    if timestamp_s and timestamp_type == LOG_APPEND_TIME:
        start = timestamp_s
    else:
        start = received_at.timestamp()
    return start + timeout_s - REPLY_MARGIN_S


def too_late(request: SendRequest, now: datetime) -> Outcome:
    """The answer when the deadline passed before Twilio was called."""
    error = ProviderUnavailable("The request waited too long to be sent; retry it.")
    return error_outcome(request, error, now, retry_after=1)


# -- Twilio's answer ----------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    """A request's outcome and, for Twilio error 21610, the opt-out to record."""

    outcome: Outcome
    opt_out: OptOut | None = None


def created(request: SendRequest, ready: Ready, sid: str, now: datetime) -> Outcome:
    """The 201 outcome of a message Twilio created as ``sid``."""
    record = new_record(request, uuid.uuid4(), ready.use_case.id, sid, ready.destination.e164)
    return Outcome(
        body_hash=request.body_hash, decided_at=now, status_code=201, record=record,
        account_sid=ready.account.account_sid,
        messaging_service_sid=ready.use_case.messaging_service_sid,
    )  # fmt: skip


def rejected(
    request: SendRequest, ready: Ready, code: int | None, message: str, now: datetime
) -> Decided:
    """Twilio refused the create with error ``code``: the contract's error, or 503."""
    error = checks.error_from_twilio_code(code)
    if error is None:
        error = ProviderUnavailable(f"Twilio refused the message (error {code}: {message}).")
        return Decided(error_outcome(request, error, now, retry_after=60))
    opt_out = None
    if isinstance(error, DestinationOptedOut):
        opt_out = OptOut(
            use_case_id=ready.use_case.id,
            phone_number=ready.destination.e164,
            source=OptOutSource.TWILIO_21610,
            created_at=now,
        )
    return Decided(error_outcome(request, error, now), opt_out)


def maybe_sent(
    request: SendRequest, reason: str, now: datetime, reconcilable_until: datetime
) -> Outcome:
    """Twilio's answer was lost: the request stays marked in flight, never sent again, and
    reconciliation settles it by ``reconcilable_until`` (the end of its marker's window),
    which is when the 503 says to come back."""
    error = ProviderUnavailable(
        f"Twilio's answer was lost ({reason}); the message may have been sent, so it is not "
        "sent again until smslane has asked Twilio. Retry with the same Idempotency-Key "
        "after Retry-After."
    )
    retry_after = come_back_after(now, reconcilable_until)
    return error_outcome(request, error, now, retry_after=retry_after, in_flight=True)


def provider_down(request: SendRequest, reason: str, retry_after: int, now: datetime) -> Outcome:
    """Twilio certainly did not create the message: 503, and a retry may send it."""
    error = ProviderUnavailable(f"Twilio is unavailable ({reason}); retry later.")
    return error_outcome(request, error, now, retry_after=retry_after)


def unexpected_failure(request: SendRequest, now: datetime) -> Outcome:
    """A bug or an unexpected library error while deciding: 503, still marked in flight,
    since Twilio may have created the message before it."""
    error = ProviderUnavailable("The message could not be sent; retry later.")
    return error_outcome(request, error, now, retry_after=5, in_flight=True)


def forget_after(outcome: Outcome) -> bool:
    """Whether a new request's entry is removed (not kept) after answering ``outcome``:
    a 503 for which Twilio certainly did nothing, so that a retry runs afresh."""
    return outcome.status_code == 503 and not outcome.in_flight


def error_outcome(
    request: SendRequest,
    error: SmslaneError,
    now: datetime,
    *,
    retry_after: int | None = None,
    in_flight: bool = False,
) -> Outcome:
    return Outcome(
        body_hash=request.body_hash,
        decided_at=now,
        status_code=error.status_code,
        error=ErrorBody(detail=error.detail, code=error.code),
        retry_after=retry_after,
        in_flight=in_flight,
    )
