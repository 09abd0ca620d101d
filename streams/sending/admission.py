"""Batch admission: what each request of a batch needs, before any of it is awaited.

A batch is admitted in one go (table reads and in-flight markers, no await in between), so
two batches in flight never both decide one request id: :class:`BatchAdmission` remembers
the requests being decided, and a duplicate in a later batch waits for that outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from schemas.config import OptOut
from schemas.events import Reconciled, SendRequest, SendTarget
from streams.reconcile.decision import window_end
from streams.sending import checks, decision
from streams.sending.decision import Conflict, Interrupted, New, Replay
from streams.sending.outcomes import Outcome, OutcomeTable

log = logging.getLogger(__name__)


class SameRequest(NamedTuple):
    """Requests that get one answer: same request id, same body."""

    request_id: UUID
    body_hash: str

    @classmethod
    def of(cls, request: SendRequest) -> SameRequest:
        return cls(request.request_id, request.body_hash)


@dataclass(frozen=True)
class Incoming:
    """A decoded send request of a batch: its event (opaque here) and its deadline."""

    event: Any
    request: SendRequest
    deadline: float


@dataclass(frozen=True)
class Answer:
    """What a request is answered, and whether this batch decided it (counted as new)."""

    outcome: Outcome
    opt_out: OptOut | None = None
    decided_here: bool = False


@dataclass
class Batch:
    """One take of the request stream, sorted by what each request needs."""

    incoming: Sequence[Incoming]
    #: The first request of each (id, body); later ones replay its answer.
    firsts: dict[SameRequest, Incoming] = field(default_factory=dict)
    #: Requests to decide now (marked in flight), and ids reused with another body.
    new: list[Incoming] = field(default_factory=list)
    conflicts: list[Incoming] = field(default_factory=list)
    #: Answers known already, and those another batch in flight is deciding.
    answers: dict[SameRequest, Answer] = field(default_factory=dict)
    waiting: dict[SameRequest, asyncio.Future[Outcome]] = field(default_factory=dict)
    #: The in-flight marker of each request in ``new``.
    markers: dict[UUID, InFlightMarker] = field(default_factory=dict)
    #: Reconciliation results taken with the batch (event, result, deadline if sent now).
    reconciled: Sequence[tuple[Any, Reconciled, float]] = ()
    #: Interrupted requests found (marker and all): reconciliation is to look for them.
    interrupted: list[Outcome] = field(default_factory=list)
    #: Interrupted requests whose message Twilio has: their event and 201 outcome.
    adoptions: list[tuple[Any, Outcome]] = field(default_factory=list)
    #: Interrupted requests Twilio never got, to send once now (also in ``new``).
    resends: list[Incoming] = field(default_factory=list)
    #: When :meth:`BatchAdmission.admit` ran: the time the markers of ``new`` bear.
    admitted_at: datetime | None = None


class InFlightMarker:
    """A new request's in-flight marker: written at admission with where its create call
    is expected to go, and written again before the call if the checks chose elsewhere (the
    configuration changed meanwhile), so that the marker names where the call went."""

    def __init__(
        self, outcomes: OutcomeTable, bind: Callable[[Any], None], item: Incoming, at: datetime,
        target: SendTarget | None,
    ) -> None:  # fmt: skip
        self._outcomes, self._bind, self._item, self._at = outcomes, bind, item, at
        self.target = target
        #: Every write of the marker (the last one is the marker in force).
        self.writes = [outcomes.mark_in_flight(item.request, at, target)]

    def written_for(self, target: SendTarget) -> Awaitable[object]:
        """The marker's write naming ``target``; done once it is durable."""
        if target != self.target:
            self._bind(self._item.event)
            self.target = target
            self.writes.append(self._outcomes.mark_in_flight(self._item.request, self._at, target))
        return self.writes[-1]


class _Deciding(NamedTuple):
    body_hash: str
    outcome: asyncio.Future[Outcome]


