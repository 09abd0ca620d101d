"""What Twilio's list of messages means for an interrupted request, as pure functions.

A request is *interrupted* when its in-flight marker (written before the create call) has
no outcome: the worker died, or lost Twilio's answer, inside the call. Twilio has no
idempotency key, so the only way to know whether the message exists is to look, where the
create call went (the marker's :class:`~schemas.events.SendTarget`):

- **found** (a message to that number, from that Messaging Service, with that body, created
  within the marker's window, that the send path did not create for another request and no
  other request adopted): adopt it;
- **not found** while the first attempt could still arrive at Twilio: wait;
- **not found** after that (the attempt's deadline plus ``SMSLANE_RECONCILE_MARGIN_SECONDS``):
  the attempt never reached Twilio: send the message, once;
- **Twilio could not be asked** (the configuration has not caught up, the subaccount is
  unknown or its token cannot be opened, the list call failed): wait, however late. Not
  knowing is never taken for "Twilio never got it".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from schemas.events import SendRequest, SendTarget
from streams.sending.provider import TwilioMessage

#: Twilio's ``date_created`` has whole seconds and another clock than the worker's marker.
CLOCK_SLACK = timedelta(seconds=10)
#: When Twilio could not be asked, when it is asked again at the earliest (orders come
#: every few seconds anyway; this is what the log line says).
CANNOT_LOOK_RETRY = timedelta(seconds=5)


@dataclass(frozen=True)
class Adopt:
    """Twilio created this message for the request."""

    message_sid: str


@dataclass(frozen=True)
class Wait:
    """Look again at ``until``: ``why`` is ``window`` (nothing found yet, and the first
    attempt may still arrive), ``claims`` (a candidate is too recent for its claim by
    another request, if any, to have been seen) or ``unasked`` (Twilio could not be asked)."""

    until: datetime
    why: Literal["window", "claims", "unasked"] = "window"


@dataclass(frozen=True)
class Resend:
    """Nothing found, and the first attempt can no longer arrive: send it once."""


Verdict = Adopt | Wait | Resend


def window_end(marker_at: datetime, send_timeout_s: float, margin_s: float) -> datetime:
    """When the first attempt can no longer arrive at Twilio: the worker calls Twilio only
    until the ingress's deadline (at most ``send_timeout_s`` after the marker), and a request
    sent by then has arrived ``margin_s`` later."""
    return marker_at + timedelta(seconds=send_timeout_s + margin_s)


def body_digest(body: str) -> str:
    """What a claim records of its message's body (SHA-256, hex): claims are kept by
    destination and body, since only a message with a request's body can be its message."""
    return hashlib.sha256(body.encode()).hexdigest()


def claim_lag(send_timeout_s: float) -> timedelta:
    """How long after Twilio created a message its claim may reach ``sms.reconcile``: the
    send path publishes it once the create call returns (by the request's deadline, at most
    ``send_timeout_s``), and Twilio's clock is not ours."""
    return timedelta(seconds=send_timeout_s) + CLOCK_SLACK


def candidates(
    request: SendRequest,
    target: SendTarget,
    marker_at: datetime,
    ends_at: datetime,
    messages: Sequence[TwilioMessage],
) -> list[TwilioMessage]:
    """The messages that could be the request's, oldest first: sent where its create call
    went, with its body, and created within its marker's window (a message created after
    the first attempt could no longer arrive is another request's)."""
    since, until = marker_at - CLOCK_SLACK, ends_at + CLOCK_SLACK
    matching = [
        m
        for m in messages
        if m.to == target.to
        and m.body == request.message
        and m.messaging_service_sid == target.messaging_service_sid
        and m.date_created is not None
        and since <= m.date_created <= until
    ]
    return sorted(matching, key=lambda m: (m.date_created, m.sid))


def verdict(
    request_id: UUID,
    found: Sequence[TwilioMessage] | None,
    claimed: Mapping[str, UUID],
    now: datetime,
    ends_at: datetime,
    *,
    claims_seen_until: datetime | None = None,
) -> Verdict:
    """Adopt the oldest candidate no other request claimed (the request's own earlier claim
    first, so that a repeated order gives the same answer); else wait or resend.

    ``found`` is None when Twilio could not be asked: wait. ``claimed`` maps the Twilio
    SIDs already claimed for this number (created by the send path, or adopted) to their
    requests; it holds every claim of a message created up to ``claims_seen_until`` (the
    order's time less :func:`claim_lag`; None: every claim). A newer candidate may be
    another request's whose claim is still on its way: wait until it is not newer.
    """
    if found is None:
        return Wait(ends_at if now < ends_at else now + CANNOT_LOOK_RETRY, "unasked")
    for message in found:
        if claimed.get(message.sid) == request_id:
            return Adopt(message.sid)
    for message in found:
        if message.sid in claimed:
            continue
        created = message.date_created
        if claims_seen_until is None or created is None or created <= claims_seen_until:
            return Adopt(message.sid)
        return Wait(now + (created - claims_seen_until), "claims")
    if now < ends_at:
        return Wait(ends_at)
    return Resend()


def refused(
    request_id: UUID, found: Sequence[TwilioMessage] | None, claimed: Mapping[str, UUID]
) -> list[str]:
    """The candidates not adopted because they are another request's message."""
    return [m.sid for m in found or () if claimed.get(m.sid, request_id) != request_id]
