"""The lifecycle processor over plain dict tables and a list publisher: no Kafka, no Faust."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from schemas.events import LifecycleControl, RawCallback
from schemas.records import SmsCreated, SmsRecord, SmsStatus, SmsStatusEvent
from schemas.topics import Topics
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.processor import LifecycleProcessor, Source
from streams.lifecycle.tables import HELD, RECORDS, HeldTable, LifecycleState, RecordTable
from tests.streams.factories import MESSAGE_SID, T0, at, create_record

SID = MESSAGE_SID.encode()
RULES = Housekeeping(
    hold_for=timedelta(seconds=300),
    max_held=2,
    retention=timedelta(days=7),
    stale_after=timedelta(days=14),
)


@dataclass
class ListPublisher:
    """Keeps what the processor publishes; ``on_order`` runs inside each order's send."""

    statuses: list[SmsStatusEvent] = field(default_factory=list)
    #: Publishes of a version still to fail, as a producer that cannot reach the broker.
    failures: int = 0
    orders: list[tuple[bytes, LifecycleControl]] = field(default_factory=list)
    on_order: list[tuple[bytes, bytes]] = field(default_factory=list)
    tables: list[dict[bytes, bytes]] = field(default_factory=list)

    async def status(self, event: SmsStatusEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the producer could not take the message")
        self.statuses.append(event)

    async def order(self, sid: bytes, order: LifecycleControl) -> None:
        self.orders.append((sid, order))
        for table in self.tables:  # the agent goes on while a timer awaits its send
            for key, value in self.on_order:
                table[key] = value

    def versions(self) -> list[tuple[int, SmsStatus]]:
        return [(e.version, e.status) for e in self.statuses]


@dataclass(frozen=True)
class At:
    topic: str = "sms.callbacks"
    partition: int = 0
    offset: int = 7


@dataclass
class Lifecycle:
    records: dict[bytes, bytes]
    held: dict[bytes, bytes]
    published: ListPublisher
    processor: LifecycleProcessor

    async def feed(self, source: Source, value: bytes, sid: bytes = SID) -> None:
        await self.processor.process(source, sid, value, At())

    async def created(self, record: SmsRecord | None = None, **sent_through: str) -> None:
        """The created event of ``record``; ``sent_through``: its ``account_sid`` and
        ``messaging_service_sid`` (absent: an event written before they were carried)."""
        event = SmsCreated(**(record or create_record()).model_dump(), **sent_through)
        await self.feed("created", Topics.CREATED.codec.encode(event), event.message_sid.encode())

    async def callback(self, raw: RawCallback, sid: bytes = SID) -> None:
        await self.feed("callback", Topics.CALLBACKS.codec.encode(raw), sid)

    def state(self, sid: bytes = SID) -> LifecycleState:
        return RECORDS.decode(self.records[sid])


def make(rules: Housekeeping = RULES) -> Lifecycle:
    records: dict[bytes, bytes] = {}
    held: dict[bytes, bytes] = {}
    published = ListPublisher()
    processor = LifecycleProcessor(RecordTable(records), HeldTable(held), rules, published)
    return Lifecycle(records, held, published, processor)


@pytest.fixture
def life() -> Lifecycle:
    return make()


def callback(
    status: str, seconds: float, sid: str = MESSAGE_SID, receipt: UUID | None = None, **extra: str
) -> RawCallback:
    params = {"MessageSid": sid, "MessageStatus": status, **extra}
    return RawCallback(receipt_id=receipt or uuid4(), received_at=at(seconds), params=params)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- records and callbacks ---------------------------------------------------------------------


async def test_a_created_record_then_its_callbacks_make_contiguous_versions(
    life: Lifecycle,
) -> None:
    await life.created()
    await life.callback(callback("sent", 1, From="+14155550100", NumSegments="1"))
    await life.callback(callback("delivered", 2))
    assert life.published.versions() == [
        (1, SmsStatus.PENDING), (2, SmsStatus.SENT), (3, SmsStatus.DELIVERED)
    ]  # fmt: skip
    state = life.state()
    assert state.version == 3
    assert state.record == life.published.statuses[-1].record()
    assert (state.record.handed_off_at, state.record.delivered_at) == (at(1), at(2))
    assert (state.record.from_number, state.record.num_segments) == ("+14155550100", 1)


async def test_early_callbacks_are_held_then_applied_in_order_on_create(life: Lifecycle) -> None:
    held = sample("smslane_worker_callbacks_total", status="sent", outcome="held")
    await life.callback(callback("sent", 1))
    await life.callback(callback("delivered", 2))
    assert life.published.statuses == [] and life.records == {}
    assert [c.params["MessageStatus"] for c in HELD.decode(life.held[SID]).callbacks] == [
        "sent", "delivered"
    ]  # fmt: skip
    assert HELD.decode(life.held[SID]).since == at(1)
    assert len(life.processor.held) == 1
    assert sample("smslane_worker_callbacks_total", status="sent", outcome="held") == held + 1

    await life.created()
    assert life.held == {} and len(life.processor.held) == 0
    assert life.published.versions() == [
        (1, SmsStatus.PENDING), (2, SmsStatus.SENT), (3, SmsStatus.DELIVERED)
    ]  # fmt: skip
    assert life.state().version == 3 and life.state().record.delivered_at == at(2)


async def test_a_redelivered_callback_republishes_its_version_and_changes_nothing(
    life: Lifecycle,
) -> None:
    await life.created()
    sent = callback("sent", 1)
    await life.callback(sent)
    stored = life.records[SID]
    await life.callback(sent)  # the same receipt again: its publish may have been lost
    assert life.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.SENT),
                                         (2, SmsStatus.SENT)]  # fmt: skip
    assert life.published.statuses[1] == life.published.statuses[2]
    assert life.records[SID] == stored
    await life.callback(callback("sent", 3))  # another receipt, same rank: dropped unseen
    await life.callback(callback("queued", 4))  # a regression: dropped unseen
    assert len(life.published.statuses) == 3 and life.records[SID] == stored


