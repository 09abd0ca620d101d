"""A database that is down surfaces as StoreUnavailable, and the store recovers after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from schemas.errors import ServiceUnavailable
from store import Store, StoreUnavailable
from tests.sinks.conftest import Outage
from tests.sinks.factories import make_event
from tests.sinks.helpers import free_port


async def test_open_on_a_server_that_is_not_there(backend: str) -> None:
    if backend == "sqlite":
        url = "sqlite+aiosqlite:////proc/no-such-dir/store.db"  # a directory nobody can create
        with pytest.raises(OSError):
            await Store.open(url)
        return
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreUnavailable) as caught:
        await Store.open(url)
    assert isinstance(caught.value, ServiceUnavailable) and caught.value.status_code == 503


async def test_writes_fail_as_unavailable_during_an_outage_then_recover(
    outage: Outage,
) -> None:
    async with await Store.open(outage.url) as store:
        event = make_event()
        await outage.begin()

        with pytest.raises(StoreUnavailable):
            await store.upsert_records([event])
        if outage.backend == "postgresql":  # SQLite readers are not blocked by a writer
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.get_record(event.id)
            with pytest.raises(StoreUnavailable):
                await store.list_records(limit=5)

        await outage.end()
        await store.ping()
        assert await store.upsert_records([event]) == 1
        assert await store.get_record(event.id) == event.record()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_open_during_an_outage_is_unavailable(outage: Outage) -> None:
    await outage.begin()
    with pytest.raises(StoreUnavailable):
        await Store.open(outage.url)


async def test_open_of_a_fresh_sqlite_file_another_writer_holds_is_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable):
            await Store.open(f"sqlite+aiosqlite:///{path}?timeout=0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    async with await Store.open(f"sqlite+aiosqlite:///{path}") as store:
        await store.ping()
