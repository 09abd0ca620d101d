"""Which endpoints an event goes to, and the lane orders that send it there (pure).

An event is read from its topic's raw value: a few fields to route it (:class:`Event`), the
whole value, as it is, for the body. An endpoint takes an event when it is enabled, lists the
event's type, its use-case and status filters (when set) hold, and the event happened at or
after the endpoint was created. A replay takes every event the filters hold, whenever it
happened.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.config import WebhookEndpoint, WebhookEventType
from schemas.webhooks import LaneEnqueue, PendingEvent, event_body, webhook_event_id


class _StatusFields(BaseModel):
    id: uuid.UUID
    version: int
    use_case_id: uuid.UUID
    status: str
    updated_at: datetime


class _InboundFields(BaseModel):
    id: uuid.UUID
    use_case_id: uuid.UUID | None
    received_at: datetime


@dataclass(frozen=True)
class Event:
    """An event of ``sms.status`` or ``sms.inbound``, ready to route."""

    type: WebhookEventType
    #: The record's id, or the inbound message's.
    subject_id: uuid.UUID
    version: int
    use_case_id: uuid.UUID | None
    #: The record's status (None for an inbound message).
    status: str | None
    created_at: datetime
    #: The topic's value, as it is.
    data: Any

    @property
    def event_id(self) -> str:
        return webhook_event_id(self.type, self.subject_id, self.version)


def read_event(event_type: WebhookEventType, value: bytes) -> Event | None:
    """The event in a raw value of ``event_type``'s topic; None when it is not one."""
    try:
        data = json.loads(value)
        if event_type is WebhookEventType.STATUS:
            status = _StatusFields.model_validate(data)
            return Event(
                event_type, status.id, status.version, status.use_case_id, status.status,
                status.updated_at, data,
            )  # fmt: skip
        inbound = _InboundFields.model_validate(data)
    except (ValueError, ValidationError):
        return None
    return Event(event_type, inbound.id, 1, inbound.use_case_id, None, inbound.received_at, data)


def wants(endpoint: WebhookEndpoint, event: Event, *, replay: bool = False) -> bool:
    """Whether ``endpoint`` takes ``event`` (``replay``: whenever it happened)."""
    if not endpoint.enabled or event.type not in endpoint.events:
        return False
    if endpoint.use_case_ids is not None and event.use_case_id not in endpoint.use_case_ids:
        return False
    if (
        event.type is WebhookEventType.STATUS
        and endpoint.statuses is not None
        and event.status not in endpoint.statuses
    ):
        return False
    return replay or event.created_at >= endpoint.created_at


def lane_key(endpoint_id: uuid.UUID, subject_id: uuid.UUID) -> bytes:
    """The key of a lane on ``sms.webhook-lanes`` and in ``webhook_lanes``."""
    return f"{endpoint_id}:{subject_id}".encode()


def lane_orders(
    endpoints: Iterable[WebhookEndpoint], event: Event, *, replayed_at: datetime | None = None
) -> list[tuple[bytes, LaneEnqueue]]:
    """One order per endpoint that takes ``event``, with its lane key. A replay's retries
    count their 72 hours from ``replayed_at``."""
    replay = replayed_at is not None
    pending: PendingEvent | None = None
    orders = []
    for endpoint in endpoints:
        if not wants(endpoint, event, replay=replay):
            continue
        if pending is None:
            pending = _pending(event, replayed_at)
        orders.append(
            (
                lane_key(endpoint.id, event.subject_id),
                LaneEnqueue(endpoint_id=endpoint.id, event=pending),
            )
        )
    return orders


def _pending(event: Event, replayed_at: datetime | None) -> PendingEvent:
    created = event.created_at.isoformat().replace("+00:00", "Z")
    return PendingEvent(
        event_id=event.event_id,
        type=event.type,
        version=event.version,
        created_at=event.created_at,
        retry_until_from=replayed_at or event.created_at,
        body=event_body(event.event_id, event.type, created, event.data),
    )
