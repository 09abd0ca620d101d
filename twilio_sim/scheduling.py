"""Twilio's scheduled messages and validity periods, as the simulator models them.

A create call with ``ScheduleType=fixed`` and ``SendAt`` (through a Messaging Service, 15
minutes to 35 days ahead) makes a message ``scheduled``; at ``SendAt`` it is sent like any
other, with the usual callbacks. A scheduled message can be canceled (``Status=canceled``
on the Messages update call); a message past ``scheduled`` cannot (30409). A message with a
``ValidityPeriod`` still ``queued`` that long after it was queued fails with 30001.

Time is the :class:`SimClock`'s: the real clock plus whatever the tests moved it forward by
(``POST /_sim/clock``). The demo's knob, ``time_scale``, shortens the waits instead (a message
scheduled an hour ahead with ``time_scale`` 60 is sent a minute later): see :func:`due_at`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from twilio_sim.errors import TwilioError

MIN_AHEAD_S = 15 * 60
MAX_AHEAD_S = 35 * 24 * 3600
#: ``ErrorCode`` of a message whose validity period ran out in the queue.
VALIDITY_EXPIRED_CODE = 30001


class SimClock:
    """The simulator's time: the real clock plus ``advanced`` seconds."""

    def __init__(self) -> None:
        self.advanced = 0.0

    def now(self) -> float:
        return time.time() + self.advanced

    def advance(self, seconds: float) -> None:
        self.advanced += seconds


def due_at(now: float, wait_s: float, time_scale: float) -> float:
    """When a wait of ``wait_s`` that starts at ``now`` ends: ``time_scale`` times sooner."""
    return now + max(0.0, wait_s) / time_scale


def parse_schedule(form: Mapping[str, str], now: float) -> float | TwilioError | None:
    """``SendAt`` (epoch seconds) of a create call, its error, or None if not scheduled."""
    schedule_type, send_at = form.get("ScheduleType"), form.get("SendAt")
    if not schedule_type and not send_at:
        return None
    if schedule_type != "fixed":
        return TwilioError(400, 35111, "Invalid ScheduleType; only 'fixed' is supported.")
    if not form.get("MessagingServiceSid"):
        return TwilioError(400, 35118, "MessagingServiceSid is required to schedule a message.")
    try:
        when = datetime.fromisoformat(str(send_at).replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        return TwilioError(400, 35114, "Scheduling does not support this timestamp.")
    at = when.astimezone(UTC).timestamp()
    if not MIN_AHEAD_S <= at - now <= MAX_AHEAD_S:
        return TwilioError(
            400, 35114, "SendAt must be between 15 minutes and 35 days in the future."
        )
    return at


def parse_validity(form: Mapping[str, str]) -> int | TwilioError | None:
    """``ValidityPeriod`` of a create call (1 to 36000 seconds), its error, or None."""
    raw = form.get("ValidityPeriod")
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 36000:
        return TwilioError(400, 21620, "ValidityPeriod must be an integer from 1 to 36000.")
    return int(raw)


def not_cancelable(sid: str) -> TwilioError:
    """30409: only a scheduled message can be canceled."""
    return TwilioError(400, 30409, f"Message {sid} cannot be canceled: it is no longer scheduled.")
