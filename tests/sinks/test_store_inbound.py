"""Inbound SMS in the store (SQLite and PostgreSQL), and the sink that fills it from Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.inbound import InboundMessage, KeywordAction, inbound_id
from schemas.topics import Topics
from smslane.processes import wait_until_async
from store import InboundQuery, InvalidCursor, Store
from tests.sinks.conftest import SinkHarness
from tests.sinks.helpers import create_topic, produce

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PERSON = "+14155550199"


def message(
    n: int = 0, *, use_case_id: uuid.UUID | None = None, person: str = PERSON
) -> InboundMessage:
    sid = f"SM{n:032d}"
    return InboundMessage(
        id=inbound_id("AC1", sid), message_sid=sid, account_sid="AC1",
        messaging_service_sid="MG1", use_case_id=use_case_id, from_number=person,
        to_number="+14155550100", body=f"message {n}", keyword="STOP" if n == 0 else None,
        keyword_action=KeywordAction.OPT_OUT if n == 0 else None,
        received_at=T0 + timedelta(seconds=n),
    )  # fmt: skip


async def test_insert_is_idempotent_and_reads_back_what_was_written(store: Store) -> None:
    first = message(0, use_case_id=uuid.uuid4())
    assert await store.insert_inbound([first, first]) == 1
    assert await store.insert_inbound([first, message(1)]) == 1
    items, cursor = await store.list_inbound(InboundQuery())
    assert items == [message(1), first] and cursor is None


async def test_listing_pages_newest_first_with_filters(store: Store) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    await store.insert_inbound([message(n, use_case_id=mine) for n in range(5)])
    await store.insert_inbound([message(9, use_case_id=other, person="+14155550198")])
    page, cursor = await store.list_inbound(InboundQuery(use_case_id=mine, limit=2))
    assert [m.body for m in page] == ["message 4", "message 3"] and cursor
    rest, _ = await store.list_inbound(InboundQuery(use_case_id=mine, limit=10, cursor=cursor))
    assert [m.body for m in rest] == ["message 2", "message 1", "message 0"]
    between = InboundQuery(created_after=T0, created_before=T0 + timedelta(seconds=3))
    assert [m.body for m in (await store.list_inbound(between))[0]] == ["message 2", "message 1"]
    by_sender = (await store.list_inbound(InboundQuery(from_number="+14155550198")))[0]
    assert [m.use_case_id for m in by_sender] == [other]
    with pytest.raises(InvalidCursor):
        await store.list_inbound(InboundQuery(cursor="bogus"))


async def test_a_scoped_listing_sees_only_its_use_cases(store: Store) -> None:
    mine = uuid.uuid4()
    await store.insert_inbound(
        [message(0, use_case_id=mine), message(1), message(2, use_case_id=uuid.uuid4())]
    )
    scoped = (await store.list_inbound(InboundQuery(use_case_ids=frozenset({mine}))))[0]
    assert [m.use_case_id for m in scoped] == [mine]
    assert (await store.list_inbound(InboundQuery(use_case_ids=frozenset())))[0] == []
    assert len((await store.list_inbound(InboundQuery()))[0]) == 3  # unscoped: all


@pytest.mark.integration
async def test_the_sink_stores_sms_inbound_once_and_skips_what_is_not_a_message(
    sink: SinkHarness, store: Store, database_url: str
) -> None:
    topic = Topics.INBOUND.name(sink.prefix)
    await create_topic(sink.bootstrap, topic, 2)
    messages = [message(n, use_case_id=uuid.uuid4()) for n in range(20)]
    # PostgreSQL refuses a sender this long (SQLite stores it): skipped, not a held batch.
    too_long = message(99, person="+1" + "5" * 80)
    encoded = [(m.from_number.encode(), Topics.INBOUND.codec.encode(m)) for m in messages]
    bad = [(b"x", b"{not json"), (b"y", Topics.INBOUND.codec.encode(too_long))]
    await produce(sink.bootstrap, topic, [*encoded[:10], *bad, *encoded])
    await sink.start(database_url)

    async def stored() -> list[InboundMessage] | None:
        items, _ = await store.list_inbound(InboundQuery(limit=100))
        return items if {m.id for m in messages} <= {i.id for i in items} else None

    items = await wait_until_async(stored, 30, "the inbound messages in the store")
    good = [i for i in items if i.id != too_long.id]
    assert good == sorted(messages, key=lambda m: m.received_at, reverse=True)