class BatchAdmission:
    """Admits batches over the outcome table and tracks the requests being decided."""

    def __init__(
        self,
        outcomes: OutcomeTable,
        bind: Callable[[Any], None] = lambda event: None,
        target_of: Callable[[SendRequest], SendTarget | None] = lambda request: None,
        *,
        send_timeout_s: float = 10.0,
        reconcile_margin_s: float = 30.0,
    ) -> None:
        self.outcomes = outcomes
        self._window = (send_timeout_s, reconcile_margin_s)
        #: Makes an event current before the table is read or written for it (Faust writes
        #: a table's changelog to, and a rocksdb:// table reads from, the current event's
        #: partition).
        self.bind = bind
        #: Where a request's create call is expected to go, by today's configuration.
        self.target_of = target_of
        self._deciding: dict[UUID, _Deciding] = {}

    def admit(self, batch: Batch, now: datetime) -> None:
        """Sort ``batch.incoming``; new requests are marked in flight. If this raises, the
        batch as far as it got must still be :meth:`release`-d."""
        batch.admitted_at = now
        for event, result, deadline in batch.reconciled:
            self._admit_reconciled(batch, event, result, now, deadline)
        for item in batch.incoming:
            batch.firsts.setdefault(SameRequest.of(item.request), item)
        for item in list(batch.firsts.values()):
            if item not in batch.resends:
                self._admit_first(batch, item, now)

    def _admit_first(self, batch: Batch, item: Incoming, now: datetime) -> None:
        request, same = item.request, SameRequest.of(item.request)
        in_progress = self._deciding.get(request.request_id)
        if in_progress is not None:  # a batch in flight decides it: wait for its outcome
            if in_progress.body_hash == request.body_hash:
                batch.waiting[same] = in_progress.outcome
            else:
                batch.conflicts.append(item)
            return
        self.bind(item.event)
        match decision.admission_for(request, self.outcomes.get(request.request_id), now):
            case New():
                self._begin(batch, item, now)
            case Replay(outcome):
                batch.answers[same] = Answer(outcome)
            case Conflict():
                batch.conflicts.append(item)
            case Interrupted(marker):
                log.warning("send request %s was interrupted mid-call", request.request_id)
                batch.answers[same] = Answer(
                    decision.interrupted_answer(request, now, self.reconcilable_until(marker))
                )
                if marker.request is not None:
                    batch.interrupted.append(marker)

    def reconcilable_until(self, marker: Outcome) -> datetime | None:
        """When the marker's attempt can no longer arrive at Twilio; None if the marker is
        too old to carry its request (written before reconciliation existed)."""
        if marker.request is None:
            return None
        return window_end(marker.decided_at, *self._window)

    def window_of_new(self, batch: Batch) -> datetime:
        """When the new requests' attempts (their markers bear the batch's admission time)
        can no longer arrive at Twilio."""
        assert batch.admitted_at is not None, "the batch was not admitted"
        return window_end(batch.admitted_at, *self._window)

    def _admit_reconciled(
        self, batch: Batch, event: Any, result: Reconciled, now: datetime, deadline: float
    ) -> None:
        """Apply what reconciliation found, if it is about the marker still in the table."""
        self.bind(event)
        marker = self.outcomes.get(result.request_id)
        if (
            marker is None
            or not marker.in_flight
            or marker.request is None
            or marker.decided_at != result.marker_at
            or result.request_id in self._deciding
        ):
            log.info("reconciliation of %s is no longer needed", result.request_id)
            return
        request = marker.request
        if result.message_sid is not None:
            to = checks.parse_destination(request.to_phone_number)
            e164 = to.e164 if isinstance(to, checks.Destination) else request.to_phone_number
            outcome = decision.adopted(marker, request, e164, result.message_sid, now)
            batch.adoptions.append((event, outcome))
            return
        item = Incoming(event, request, deadline)
        self._begin(batch, item, now)
        batch.resends.append(item)
        batch.firsts[SameRequest.of(request)] = item

    def _begin(self, batch: Batch, item: Incoming, now: datetime) -> None:
        """Mark a request in flight and track it (only once the write was handed over)."""
        request = item.request
        marker = InFlightMarker(self.outcomes, self.bind, item, now, self.target_of(request))
        future = asyncio.get_running_loop().create_future()
        self._deciding[request.request_id] = _Deciding(request.body_hash, future)
        batch.markers[request.request_id] = marker
        batch.new.append(item)

    def is_deciding(self, request_id: UUID) -> bool:
        return request_id in self._deciding

    def settle(self, request: SendRequest, outcome: Outcome) -> None:
        """Hand a new request's outcome to the duplicates waiting for it."""
        in_progress = self._deciding.get(request.request_id)
        if in_progress is not None and not in_progress.outcome.done():
            in_progress.outcome.set_result(outcome)

    def release(self, batch: Batch, now: datetime) -> None:
        """Stop tracking the batch's new requests; duplicates still waiting get a 503 (its
        request stays marked in flight, so a retry is not sent again)."""
        for item in batch.new:
            in_progress = self._deciding.pop(item.request.request_id, None)
            if in_progress is not None and not in_progress.outcome.done():
                in_progress.outcome.set_result(decision.unexpected_failure(item.request, now))

    @property
    def deciding(self) -> int:
        """How many requests are being decided."""
        return len(self._deciding)
