"""Inbound SMS in the store: written from ``sms.inbound`` by the sink, listed by the ingress.

:class:`~store.store.Store` calls these with its engines: :func:`insert_inbound` (idempotent:
a message already stored by ``id`` is left as it is) and :func:`list_inbound` (newest first,
keyset-paged like the outbound list, cursors from ``store.cursor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Uuid, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.inbound import InboundMessage
from store.cursor import decode_cursor, encode_cursor
from store.errors import unavailable_as_store_error
from store.tables import UtcDateTime, sms_inbound

#: The columns that hold an :class:`InboundMessage`'s fields (all but ``version``).
INBOUND_FIELDS: tuple[str, ...] = tuple(f for f in InboundMessage.model_fields if f != "version")


@dataclass(frozen=True)
class InboundQuery:
    """The filters of a listing; they combine with AND, the time bounds are exclusive.

    ``use_case_ids`` is the caller's scope (None: every use case; a message of no use case
    is then listed too, and only then).
    """

    use_case_ids: frozenset[UUID] | None = None
    use_case_id: UUID | None = None
    from_number: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    cursor: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses of this query (raises ``InvalidCursor`` for a bad cursor)."""
        c = sms_inbound.c
        where: list[ColumnElement[bool]] = []
        if self.cursor is not None:
            after, after_id = decode_cursor(self.cursor)
            where.append(
                tuple_(c.received_at, c.id)
                < tuple_(literal(after, UtcDateTime()), literal(after_id, Uuid()))
            )
        if self.use_case_ids is not None:
            where.append(c.use_case_id.in_(sorted(self.use_case_ids)))
        if self.use_case_id is not None:
            where.append(c.use_case_id == self.use_case_id)
        if self.from_number is not None:
            where.append(c.from_number == self.from_number)
        if self.created_after is not None:
            where.append(c.received_at > self.created_after)
        if self.created_before is not None:
            where.append(c.received_at < self.created_before)
        return where


def inbound_row(message: InboundMessage, now: datetime) -> dict[str, Any]:
    """The ``sms_inbound`` row of a message, stamped with the sink's clock."""
    row = {name: getattr(message, name) for name in INBOUND_FIELDS}
    row["keyword_action"] = message.keyword_action.value if message.keyword_action else None
    row["sink_written_at"] = now
    return row


def row_inbound(row: Any) -> InboundMessage:
    """The message of a row selected with every column."""
    mapping = row._mapping
    return InboundMessage.model_validate({name: mapping[name] for name in INBOUND_FIELDS})


async def insert_inbound(writer: AsyncEngine, messages: Sequence[InboundMessage]) -> int:
    """Insert the messages not stored yet (by ``id``), in one transaction; the rows added."""
    unique = {message.id: message for message in messages}
    if not unique:
        return 0
    now = datetime.now(UTC)
    rows = [inbound_row(unique[key], now) for key in sorted(unique)]
    dialect = writer.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(sms_inbound)
        .on_conflict_do_nothing(index_elements=[sms_inbound.c.id])
        .returning(sms_inbound.c.id)
    )
    with unavailable_as_store_error():
        async with writer.begin() as connection:
            result = await connection.execute(statement, rows)
            return len(result.all())


async def list_inbound(
    engine: AsyncEngine, query: InboundQuery
) -> tuple[list[InboundMessage], str | None]:
    """One page, newest first (``received_at`` then ``id``, descending), and the cursor of
    the next page (None on the last)."""
    if query.limit < 1:
        raise ValueError(f"limit must be at least 1, got {query.limit}")
    c = sms_inbound.c
    statement = (
        select(sms_inbound)
        .where(*query.conditions())
        .order_by(c.received_at.desc(), c.id.desc())
        .limit(query.limit + 1)
    )
    with unavailable_as_store_error():
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
    messages = [row_inbound(row) for row in rows[: query.limit]]
    if len(rows) <= query.limit:
        return messages, None
    last = messages[-1]
    return messages, encode_cursor(last.received_at, last.id)
