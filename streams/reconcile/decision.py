"""What Twilio's list of messages means for an interrupted request, as pure functions.

A request is *interrupted* when its in-flight marker (written before the create call) has
no outcome: the worker died, or lost Twilio's answer, inside the call. Twilio has no
idempotency key, so the only way to know whether the message exists is to look:

- **found** (a message to that number, from the use case's Messaging Service, with that
  body, created since shortly before the marker, that no other request adopted): adopt it;
- **not found** while the first attempt could still arrive at Twilio: wait;
- **not found** after that (the attempt's deadline plus ``SMSLANE_RECONCILE_MARGIN_SECONDS``):
  the attempt never reached Twilio: send the message, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from schemas.events import SendRequest
from streams.sending.provider import TwilioMessage

#: Twilio's ``date_created`` has whole seconds and another clock than the worker's marker.
CLOCK_SLACK = timedelta(seconds=10)


@dataclass(frozen=True)
class Adopt:
    """Twilio created this message for the request."""

    message_sid: str


@dataclass(frozen=True)
class Wait:
    """Nothing found yet, and the first attempt may still arrive: look again at ``until``."""

    until: datetime


@dataclass(frozen=True)
class Resend:
    """Nothing found, and the first attempt can no longer arrive: send it once."""


Verdict = Adopt | Wait | Resend


def window_end(marker_at: datetime, send_timeout_s: float, margin_s: float) -> datetime:
    """When the first attempt can no longer arrive at Twilio: the worker calls Twilio only
    until the ingress's deadline (at most ``send_timeout_s`` after the marker), and a request
    sent by then has arrived ``margin_s`` later."""
    return marker_at + timedelta(seconds=send_timeout_s + margin_s)


def candidates(
    request: SendRequest,
    to: str,
    service_sid: str,
    marker_at: datetime,
    messages: Sequence[TwilioMessage],
) -> list[TwilioMessage]:
    """The messages that could be the request's, oldest first."""
    since = marker_at - CLOCK_SLACK
    matching = [
        m
        for m in messages
        if m.to == to
        and m.body == request.message
        and m.messaging_service_sid == service_sid
        and m.date_created is not None
        and m.date_created >= since
    ]
    return sorted(matching, key=lambda m: (m.date_created, m.sid))


def verdict(
    request_id: UUID,
    found: Sequence[TwilioMessage],
    adopted: Mapping[str, UUID],
    now: datetime,
    ends_at: datetime,
) -> Verdict:
    """Adopt the oldest candidate no other request adopted (the request's own earlier
    adoption first, so that a repeated order gives the same answer); else wait or resend.

    ``adopted`` maps the Twilio SIDs already adopted for this number to their requests.
    """
    for message in found:
        if adopted.get(message.sid) == request_id:
            return Adopt(message.sid)
    for message in found:
        if message.sid not in adopted:
            return Adopt(message.sid)
    if now < ends_at:
        return Wait(ends_at)
    return Resend()