async def test_a_replayed_created_event_republishes_the_current_version(life: Lifecycle) -> None:
    await life.created()
    await life.callback(callback("sent", 1))
    await life.created()  # the record is known: nothing is reset
    assert life.published.versions()[-1] == (2, SmsStatus.SENT)
    assert life.published.statuses[-1] == life.published.statuses[-2]
    assert life.state().version == 2


async def test_a_rejected_callback_is_neither_held_nor_applied(life: Lifecycle) -> None:
    rejected = sample("smslane_worker_callbacks_total", status="other", outcome="rejected")
    await life.callback(callback("exploded", 1))
    assert life.held == {} and life.published.statuses == []
    after = sample("smslane_worker_callbacks_total", status="other", outcome="rejected")
    assert after == rejected + 1


async def test_a_full_hold_drops_new_sids_but_still_adds_to_held_ones(life: Lifecycle) -> None:
    dropped = sample("smslane_worker_callbacks_total", status="sent", outcome="dropped")
    first, second, third = ("SM" + n * 32 for n in "abc")
    for sid in (first, second, third):
        await life.callback(callback("sent", 1, sid=sid), sid.encode())
    assert set(life.held) == {first.encode(), second.encode()}  # max_held is 2
    assert sample("smslane_worker_callbacks_total", status="sent", outcome="dropped") \
        == dropped + 1  # fmt: skip
    await life.callback(callback("delivered", 2, sid=first), first.encode())
    assert len(HELD.decode(life.held[first.encode()]).callbacks) == 2


async def test_poison_values_are_counted_and_skipped(life: Lifecycle) -> None:
    skipped = sample("smslane_worker_skipped_events_total", agent="track_lifecycle")
    await life.feed("callback", b"not json")
    await life.feed("created", b'{"id": "not a record"}')
    await life.feed("control", b'{"action": "explode", "at": "2024-05-01T12:00:00Z"}')
    await life.feed("callback", b"\xff\xfe")
    assert (life.records, life.held, life.published.statuses) == ({}, {}, [])
    assert sample("smslane_worker_skipped_events_total", agent="track_lifecycle") == skipped + 4


