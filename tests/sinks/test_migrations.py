"""Schema migrations: applied on open, race-free between processes, matching tables.py."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from store import Store
from store.migrate import head_revision
from store.tables import metadata
from tests.sinks.factories import make_event

REPO = Path(__file__).resolve().parents[2]


async def revisions(store: Store) -> list[str]:
    async with store.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
    return [row[0] for row in rows]


async def test_open_creates_the_schema_at_head(store: Store) -> None:
    assert await revisions(store) == [head_revision()]

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with store.engine.connect() as connection:
        assert {"sms_records", "alembic_version"} <= await connection.run_sync(tables)


async def test_the_migrations_build_exactly_what_tables_py_declares(store: Store) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_reopening_keeps_the_data_and_the_revision(database_url: str) -> None:
    event = make_event()
    async with await Store.open(database_url) as first:
        await first.upsert_records([event])

    async with await Store.open(database_url) as again:
        assert await again.get_record(event.id) == event.record()
        assert await revisions(again) == [head_revision()]


async def test_concurrent_opens_on_a_fresh_database_all_succeed(database_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(database_url) for _ in range(5)))
    try:
        assert await revisions(stores[0]) == [head_revision()]
        event = make_event()
        await stores[1].upsert_records([event])
        assert await stores[4].get_record(event.id) == event.record()
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_opening_a_fresh_sqlite_file_waits_for_another_writer(tmp_path: Path) -> None:
    # Switching a fresh file to WAL needs the exclusive lock, and SQLite refuses it at once
    # (no busy_timeout wait) while another connection holds the write lock -- as when
    # another process is creating the schema. Opening must wait for the lock, not fail.
    path = tmp_path / "store.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE unrelated (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    release = asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
    try:
        async with await Store.open(f"sqlite+aiosqlite:///{path}") as store:
            assert await revisions(store) == [head_revision()]
    finally:
        release.cancel()
        other.close()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)


_OPEN_SCRIPT = """
import asyncio, sys
from store import Store

async def main() -> None:
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    store = await Store.open(sys.argv[1])
    await store.ping()
    await store.close()

asyncio.run(main())
"""


async def test_processes_opening_at_once_from_another_directory(
    database_url: str, tmp_path: Path
) -> None:
    # Several processes (like the ingress and the sink starting together) released at the
    # same instant, none of them in the repository: the Alembic config must not depend on
    # the working directory, and only the database-wide lock keeps them apart.
    if database_url.startswith("sqlite"):
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'er' / 'shared.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _OPEN_SCRIPT, database_url),
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    for process in processes:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    results = await asyncio.gather(*(p.communicate(b"go\n") for p in processes))

    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr.decode()
    async with await Store.open(database_url) as store:
        assert await revisions(store) == [head_revision()]
