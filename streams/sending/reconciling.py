"""Requests cut off inside the Twilio call: finding them, asking the reconciler, adopting.

The send agent owns their outcomes (keyed by request id); the reconcile agent
(:mod:`streams.reconcile.agent`, keyed by destination) asks Twilio. :class:`Reconciling` is
the send agent's side: it keeps an index of this worker's interrupted requests, orders
reconciliation for them (at most every :data:`RECONCILE_EVERY_S`, also with no client
retrying), and records the messages Twilio turned out to have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import faust

from schemas.events import ReconcileOrder, SendRequest, SidClaimed
from schemas.records import SmsRecord
from schemas.topics import Topics
from streams import metrics
from streams.reconcile.decision import body_digest
from streams.sending import checks
from streams.sending.admission import Batch, BatchAdmission
from streams.sending.outcomes import Outcome, OutcomeTable
from streams.tables import bind_event

log = logging.getLogger(__name__)

#: How often interrupted requests are looked for and reconciliation is asked again.
RECONCILE_EVERY_S = 5.0


class Reconciling:
    """The send agent's part of reconciliation."""

    def __init__(
        self,
        app: faust.App,
        outcomes: OutcomeTable,
        admission: BatchAdmission,
        created_topic: faust.TopicT,
        reconcile_topic: faust.TopicT,
    ) -> None:
        self.app, self.outcomes, self.admission = app, outcomes, admission
        self.created_topic, self.reconcile_topic = created_topic, reconcile_topic
        self.index = InterruptedIndex()

    async def adopt(self, batch: Batch) -> None:
        """Record the messages Twilio had for interrupted requests, and publish them."""
        for event, outcome in batch.adoptions:
            assert outcome.record is not None
            bind_event(event)
            request_id = UUID(bytes=event.key) if isinstance(event.key, bytes) else None
            if request_id is None:
                continue
            self.outcomes.record(request_id, outcome)
            self.index.discard(request_id)
            metrics.RECONCILED.labels("adopted").inc()
            log.info(
                "reconciled: Twilio had message %s for interrupted request %s; adopted",
                outcome.record.message_sid, request_id,
                extra={"message_sid": outcome.record.message_sid,
                       "record_id": str(outcome.record.id)},
            )  # fmt: skip
            await self.created_topic.send(
                key=outcome.record.message_sid.encode(),
                value=Topics.CREATED.codec.encode(outcome.created_event()), force=True,
            )  # fmt: skip

    async def claim(self, request: SendRequest, record: SmsRecord) -> None:
        """Tell the reconciler (keyed by destination) that ``record``'s message is
        ``request``'s, created by the send path: it is never adopted for another request."""
        claimed = SidClaimed(
            to=record.to_number, body_digest=body_digest(record.body),
            message_sid=record.message_sid, request_id=request.request_id, at=_now(),
        )  # fmt: skip
        await self.reconcile_topic.send(
            key=record.to_number.encode(), value=Topics.RECONCILE.codec.encode(claimed),
            force=True,
        )  # fmt: skip

    def resend_failed(self, request: SendRequest, outcome: Outcome) -> None:
        """A resend Twilio certainly did not take (or whose marker was not written): its
        marker stays, so that a retry with the same key is answered "being reconciled", not
        sent as new, and reconciliation sends it again once the new marker's window ends."""
        metrics.RECONCILED.labels("resend_failed").inc()
        log.warning(
            "reconciling %s: the resend was not taken (%s %s); sent again later",
            request.request_id, outcome.status_code, outcome.error.code if outcome.error else "",
        )  # fmt: skip
        marker = self.outcomes.get(request.request_id)
        if marker is not None and marker.in_flight:
            self.index.add(marker)

    def count_resend(self, request: SendRequest, outcome: Outcome) -> None:
        metrics.RECONCILED.labels("resent").inc()
        sid = outcome.record.message_sid if outcome.record else None
        log.info(
            "reconciled: Twilio never got interrupted request %s; sent it once: %s %s",
            request.request_id, outcome.status_code, sid or "",
            extra={"message_sid": sid} if sid else {},
        )  # fmt: skip

    async def order(self, markers: Sequence[Outcome]) -> None:
        """Ask the reconciler (keyed by destination) about each interrupted request."""
        for marker in markers:
            request = marker.request
            if request is None or not self.index.due(request.request_id, time.time()):
                continue
            self.index.add(marker)
            order = ReconcileOrder(
                request=request, marker_at=marker.decided_at, target=marker.target
            )
            await self.reconcile_topic.send(
                key=reconcile_key(request), value=Topics.RECONCILE.codec.encode(order),
                force=True,
            )  # fmt: skip
            metrics.RECONCILED.labels("ordered").inc()

    async def tick(self) -> None:
        """Timer: find interrupted requests (after a start or a rebalance, by a scan) and
        ask about each again until it is resolved — also when no client retries."""
        generation = self.app.consumer_generation_id
        if generation != self.index.scanned_generation:
            # The partitions may have moved: forget every marker, keep those the table (it
            # yields the partitions held now) still has.
            self.index.clear(generation)
            for scanned, (_, outcome) in enumerate(self.outcomes.scan(), start=1):
                if scanned % 1000 == 0:
                    await asyncio.sleep(0)
                if outcome.in_flight and outcome.request is not None:
                    self.index.add(outcome)
        pending = [
            m for m in self.index.markers()
            if m.request is not None and not self.admission.is_deciding(m.request.request_id)
            and (_now() - m.decided_at).total_seconds() >= RECONCILE_EVERY_S
        ]  # fmt: skip
        await self.order(pending)


class InterruptedIndex:
    """This worker's interrupted requests (markers with no outcome), and when each was last
    asked about: reconciliation is asked at most every :data:`RECONCILE_EVERY_S`."""

    def __init__(self) -> None:
        self._markers: dict[UUID, Outcome] = {}
        self._asked_at: dict[UUID, float] = {}
        #: The consumer generation of the last full scan (a rebalance brings new markers).
        self.scanned_generation: int | None = None

    def add(self, marker: Outcome) -> None:
        if marker.request is not None:
            self._markers[marker.request.request_id] = marker

    def clear(self, generation: int | None) -> None:
        """Forget every marker (a rebalance: the partitions of some may be another worker's
        now); a scan of the table for ``generation`` brings back those still held."""
        self._markers.clear()
        self._asked_at.clear()
        self.scanned_generation = generation

    def discard(self, request_id: UUID) -> None:
        self._markers.pop(request_id, None)
        self._asked_at.pop(request_id, None)

    def due(self, request_id: UUID, now: float) -> bool:
        """Whether to ask about it now (and note that it is asked)."""
        if now - self._asked_at.get(request_id, 0.0) < RECONCILE_EVERY_S:
            return False
        self._asked_at[request_id] = now
        return True

    def markers(self) -> list[Outcome]:
        return list(self._markers.values())


def reconcile_key(request: SendRequest) -> bytes:
    """The key of a reconcile order: the destination as the send path normalises it."""
    destination = checks.parse_destination(request.to_phone_number)
    if isinstance(destination, checks.Destination):
        return destination.e164.encode()
    return request.to_phone_number.encode()


def _now() -> datetime:
    return datetime.now(UTC)
