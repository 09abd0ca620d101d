"""The webhook delivery log in the store (SQLite and PostgreSQL): the last change wins,
newest event first with cursors, 7 days kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.config import WebhookEventType
from schemas.webhooks import DeliveryLogEntry, DeliveryStatus, webhook_event_id
from store import DeliveryQuery, InvalidCursor, Store

ENDPOINT = uuid.UUID(int=1)


def entry(n: int, status: DeliveryStatus, attempts: int, at: datetime) -> DeliveryLogEntry:
    return DeliveryLogEntry(
        endpoint_id=ENDPOINT,
        event_id=webhook_event_id(WebhookEventType.STATUS, uuid.UUID(int=n), 1),
        type=WebhookEventType.STATUS,
        status=status,
        attempts=attempts,
        last_status_code=500 if status is DeliveryStatus.PENDING and attempts else 200,
        created_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=n),
        updated_at=at,
    )


async def test_the_last_change_of_a_delivery_wins(store: Store) -> None:
    now = datetime.now(UTC)
    first = entry(1, DeliveryStatus.PENDING, 1, now)
    done = entry(1, DeliveryStatus.DELIVERED, 2, now + timedelta(seconds=5))
    await store.upsert_deliveries([done])
    await store.upsert_deliveries([first])  # redelivered late: older, changes nothing
    items, cursor = await store.list_deliveries(DeliveryQuery(endpoint_id=ENDPOINT))
    assert items == [done] and cursor is None
    other = await store.list_deliveries(DeliveryQuery(endpoint_id=uuid.uuid4()))
    assert other == ([], None)


async def test_newest_first_by_pages_and_by_status(store: Store) -> None:
    now = datetime.now(UTC)
    entries = [entry(n, DeliveryStatus.DELIVERED if n % 2 else DeliveryStatus.FAILED, 1, now)
               for n in range(5)]  # fmt: skip
    await store.upsert_deliveries(entries)
    page, cursor = await store.list_deliveries(DeliveryQuery(endpoint_id=ENDPOINT, limit=2))
    assert page == [entries[4], entries[3]] and cursor is not None
    rest, end = await store.list_deliveries(
        DeliveryQuery(endpoint_id=ENDPOINT, limit=10, cursor=cursor)
    )
    assert rest == [entries[2], entries[1], entries[0]] and end is None
    failed, _ = await store.list_deliveries(
        DeliveryQuery(endpoint_id=ENDPOINT, status=DeliveryStatus.FAILED)
    )
    assert failed == [entries[4], entries[2], entries[0]]
    with pytest.raises(InvalidCursor):
        await store.list_deliveries(DeliveryQuery(endpoint_id=ENDPOINT, cursor="nope"))


async def test_deliveries_are_kept_seven_days(store: Store) -> None:
    now = datetime.now(UTC)
    old = entry(1, DeliveryStatus.DELIVERED, 1, now - timedelta(days=7, minutes=1))
    recent = entry(2, DeliveryStatus.DELIVERED, 1, now - timedelta(days=6))
    await store.upsert_deliveries([old, recent])
    listed, _ = await store.list_deliveries(DeliveryQuery(endpoint_id=ENDPOINT))
    assert listed == [recent], "older than 7 days is not listed"
    assert await store.purge_deliveries(now) == 1
    assert await store.purge_deliveries(now) == 0
