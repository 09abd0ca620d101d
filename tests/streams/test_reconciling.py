"""The send agent's side of reconciliation over a plain dict table: the index of interrupted
requests across a rebalance, resends Twilio did not take, and the SIDs it claims."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from schemas.events import ReconcileOrder, SendRequest, SendTarget, SidClaimed
from schemas.topics import Topics
from streams.reconcile.decision import body_digest
from streams.sending import decision
from streams.sending.admission import BatchAdmission
from streams.sending.outcomes import Outcome, OutcomeTable
from streams.sending.reconciling import Reconciling
from tests.streams.factories import RecordingTopic, create_record
from tests.streams.test_admission import DictTable

TARGET = SendTarget(account_sid="AC" + "1" * 32, messaging_service_sid="MG" + "1" * 32, to="+1")


def request(to: str = "+14155552671") -> SendRequest:
    return SendRequest(
        request_id=uuid.uuid4(), body_hash=hashlib.sha256(b"hi").hexdigest(),
        use_case_id=uuid.uuid4(), to_phone_number=to, message="hi",
        received_at=datetime.now(UTC), reply_topic="r", correlation_id="c",
    )  # fmt: skip


def marker(table: DictTable, req: SendRequest) -> Outcome:
    """``req`` interrupted a minute ago: its marker in the table."""
    outcomes = OutcomeTable(table)
    outcomes.record(
        req.request_id, Outcome.marker(req, datetime.now(UTC) - timedelta(minutes=1), TARGET)
    )
    found = outcomes.get(req.request_id)
    assert found is not None
    return found


@pytest.fixture
def table() -> DictTable:
    return DictTable()


@pytest.fixture
def orders() -> RecordingTopic:
    return RecordingTopic()


@pytest.fixture
def app() -> SimpleNamespace:
    return SimpleNamespace(consumer_generation_id=1)


@pytest.fixture
def reconciling(table: DictTable, orders: RecordingTopic, app: SimpleNamespace) -> Reconciling:
    outcomes = OutcomeTable(table)
    return Reconciling(app, outcomes, BatchAdmission(outcomes), RecordingTopic(), orders)  # type: ignore[arg-type]


def ordered(orders: RecordingTopic) -> list[uuid.UUID]:
    decoded = [Topics.RECONCILE.codec.decode(value) for _, value in orders.sent]
    return [o.request.request_id for o in decoded if isinstance(o, ReconcileOrder)]


async def test_after_a_rebalance_markers_of_partitions_no_longer_held_are_not_reconciled(
    reconciling: Reconciling, table: DictTable, orders: RecordingTopic, app: SimpleNamespace
) -> None:
    """Issue #23, item 4: the worker handed a partition back. Its table no longer yields
    that partition's markers (rocksdb:// reads only the partitions held); the index must
    forget them too, or it orders a Twilio list for each every 5 s, forever."""
    kept, handed_back = request(), request()
    await reconciling.tick()  # the first scan (generation 1)
    reconciling.index.add(marker(table, kept))
    reconciling.index.add(marker(DictTable(), handed_back))  # in another worker's table now
    app.consumer_generation_id = 2
    await reconciling.tick()
    assert [m.request.request_id for m in reconciling.index.markers() if m.request] == [
        kept.request_id
    ]
    assert ordered(orders) == [kept.request_id]


async def test_an_order_carries_the_markers_snapshot(
    reconciling: Reconciling, table: DictTable, orders: RecordingTopic
) -> None:
    req = request()
    await reconciling.order([marker(table, req)])
    (sent,) = [Topics.RECONCILE.codec.decode(value) for _, value in orders.sent]
    assert isinstance(sent, ReconcileOrder) and sent.target == TARGET


async def test_a_resend_twilio_did_not_take_keeps_the_marker_and_stays_reconciled(
    reconciling: Reconciling, table: DictTable
) -> None:
    """The resend's 503 (Twilio certainly did nothing) must not forget the request: a
    retry with the same key is then answered "being reconciled", not sent as new, and
    reconciliation sends it again later."""
    req = request()
    interrupted = marker(table, req)
    down = decision.provider_down(req, "HTTP 503 from Twilio", 5, datetime.now(UTC))
    assert decision.forget_after(down)
    reconciling.resend_failed(req, down)
    assert OutcomeTable(table).get(req.request_id) == interrupted
    assert [m.request for m in reconciling.index.markers()] == [req]


async def test_a_created_message_is_claimed_on_the_reconcile_topic_by_destination(
    reconciling: Reconciling, orders: RecordingTopic
) -> None:
    req = request()
    record = create_record(to_number="+14155552671", message_sid="SM_B")
    await reconciling.claim(req, record)
    ((key, value),) = orders.sent
    claimed = Topics.RECONCILE.codec.decode(value)
    assert key == b"+14155552671"
    assert isinstance(claimed, SidClaimed)
    assert (claimed.message_sid, claimed.request_id) == ("SM_B", req.request_id)
    assert claimed.body_digest == body_digest(record.body)
