"""Batch admission over a plain dict table: duplicates, conflicts, failures, release."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import SendRequest, SendTarget
from streams.sending import decision
from streams.sending.admission import Batch, BatchAdmission, Incoming, SameRequest
from streams.sending.outcomes import CODEC, Outcome, OutcomeTable

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


class DictTable(dict[bytes, bytes]):
    """A table whose durable writes are done at once, and that can be told to fail."""

    fail_put = False

    def put(self, key: bytes, value: bytes) -> Awaitable[object]:
        if self.fail_put:
            raise RuntimeError("the changelog producer is gone")
        self[key] = value
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def request(request_id: uuid.UUID | None = None, body: str = "hello") -> SendRequest:
    return SendRequest(
        request_id=request_id or uuid.uuid4(),
        body_hash=hashlib.sha256(body.encode()).hexdigest(),
        use_case_id=uuid.uuid4(),
        to_phone_number="+14155550100",
        message=body,
        received_at=NOW,
        reply_topic="replies",
        correlation_id=uuid.uuid4().hex,
    )


def incoming(*requests: SendRequest) -> Batch:
    return Batch([Incoming(event=n, request=r, deadline=0.0) for n, r in enumerate(requests)])


@pytest.fixture
def table() -> DictTable:
    return DictTable()


@pytest.fixture
def bound() -> list[Any]:
    return []


@pytest.fixture
def admission(table: DictTable, bound: list[Any]) -> BatchAdmission:
    return BatchAdmission(OutcomeTable(table), bind=bound.append)


def stored(table: DictTable, req: SendRequest) -> Outcome:
    return CODEC.decode(table[req.request_id.bytes])


async def test_a_new_request_is_marked_in_flight_after_binding_its_event(
    admission: BatchAdmission, table: DictTable, bound: list[Any]
) -> None:
    first = request()
    batch = incoming(first)
    admission.admit(batch, NOW)
    assert [i.request for i in batch.new] == [first]
    assert stored(table, first).in_flight
    assert bound == [0]  # bound before the table was read and written
    assert admission.deciding == 1


async def test_duplicates_in_one_batch_are_decided_once(admission: BatchAdmission) -> None:
    first = request()
    again = first.model_copy(update={"correlation_id": "retry"})
    batch = incoming(first, again)
    admission.admit(batch, NOW)
    assert len(batch.new) == 1
    assert batch.firsts[SameRequest.of(first)].request is first


async def test_same_id_with_another_body_in_one_batch_is_a_conflict(
    admission: BatchAdmission,
) -> None:
    first = request()
    other = request(first.request_id, body="something else")
    batch = incoming(first, other)
    admission.admit(batch, NOW)
    assert [i.request for i in batch.new] == [first]
    # The first of each (id, body) is admitted; the id is then being decided: conflict.
    assert [i.request for i in batch.conflicts] == [other]


async def test_a_decided_request_is_replayed(admission: BatchAdmission, table: DictTable) -> None:
    first = request()
    outcome = Outcome(body_hash=first.body_hash, decided_at=NOW, status_code=201)
    OutcomeTable(table).record(first.request_id, outcome)
    batch = incoming(first)
    admission.admit(batch, NOW + timedelta(hours=1))
    assert batch.answers[SameRequest.of(first)].outcome == outcome
    assert not batch.new


async def test_an_interrupted_request_is_answered_503_not_sent(
    admission: BatchAdmission, table: DictTable
) -> None:
    first = request()
    OutcomeTable(table).mark_in_flight(first, NOW)
    batch = incoming(first)
    admission.admit(batch, NOW + timedelta(minutes=1))
    answer = batch.answers[SameRequest.of(first)].outcome
    assert answer.status_code == 503 and not batch.new


async def test_a_request_decided_by_a_batch_in_flight_waits_for_its_outcome(
    admission: BatchAdmission,
) -> None:
    first = request()
    earlier, later = incoming(first), incoming(first.model_copy(update={"correlation_id": "x"}))
    admission.admit(earlier, NOW)
    admission.admit(later, NOW)
    waiting = later.waiting[SameRequest.of(first)]
    outcome = Outcome(body_hash=first.body_hash, decided_at=NOW, status_code=201)
    admission.settle(first, outcome)
    assert await waiting == outcome
    admission.release(earlier, NOW)
    assert admission.deciding == 0


async def test_a_failing_marker_write_leaves_nothing_half_admitted(
    admission: BatchAdmission, table: DictTable
) -> None:
    """The write raising must not leave a request in ``new`` that is not tracked (release
    then failed with KeyError) nor tracked without being in ``new`` (never released)."""
    table.fail_put = True
    batch = incoming(request())
    with pytest.raises(RuntimeError):
        admission.admit(batch, NOW)
    assert batch.new == [] and admission.deciding == 0
    admission.release(batch, NOW)


async def test_release_answers_duplicates_still_waiting(admission: BatchAdmission) -> None:
    first = request()
    earlier, later = incoming(first), incoming(first)
    admission.admit(earlier, NOW)
    admission.admit(later, NOW)
    admission.release(earlier, NOW)  # the first batch died before deciding
    outcome = await later.waiting[SameRequest.of(first)]
    assert outcome.status_code == 503 and outcome.in_flight  # never sent again by a retry
    assert outcome == decision.unexpected_failure(first, NOW)


async def test_the_window_of_new_requests_is_their_markers_window(table: DictTable) -> None:
    """What a lost answer's Retry-After is computed from is the window reconciliation uses
    for the marker the batch wrote."""
    windowed = BatchAdmission(OutcomeTable(table), send_timeout_s=6.0, reconcile_margin_s=2.0)
    req = request()
    batch = incoming(req)
    windowed.admit(batch, NOW)
    assert windowed.window_of_new(batch) == NOW + timedelta(seconds=8)
    assert windowed.window_of_new(batch) == windowed.reconcilable_until(stored(table, req))


async def test_the_marker_names_where_the_create_call_goes_and_is_rewritten_only_if_moved(
    table: DictTable, bound: list[Any]
) -> None:
    """Admission writes the marker with where the call is expected to go; the sender asks
    for the checks' target before calling Twilio: the same one reuses the write, another
    one (the use case moved meanwhile) writes the marker again, bound to its event, with
    the same time, so that reconciliation looks where the call went."""
    expected = SendTarget(account_sid="AC1", messaging_service_sid="MG1", to="+14155550100")
    moved = expected.model_copy(update={"messaging_service_sid": "MG2"})
    admission = BatchAdmission(OutcomeTable(table), bind=bound.append, target_of=lambda r: expected)
    first = request()
    batch = incoming(first)
    admission.admit(batch, NOW)
    marker = batch.markers[first.request_id]
    assert stored(table, first).target == expected
    assert marker.written_for(expected) is marker.writes[0]
    bound.clear()
    await marker.written_for(moved)
    assert (stored(table, first).target, stored(table, first).decided_at) == (moved, NOW)
    assert bound == [0] and len(marker.writes) == 2
