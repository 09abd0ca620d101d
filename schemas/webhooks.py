"""Webhooks to client services: event ids and bodies, URL rules, and the values of the
webhook topics (``docs/webhooks.md``).

Everything here is pure (no I/O): the ingress checks a URL with :func:`url_problem` when an
endpoint is registered, the worker checks it again, and every resolved address with
:func:`address_problem`, before each attempt.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from schemas.config import WebhookEventType

#: The namespace of :func:`webhook_event_id` (uuid5 over type, subject and version).
EVENT_NAMESPACE = uuid.UUID("0f5b8c52-6a1e-4f0b-9a57-3f1c2d8e4b60")
#: The setting that lets endpoints on private networks (and ``http://``) in.
ALLOW_PRIVATE_VARIABLE = "SMSLANE_WEBHOOK_ALLOW_PRIVATE_URLS"


def webhook_event_id(event_type: WebhookEventType, subject_id: uuid.UUID, version: int) -> str:
    """The id of the event about ``subject_id`` at ``version`` (a record's id and version, or
    an inbound message's id and 1): the same for every attempt and every replay of it, so
    receivers drop duplicates by it."""
    name = f"{event_type.value}:{subject_id}:{version}"
    return f"evt_{uuid.uuid5(EVENT_NAMESPACE, name).hex}"


def event_body(event_id: str, event_type: WebhookEventType, created_at: str, data: Any) -> str:
    """The JSON body of a delivery: ``{"id", "type", "created_at", "data"}``. ``data`` is the
    topic's value as it is (fields this version does not know pass through)."""
    body = {"id": event_id, "type": event_type.value, "created_at": created_at, "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# -- URL rules -----------------------------------------------------------------------------


def address_problem(address: str) -> str | None:
    """Why a delivery may not go to ``address`` (an IP literal) without the private-URL
    setting, or None when it is a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not public"),
    )
    for refused, why in checks:
        if refused:
            return f"{ip} is a {why} address"
    return None


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` cannot be an endpoint's URL, or None. Host names are not resolved here
    (one that does not resolve is accepted and fails at delivery); IP literals and
    ``localhost`` are checked at once."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    del port  # read only so that a malformed port is refused here
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        if parts.scheme == "http":
            return f"must be https:// ({ALLOW_PRIVATE_VARIABLE}=on also allows http://)"
        return "not an http(s) URL"
    host = parts.hostname
    if not host:
        return "not a URL (no host)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    if allow_private:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback address ({ALLOW_PRIVATE_VARIABLE}=on allows it)"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: resolved, and checked, at each delivery
    problem = address_problem(host)
    return None if problem is None else f"{problem} ({ALLOW_PRIVATE_VARIABLE}=on allows it)"


# -- topic values ----------------------------------------------------------------------------


class PendingEvent(BaseModel):
    """One event waiting in a lane (an endpoint x a record or inbound message)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    type: WebhookEventType
    #: The record's version (1 for an inbound message): the lane delivers in this order.
    version: int
    #: When the event happened (the record's ``updated_at``, the inbound's ``received_at``).
    created_at: datetime
    #: Retries end 72 h after this: ``created_at``, or the time of a replay.
    retry_until_from: datetime
    #: The exact body every attempt sends.
    body: str


class LaneEnqueue(BaseModel):
    """An event for one endpoint: put it in its lane."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["enqueue"] = "enqueue"
    endpoint_id: uuid.UUID
    event: PendingEvent


class LaneOutcome(BaseModel):
    """How an attempt at the head of a lane ended. ``gone``: the endpoint was deleted, the
    lane is dropped."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["outcome"] = "outcome"
    endpoint_id: uuid.UUID
    event_id: str
    ok: bool
    gone: bool = False
    status_code: int | None = None
    error: str | None = None
    #: The first bytes of the receiver's answer.
    response_head: str | None = None
    at: datetime


LaneMessage = Annotated[LaneEnqueue | LaneOutcome, Field(discriminator="kind")]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryLogEntry(BaseModel):
    """A delivery as it now is: one value per change on the delivery-log topic, keyed by
    ``{endpoint_id}:{event_id}``; the sink keeps the last one (``GET .../deliveries``)."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: uuid.UUID
    event_id: str
    type: WebhookEventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    response_head: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    #: When the event happened.
    created_at: datetime
    updated_at: datetime

    def key(self) -> str:
        return f"{self.endpoint_id}:{self.event_id}"


class ReplayOrder(BaseModel):
    """``POST .../replay``: deliver again every matching event since ``since``."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["replay"] = "replay"
    endpoint_id: uuid.UUID
    since: datetime
    requested_at: datetime
