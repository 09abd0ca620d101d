"""The webhook delivery log in the store: written from ``sms.webhook-deliveries`` by the
sink, listed by the ingress (``GET /v1/admin/webhook-endpoints/{id}/deliveries``).

A row is the last change of one delivery (endpoint x event): a change older than the stored
one (``updated_at``) changes nothing, so redelivered batches are harmless. Rows are listed
newest event first, keyset-paged on ``(created_at, event id)``, and purged
:data:`KEEP` after their last change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, delete, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.webhooks import DeliveryLogEntry, DeliveryStatus
from store.cursor import decode_cursor, encode_cursor
from store.errors import InvalidCursor, unavailable_as_store_error
from store.tables import UtcDateTime, webhook_deliveries

#: How long a delivery stays in the log after its last change.
KEEP = timedelta(days=7)
FIELDS: tuple[str, ...] = tuple(DeliveryLogEntry.model_fields)
#: What a later change of a delivery overwrites: all but its key.
CHANGING: tuple[str, ...] = tuple(f for f in FIELDS if f not in ("endpoint_id", "event_id"))


@dataclass(frozen=True)
class DeliveryQuery:
    """One endpoint's deliveries, of one ``status`` (None: all), a page at a time."""

    endpoint_id: UUID
    status: DeliveryStatus | None = None
    limit: int = 50
    cursor: str | None = None

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        c = webhook_deliveries.c
        where = [c.endpoint_id == self.endpoint_id, c.updated_at >= now - KEEP]
        if self.status is not None:
            where.append(c.status == self.status.value)
        if self.cursor is not None:
            after, after_id = decode_cursor(self.cursor)
            where.append(
                tuple_(c.created_at, c.event_id)
                < tuple_(literal(after, UtcDateTime()), literal(_event_id(after_id)))
            )
        return where


def _event_id(event_uuid: UUID) -> str:
    return f"evt_{event_uuid.hex}"


def _event_uuid(event_id: str) -> UUID:
    try:
        return UUID(hex=event_id.removeprefix("evt_"))
    except ValueError:
        raise InvalidCursor() from None


def _row(entry: DeliveryLogEntry) -> dict[str, Any]:
    row = entry.model_dump()
    row["type"], row["status"] = entry.type.value, entry.status.value
    return row


async def upsert_deliveries(writer: AsyncEngine, entries: Sequence[DeliveryLogEntry]) -> int:
    """Store the last change of each delivery in ``entries``; the rows changed."""
    latest: dict[tuple[UUID, str], DeliveryLogEntry] = {}
    for entry in entries:
        key = (entry.endpoint_id, entry.event_id)
        held = latest.get(key)
        if held is None or entry.updated_at >= held.updated_at:
            latest[key] = entry
    if not latest:
        return 0
    insert = postgresql.insert if writer.dialect.name == "postgresql" else sqlite.insert
    statement = insert(webhook_deliveries)
    c = webhook_deliveries.c
    statement = statement.on_conflict_do_update(
        index_elements=[c.endpoint_id, c.event_id],
        set_={
            name: statement.excluded[name]
            for name in FIELDS
            if name not in ("endpoint_id", "event_id")
        },
        where=c.updated_at <= statement.excluded.updated_at,
    )
    rows = [_row(latest[key]) for key in sorted(latest)]
    with unavailable_as_store_error():
        async with writer.begin() as connection:
            result = await connection.execute(statement, rows)
            return int(result.rowcount or 0)


async def list_deliveries(
    engine: AsyncEngine, query: DeliveryQuery
) -> tuple[list[DeliveryLogEntry], str | None]:
    """One page, newest event first, and the cursor of the next page (None on the last)."""
    c = webhook_deliveries.c
    statement = (
        select(webhook_deliveries)
        .where(*query.conditions(datetime.now(UTC)))
        .order_by(c.created_at.desc(), c.event_id.desc())
        .limit(query.limit + 1)
    )
    with unavailable_as_store_error():
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
    entries = [DeliveryLogEntry.model_validate(dict(row._mapping)) for row in rows[: query.limit]]
    if len(rows) <= query.limit:
        return entries, None
    last = entries[-1]
    return entries, encode_cursor(last.created_at, _event_uuid(last.event_id))


async def purge_deliveries(writer: AsyncEngine, now: datetime) -> int:
    """Delete the deliveries whose last change is older than :data:`KEEP`; how many."""
    statement = delete(webhook_deliveries).where(webhook_deliveries.c.updated_at < now - KEEP)
    with unavailable_as_store_error():
        async with writer.begin() as connection:
            return int((await connection.execute(statement)).rowcount or 0)
