"""Bring the store's schema to the newest revision, safely when several processes start at once.

The ingress and the sink both open the store, often at the same moment on a fresh database.
The whole upgrade runs in one transaction that first takes a database-wide lock:

- PostgreSQL: ``pg_advisory_xact_lock`` (released at commit or rollback);
- SQLite: ``BEGIN IMMEDIATE`` (the write lock; a second process waits on ``busy_timeout``).

The second process then finds the schema current and does nothing. DDL is transactional on
both databases, so a failed upgrade leaves no half-made schema behind. Within one process,
upgrades also take turns (Alembic keeps the running migration in module globals).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

#: The PostgreSQL advisory lock id of schema upgrades ("smslane" in ASCII).
PG_MIGRATION_LOCK = 0x736D736C616E65


#: One upgrade at a time per event loop: ``alembic.context`` and ``alembic.op`` are globals.
_PROCESS_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config() -> Config:
    """An Alembic config built in code: it does not depend on the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision the migration scripts define."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (``None`` for a fresh database)."""
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    log.info("store schema at revision %s", current_revision(connection))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema behind ``engine`` to ``revision`` under a database-wide lock."""
    dialect = engine.dialect.name
    if revision == "head":
        async with engine.connect() as connection:
            if await connection.run_sync(current_revision) == head_revision():
                return  # the common case: no lock, no write
    loop = asyncio.get_running_loop()
    process_lock = _PROCESS_LOCKS.setdefault(loop, asyncio.Lock())
    async with process_lock, engine.connect() as connection:
        if dialect == "sqlite":
            connection = await connection.execution_options(sqlite_begin="IMMEDIATE")
        async with connection.begin():
            if dialect == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK}
                )
            await connection.run_sync(_upgrade, revision)