async def test_an_undecodable_stored_record_makes_its_events_poison_and_stays(
    life: Lifecycle,
) -> None:
    life.records[SID] = b"{broken"
    skipped = sample("smslane_worker_skipped_events_total", agent="track_lifecycle")
    await life.callback(callback("sent", 1))
    await life.created()
    assert life.records[SID] == b"{broken" and life.held == {}
    assert life.published.statuses == []
    assert sample("smslane_worker_skipped_events_total", agent="track_lifecycle") == skipped + 2


# -- the message's subaccount -------------------------------------------------------------------

ACCOUNT_X, ACCOUNT_Y = "AC" + "1" * 32, "AC" + "2" * 32
SERVICE = "MG" + "1" * 32


async def test_the_subaccount_and_service_are_kept_beside_the_record_not_in_it(
    life: Lifecycle,
) -> None:
    await life.created(account_sid=ACCOUNT_X, messaging_service_sid=SERVICE)
    state = life.state()
    assert (state.account_sid, state.messaging_service_sid) == (ACCOUNT_X, SERVICE)
    published = life.published.statuses[0].model_dump()
    assert "account_sid" not in published and "messaging_service_sid" not in published
    assert life.published.statuses[0].record() == create_record()


async def test_a_callback_from_another_subaccount_changes_nothing_and_is_counted(
    life: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = sample("smslane_worker_callbacks_total", status="delivered",
                     outcome="other_subaccount")  # fmt: skip
    await life.created(account_sid=ACCOUNT_Y)
    stored = life.records[SID]
    await life.callback(callback("delivered", 1, AccountSid=ACCOUNT_X))
    await life.callback(callback("delivered", 2))  # naming no subaccount at all
    assert life.records[SID] == stored
    assert life.published.versions() == [(1, SmsStatus.PENDING)]
    assert sample("smslane_worker_callbacks_total", status="delivered",
                  outcome="other_subaccount") == foreign + 2  # fmt: skip
    assert f"{MESSAGE_SID} from subaccount {ACCOUNT_X}" in caplog.text
    assert f"sent through {ACCOUNT_Y}" in caplog.text
    await life.callback(callback("delivered", 3, AccountSid=ACCOUNT_Y))
    assert life.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.DELIVERED)]


async def test_a_held_callback_from_another_subaccount_is_dropped_when_applied(
    life: Lifecycle,
) -> None:
    await life.callback(callback("delivered", 1, AccountSid=ACCOUNT_X))
    await life.callback(callback("sent", 2, AccountSid=ACCOUNT_Y))
    await life.created(account_sid=ACCOUNT_Y)
    assert life.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.SENT)]
    assert life.held == {}


async def test_a_record_kept_without_its_subaccount_takes_callbacks_as_before(
    life: Lifecycle,
) -> None:
    await life.created()  # a created event from before the subaccount was carried
    await life.callback(callback("delivered", 1, AccountSid=ACCOUNT_X))
    assert life.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.DELIVERED)]


# -- the table never runs ahead of sms.status ----------------------------------------------------


async def test_a_version_whose_publish_failed_is_not_kept(life: Lifecycle) -> None:
    """The publish of ``delivered`` fails (the event is skipped): the table stays at the
    version sms.status has, so the repair's callback later issues that version once, and
    every version the table ever held was published. Putting before publishing left the
    table terminal at a version never published, and the repair found nothing to do."""
    await life.created()
    await life.callback(callback("sent", 1))
    life.published.failures = 1
    await life.callback(callback("delivered", 2))
    assert life.state().version == 2 and life.state().record.status is SmsStatus.SENT
    await life.callback(callback("delivered", 3))  # status repair, a fresh receipt
    assert life.published.versions() == [
        (1, SmsStatus.PENDING), (2, SmsStatus.SENT), (3, SmsStatus.DELIVERED)
    ]  # fmt: skip
    assert life.state().record == life.published.statuses[-1].record()


