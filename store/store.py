"""The record store: SMS records materialized from ``sms.status``, and the queries over them.

One :class:`Store` per process, over one pooled SQLAlchemy async engine (SQLite through
aiosqlite, or PostgreSQL through asyncpg). The sink writes with :meth:`Store.upsert_records`;
the ingress reads with :meth:`Store.get_record` and :meth:`Store.list_records`. Inbound SMS
(``sms.inbound``) go through :meth:`Store.insert_inbound` and :meth:`Store.list_inbound`
(``store.inbound``).

Errors: a database that is down or busy surfaces as :class:`~store.errors.StoreUnavailable`
(answer 503, or retry); a malformed cursor as :class:`~store.errors.InvalidCursor` (422).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Collection, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Uuid, event, literal, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from schemas.inbound import InboundMessage
from schemas.records import SmsRecord, SmsStatus, SmsStatusEvent
from schemas.webhooks import DeliveryLogEntry
from store.cursor import decode_cursor, encode_cursor
from store.errors import (
    InvalidCursor,
    StoreUnavailable,
    is_unavailable,
    unavailable_as_store_error,
)
from store.inbound import InboundQuery, insert_inbound, list_inbound
from store.migrate import upgrade
from store.tables import UPDATED_COLUMNS, UtcDateTime, event_row, row_record, sms_records
from store.webhooks import DeliveryQuery, list_deliveries, purge_deliveries, upsert_deliveries

__all__ = ["InvalidCursor", "Store", "StoreUnavailable"]

log = logging.getLogger(__name__)

#: How long SQLite waits for another writer's lock before giving up (unless the URL says
#: ``?timeout=<seconds>``, the sqlite3 module's own parameter).
SQLITE_BUSY_TIMEOUT_S = 5.0
#: How long :meth:`Store.close` lets writes in flight end.
CLOSE_WAIT_S = 10.0
#: asyncpg's connect and per-statement timeouts (seconds), unless the URL sets them.
PG_CONNECT_TIMEOUT_S = 5.0
PG_COMMAND_TIMEOUT_S = 30.0


class Store:
    """SMS records in SQL. Build it with :meth:`open`; close it with :meth:`close`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Writers take SQLite's write lock up front (BEGIN IMMEDIATE), so a busy database
        # makes them wait on busy_timeout instead of failing half-way through.
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._upsert = _upsert_statement(engine.dialect.name)
        self._writes: set[asyncio.Task[int]] = set()

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and bring its schema up to date (see ``store.migrate``).

        For a SQLite file, the file's directory is created when missing.
        Raises :class:`StoreUnavailable` when the database cannot be reached.
        """
        engine = _create_engine(url)
        try:
            if _is_sqlite_file(url):
                await _use_wal(engine, _sqlite_busy_seconds(url))
            if migrate:
                with unavailable_as_store_error():
                    await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        """Let the writes in flight end (see :meth:`_run_write`), then close every pooled
        connection."""
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=CLOSE_WAIT_S)
        await self._engine.dispose()

    async def _run_write(self, write: Coroutine[Any, Any, int]) -> int:
        """Run ``write`` to its end (commit or rollback) even if the caller is cancelled.

        A transaction cut off by a cancellation can leave its connection checked out with
        SQLite's write lock held, and every later writer of the file then fails with
        "database is locked". Shielded, the transaction ends and its connection goes back;
        the cancelled caller does not wait for it (its batch is not committed, so it comes
        again: the writes are idempotent).
        """
        task = asyncio.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._forget_write)
        return await asyncio.shield(task)

    def _forget_write(self, task: asyncio.Task[int]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a cancelled caller's failed write is not an error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        """The engine underneath, for operational queries and tests."""
        return self._engine

    async def ping(self) -> None:
        """Return when the database answers; raise :class:`StoreUnavailable` otherwise."""
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

    async def upsert_records(self, events: Sequence[SmsStatusEvent]) -> int:
        """Write the newest version of each record in ``events``; return the rows changed.

        Idempotent and order-proof: an event whose version is not above the stored one changes
        nothing, so replays, duplicates and late events are harmless. Several versions of one
        record in ``events`` collapse to the highest. One transaction, one statement.
        """
        latest: dict[UUID, SmsStatusEvent] = {}
        for event_ in events:
            held = latest.get(event_.id)
            if held is None or event_.version > held.version:
                latest[event_.id] = event_
        if not latest:
            return 0
        now = datetime.now(UTC)
        # Sorted by id: concurrent writers lock rows in the same order, so never deadlock.
        rows = [event_row(latest[key], now) for key in sorted(latest)]
        return await self._run_write(self._upsert_rows(rows))

    async def _upsert_rows(self, rows: list[dict[str, Any]]) -> int:
        with unavailable_as_store_error():
            async with self._writer.connect() as connection:
                try:
                    async with connection.begin():
                        result = await connection.execute(self._upsert, rows)
                        return len(result.all())
                except Exception as exc:
                    if self._discard_after(exc) and not connection.invalidated:
                        await connection.invalidate(exc)
                    raise

    def _discard_after(self, exc: BaseException) -> bool:
        """Whether the connection a write failed on must not be reused: a PostgreSQL session
        refused for the server's state (read-only: a standby after a failover, or opened
        under ``default_transaction_read_only``) would fail the retry too. (A SQLite
        connection is kept: in memory, it is the database.)"""
        return self._engine.dialect.name == "postgresql" and is_unavailable(exc)

    async def get_record(self, record_id: UUID) -> SmsRecord | None:
        """The record with this id, or ``None``."""
        query = select(sms_records).where(sms_records.c.id == record_id)
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                row = (await connection.execute(query)).first()
        return None if row is None else row_record(row)

    async def list_records(
        self,
        *,
        use_case_id: UUID | None = None,
        use_case_ids: Collection[UUID] | None = None,
        status: SmsStatus | None = None,
        to_number: str | None = None,
        client_reference: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[SmsRecord], str | None]:
        """One page of records, newest first (``created_at`` then ``id``, descending).

        Filters combine with AND; ``use_case_ids`` (an API key's scope) keeps only those use
        cases, none at all when empty; ``created_after`` and ``created_before`` are exclusive
        bounds (a naive datetime is taken as UTC). Returns the page and the cursor of the
        next page, ``None`` on the last. Paging is keyset-based: rows written while a client
        pages through never make it skip or repeat a row.
        Raises :class:`InvalidCursor` for a cursor this method did not hand out.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        c = sms_records.c
        where: list[ColumnElement[bool]] = []
        if cursor is not None:
            after_created, after_id = decode_cursor(cursor)
            where.append(
                tuple_(c.created_at, c.id)
                < tuple_(literal(after_created, UtcDateTime()), literal(after_id, Uuid()))
            )
        if use_case_id is not None:
            where.append(c.use_case_id == use_case_id)
        if use_case_ids is not None:
            where.append(c.use_case_id.in_(sorted(use_case_ids)))
        if status is not None:
            where.append(c.status == SmsStatus(status).value)
        if to_number is not None:
            where.append(c.to_number == to_number)
        if client_reference is not None:
            where.append(c.client_reference == client_reference)
        if created_after is not None:
            where.append(c.created_at > created_after)
        if created_before is not None:
            where.append(c.created_at < created_before)
        query = (
            select(sms_records)
            .where(*where)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        with unavailable_as_store_error():
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        records = [row_record(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return records, None
        last = records[-1]
        return records, encode_cursor(last.created_at, last.id)

    async def insert_inbound(self, messages: Sequence[InboundMessage]) -> int:
        """Store the inbound messages not stored yet (by ``id``); the rows added."""
        return await self._run_write(insert_inbound(self._writer, messages))

    async def list_inbound(self, query: InboundQuery) -> tuple[list[InboundMessage], str | None]:
        """One page of inbound messages, newest first, and the next page's cursor."""
        return await list_inbound(self._engine, query)

    async def upsert_deliveries(self, entries: Sequence[DeliveryLogEntry]) -> int:
        """Store the last change of each webhook delivery (``store.webhooks``)."""
        return await self._run_write(upsert_deliveries(self._writer, entries))

    async def list_deliveries(
        self, query: DeliveryQuery
    ) -> tuple[list[DeliveryLogEntry], str | None]:
        """One page of an endpoint's deliveries, newest first, and the next page's cursor."""
        return await list_deliveries(self._engine, query)

    async def purge_deliveries(self, now: datetime) -> int:
        """Delete the deliveries older than the log keeps them."""
        return await self._run_write(purge_deliveries(self._writer, now))


def _upsert_statement(dialect_name: str) -> Insert:
    """``INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE stored.version < excluded.version``."""
    if dialect_name == "postgresql":
        statement: postgresql.Insert | sqlite.Insert = postgresql.insert(sms_records)
    elif dialect_name == "sqlite":
        statement = sqlite.insert(sms_records)
    else:
        raise ValueError(f"unsupported database {dialect_name!r}: use SQLite or PostgreSQL")
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[sms_records.c.id],
        set_={name: excluded[name] for name in (*UPDATED_COLUMNS, "sink_updated_at")},
        where=sms_records.c.version < excluded.version,
    ).returning(sms_records.c.id)


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(url)
    if backend != "postgresql":
        raise ValueError(f"unsupported database URL {parsed!r}: use SQLite or PostgreSQL")
    connect_args: dict[str, Any] = {"server_settings": {"application_name": "smslane"}}
    if "timeout" not in parsed.query:
        connect_args["timeout"] = PG_CONNECT_TIMEOUT_S
    if "command_timeout" not in parsed.query:
        connect_args["command_timeout"] = PG_COMMAND_TIMEOUT_S
    return create_async_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        pool_pre_ping=True,  # a restarted server costs one failed ping, not a failed query
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _is_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    return (parsed.database or "") not in ("", ":memory:") and parsed.query.get("mode") != "memory"


def _sqlite_busy_seconds(url: str) -> float:
    timeout = make_url(url).query.get("timeout", SQLITE_BUSY_TIMEOUT_S)
    return float(timeout if isinstance(timeout, str | float) else timeout[0])


async def _use_wal(engine: AsyncEngine, patience_s: float) -> None:
    """Put a SQLite file in WAL mode (kept in the file): readers never block the writer.

    The switch needs the exclusive lock, and SQLite refuses it at once, without waiting on
    ``busy_timeout``, when this connection holds a read lock while another holds the write
    lock (its deadlock rule) -- as happens when the ingress and the sink open a fresh
    database together. So the switch is retried for as long as ``busy_timeout`` would wait.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while True:
        try:
            with unavailable_as_store_error():
                async with engine.connect() as connection:
                    raw = await connection.get_raw_connection()
                    # The driver's own connection: no BEGIN from _on_begin around the pragma.
                    driver = raw.driver_connection
                    assert driver is not None  # a live pooled connection
                    cursor = await driver.execute("PRAGMA journal_mode = WAL")
                    await cursor.close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() >= deadline:
                log.warning("record store unavailable: %s", exc)
                raise StoreUnavailable() from exc
            await asyncio.sleep(0.02)


def _create_sqlite_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = not _is_sqlite_file(url)
    if not in_memory and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    busy_ms = int(_sqlite_busy_seconds(url) * 1000)
    if in_memory:
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        engine = create_async_engine(url, pool_size=5, max_overflow=5, pool_timeout=10)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are ours (see _on_begin), not the sqlite3 module's implicit ones.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        if not in_memory:
            # WAL (set by _use_wal) + NORMAL: no fsync per commit, still safe from corruption;
            # a commit lost to a power cut is written again from sms.status (the sink replays).
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
