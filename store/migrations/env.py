"""Alembic environment of the sink's store.

``Store.open`` runs the migrations in-process (``store.migrate.upgrade``): it hands over an
open connection, already inside a locked transaction, through ``config.attributes``.

For developers, the ``alembic`` command works too (``store/alembic.ini``), with the database
from ``-x url=...`` or ``SMSLANE_DATABASE_URL``; it takes no lock, so use it on a quiet
database, e.g. ``alembic -c store/alembic.ini -x url=sqlite+aiosqlite:///./var/dev.db
revision --autogenerate -m "..."``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from store.tables import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "SMSLANE_DATABASE_URL"
    )
    return url or config.get_main_option("sqlalchemy.url") or "sqlite+aiosqlite:///./var/smslane.db"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = config.attributes.get("connection")
if isinstance(_connection, Connection):
    _run(_connection)
elif context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
