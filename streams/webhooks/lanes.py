"""The delivery rules of a lane, pure: what an enqueued event or an attempt's outcome does.

A *lane* is one endpoint x one record (or one inbound message). Its events wait in version
order; only the head is attempted, so an endpoint never gets a version before the lower ones
of the same record, while other lanes (other records, other endpoints) go on. The worker keeps
each lane in the ``webhook_lanes`` table (:mod:`streams.webhooks.agents`) and calls these
functions on it; each returns the lane as it now is (None: empty, delete it) and the
delivery-log entries to publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from schemas.settings import Settings
from schemas.webhooks import (
    DeliveryLogEntry,
    DeliveryStatus,
    LaneEnqueue,
    LaneOutcome,
    PendingEvent,
)


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again: ``delays`` after the 1st, 2nd... failure, then
    every ``every``; never later than ``retry_for`` after the event (then it is failed)."""

    delays: Sequence[float]
    every: float
    retry_for: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            delays=settings.webhook_retry_delays_seconds,
            every=settings.webhook_retry_every_seconds,
            retry_for=settings.webhook_retry_for_seconds,
        )

    def next_attempt(self, failures: int, failed_at: datetime, since: datetime) -> datetime | None:
        """When to try again after the ``failures``-th failed attempt (at ``failed_at``) of
        an event whose 72 hours count from ``since``; None when it is failed for good."""
        delay = self.delays[failures - 1] if failures <= len(self.delays) else self.every
        at = failed_at + timedelta(seconds=delay)
        return None if at > since + timedelta(seconds=self.retry_for) else at


class Lane(BaseModel):
    """Value of ``webhook_lanes``: the events of one lane, the head's attempts so far."""

    model_config = ConfigDict(frozen=True)

    endpoint_id: uuid.UUID
    queue: tuple[PendingEvent, ...]
    #: Failed attempts of the head.
    attempts: int = 0
    next_attempt_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None

    @property
    def head(self) -> PendingEvent:
        return self.queue[0]


def _entry(
    endpoint_id: uuid.UUID,
    event: PendingEvent,
    status: DeliveryStatus,
    now: datetime,
    **fields: object,
) -> DeliveryLogEntry:
    return DeliveryLogEntry.model_validate(
        {
            "endpoint_id": endpoint_id,
            "event_id": event.event_id,
            "type": event.type,
            "status": status,
            "attempts": 0,
            "created_at": event.created_at,
            "updated_at": now,
            **fields,
        }
    )


def enqueue(
    lane: Lane | None, order: LaneEnqueue, now: datetime
) -> tuple[Lane | None, list[DeliveryLogEntry]]:
    """Put ``order.event`` in its lane, after the head and in version order among the rest; an
    event already waiting there changes nothing. A new lane's head is due at once."""
    event = order.event
    if lane is None:
        lane = Lane(endpoint_id=order.endpoint_id, queue=(event,), next_attempt_at=now)
        return lane, [
            _entry(order.endpoint_id, event, DeliveryStatus.PENDING, now, next_attempt_at=now)
        ]
    if any(waiting.event_id == event.event_id for waiting in lane.queue):
        return lane, []
    rest = sorted((*lane.queue[1:], event), key=lambda waiting: waiting.version)
    lane = lane.model_copy(update={"queue": (lane.head, *rest)})
    return lane, [_entry(order.endpoint_id, event, DeliveryStatus.PENDING, now)]


def record_outcome(
    lane: Lane | None, outcome: LaneOutcome, policy: RetryPolicy
) -> tuple[Lane | None, list[DeliveryLogEntry]]:
    """Apply the outcome of an attempt at the head. An outcome for another event (a stale
    one, after a restart) changes nothing."""
    if lane is None or lane.head.event_id != outcome.event_id:
        return lane, []
    if outcome.gone:
        return None, []
    at, attempts = outcome.at, lane.attempts + 1
    last = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "response_head": outcome.response_head,
    }
    if outcome.ok:
        entry = _entry(
            lane.endpoint_id, lane.head, DeliveryStatus.DELIVERED, at, delivered_at=at, **last
        )
        return _next_head(lane, at), [entry]
    retry_at = policy.next_attempt(attempts, at, lane.head.retry_until_from)
    if retry_at is None:
        entry = _entry(lane.endpoint_id, lane.head, DeliveryStatus.FAILED, at, **last)
        return _next_head(lane, at), [entry]
    entry = _entry(
        lane.endpoint_id, lane.head, DeliveryStatus.PENDING, at, next_attempt_at=retry_at, **last
    )
    lane = lane.model_copy(
        update={
            "attempts": attempts,
            "next_attempt_at": retry_at,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
    )
    return lane, [entry]


def _next_head(lane: Lane, now: datetime) -> Lane | None:
    """The lane without its head, the next event due at once; None when it was the last."""
    if len(lane.queue) == 1:
        return None
    return Lane(endpoint_id=lane.endpoint_id, queue=lane.queue[1:], next_attempt_at=now)