async def test_a_create_whose_publish_failed_keeps_its_held_callbacks(life: Lifecycle) -> None:
    await life.callback(callback("sent", 1))
    life.published.failures = 1
    await life.created()
    assert life.records == {} and SID in life.held
    await life.created()  # redelivered, or the record's next event
    assert life.published.versions() == [(1, SmsStatus.PENDING), (2, SmsStatus.SENT)]


# -- housekeeping ------------------------------------------------------------------------------


async def test_expire_held_orders_only_holds_that_are_over_and_rechecks_them(
    life: Lifecycle,
) -> None:
    await life.callback(callback("sent", 0))
    assert await life.processor.order_expiry(at(299)) == 0
    assert await life.processor.order_expiry(at(300)) == 1
    assert life.published.orders == [(SID, LifecycleControl(action="expire_held", at=at(300)))]

    early = LifecycleControl(action="expire_held", at=at(10))  # an order from a stale view
    await life.feed("control", Topics.LIFECYCLE_CONTROL.codec.encode(early))
    assert SID in life.held
    sid, order = life.published.orders[0]
    await life.feed("control", Topics.LIFECYCLE_CONTROL.codec.encode(order), sid)
    assert life.held == {} and len(life.processor.held) == 0
    await life.created()  # the message after all: a fresh record, nothing applied
    assert life.published.versions() == [(1, SmsStatus.PENDING)]


async def test_evict_orders_terminal_records_after_retention_and_others_once_stale(
    life: Lifecycle,
) -> None:
    terminal, pending, fresh = (f"SM{n}" for n in "tpf")
    await life.created(create_record(message_sid=terminal, status=SmsStatus.DELIVERED))
    await life.created(create_record(message_sid=pending))
    await life.created(create_record(message_sid=fresh, status=SmsStatus.FAILED,
                                     updated_at=T0 + timedelta(days=6)))  # fmt: skip
    life.records[b"SMbad"] = b"{broken"  # neither ordered nor fatal to the scan

    def ordered() -> list[bytes]:
        return [sid for sid, _ in life.published.orders]

    assert await life.processor.order_evictions(T0 + timedelta(days=7)) == 1
    assert ordered() == [terminal.encode()]
    assert await life.processor.order_evictions(T0 + timedelta(days=14)) == 3
    assert ordered()[1:] == [terminal.encode(), pending.encode(), fresh.encode()]

    evicted = sample("smslane_worker_records_evicted_total")
    for sid, order in life.published.orders[1:]:
        await life.feed("control", Topics.LIFECYCLE_CONTROL.codec.encode(order), sid)
    assert set(life.records) == {b"SMbad"}
    assert sample("smslane_worker_records_evicted_total") == evicted + 3


async def test_an_evict_order_rechecks_the_record_as_it_is_now(life: Lifecycle) -> None:
    await life.created()
    assert await life.processor.order_evictions(T0 + timedelta(days=14)) == 1
    await life.callback(callback("sent", 14 * 86400))  # it moved after the timer looked
    sid, order = life.published.orders[0]
    await life.feed("control", Topics.LIFECYCLE_CONTROL.codec.encode(order), sid)
    assert life.state().record.status is SmsStatus.SENT


async def test_the_timers_work_from_snapshots_while_the_tables_change(life: Lifecycle) -> None:
    for n in range(3):
        await life.callback(callback("sent", 0, sid=f"SMh{n}"), f"SMh{n}".encode())
    for n in range(3):
        await life.created(create_record(message_sid=f"SMr{n}", status=SmsStatus.DELIVERED))
    # Each order's send lets other events in: new entries land in the table meanwhile (a
    # live walk over a dict would fail; over RocksDB it would race partition revocation).
    life.published.tables = [life.held]
    life.published.on_order = [(f"SMnew{n}".encode(), life.held[b"SMh0"]) for n in range(3)]
    assert await life.processor.order_expiry(at(300)) == 2  # max_held: SMh2 was dropped
    assert len(life.held) == 5
    life.published.tables = [life.records]
    life.published.on_order = [(b"SMnew", life.records[b"SMr0"])]
    assert await life.processor.order_evictions(T0 + timedelta(days=7)) == 3
    assert b"SMnew" in life.records
