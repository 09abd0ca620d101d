"""What the simulator remembers about each message, and how it renders it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from twilio_sim.config import Scenario
from twilio_sim.errors import CALLBACK_ERROR_MESSAGES

API_VERSION = "2010-04-01"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_rfc2822_cache: tuple[int, str] = (-1, "")

_STATUS_RANK = {
    "scheduled": -1,
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
}


def rfc2822(timestamp: float) -> str:
    """``Thu, 24 Aug 2023 05:01:45 +0000``, as Twilio dates its resources (locale-free)."""
    global _rfc2822_cache
    second = int(timestamp)
    if _rfc2822_cache[0] == second:
        return _rfc2822_cache[1]
    t = time.gmtime(second)
    text = (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _rfc2822_cache = (second, text)
    return text


@dataclass(slots=True)
class CallbackRecord:
    """One status callback the simulator sent (or tried to send)."""

    status: str
    """``MessageStatus`` it carries."""
    error_code: int | None
    url: str
    """The URL requested and signed (fragment removed)."""
    idempotency_token: str
    """``I-Twilio-Idempotency-Token``: the same on every retry of this callback."""
    attempts: int = 0
    outcome: str = "pending"
    """``pending``, ``delivered`` (2xx/3xx), ``rejected`` (4xx, not retried), ``failed``, or
    ``dropped`` (never sent: the destination is one of ``silent_numbers``)."""
    http_status: int | None = None
    error: str | None = None
    """The last connection error, when there was one."""
    sent_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        """Inspection view."""
        return {
            "status": self.status,
            "error_code": self.error_code,
            "url": self.url,
            "idempotency_token": self.idempotency_token,
            "attempts": self.attempts,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": self.error,
            "sent_at": self.sent_at,
        }


@dataclass(slots=True)
class SimMessage:
    """A message created through the simulated Messages API."""

    sid: str
    account_sid: str
    to: str
    body: str
    messaging_service_sid: str | None
    requested_from: str | None
    """``From`` of the create call (``None`` for a Messaging Service send)."""
    sender: str
    """The number it is sent from: the chosen pool number, or ``From``."""
    num_segments: int
    status_callback: str | None
    scenario: Scenario
    status: str
    created: float
    updated: float
    sent: float | None = None
    error_code: int | None = None
    callbacks: list[CallbackRecord] = field(default_factory=list)
    seq: int = 0
    """Position in creation order, given by the store (the list call's page tokens)."""
    send_at: float | None = None
    """``SendAt`` of a scheduled message (the simulator's clock, epoch seconds)."""
    validity_period: int | None = None
    """``ValidityPeriod``: seconds it may wait ``queued`` before it fails (30001)."""
    due_at: float | None = None
    """When a scheduled message is sent (the simulator's clock: ``SendAt``, sooner with
    ``time_scale``), or a held one fails for its validity period."""

    def advance(self, status: str, error_code: int | None, now: float) -> None:
        """Move to ``status`` unless the message is already further along its lifecycle."""
        if _STATUS_RANK.get(status, 0) <= _STATUS_RANK.get(self.status, 0):
            return
        self.status = status
        self.updated = now
        if error_code is not None:
            self.error_code = error_code
        if status in ("sent", "delivered", "undelivered") and self.sent is None:
            self.sent = now

    def shown_from(self) -> str | None:
        """``from`` as the resource shows it: a Messaging Service send's sender shows only
        once the message has left ``accepted``."""
        if self.status in ("scheduled", "accepted") and self.messaging_service_sid is not None:
            return self.requested_from
        return self.sender

    def uri(self) -> str:
        """The resource's path, relative to the API host."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource JSON, as the create and fetch calls answer it."""
        pending_service = (
            self.status in ("scheduled", "accepted") and self.messaging_service_sid is not None
        )
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created),
            "date_sent": rfc2822(self.sent) if self.sent is not None else None,
            "date_updated": rfc2822(self.updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": CALLBACK_ERROR_MESSAGES.get(self.error_code)
            if self.error_code is not None
            else None,
            "from": self.shown_from(),
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "0" if pending_service else str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": f"{base}.json",
        }

    def as_json(self) -> dict[str, Any]:
        """Inspection view: the resource plus what only the simulator knows."""
        return {
            "sid": self.sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "body": self.body,
            "messaging_service_sid": self.messaging_service_sid,
            "from": self.requested_from,
            "sender": self.sender,
            "num_segments": self.num_segments,
            "status": self.status,
            "error_code": self.error_code,
            "scenario": self.scenario.value,
            "status_callback": self.status_callback,
            "date_created": rfc2822(self.created),
            "callbacks": [record.as_json() for record in self.callbacks],
        }
