"""Fixtures of the sink tests: every test gets its own database, on SQLite and on PostgreSQL.

PostgreSQL comes from ``SMSLANE_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` prints it): each test
creates a fresh database there and drops it afterwards. Without the variable those tests are
skipped, unless ``CI`` is set: then they fail, because CI must run them. Kafka tests use the
session's broker, like every other test (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.engine import make_url

from schemas.settings import Settings
from schemas.topics import Topics
from sinks.runner import Backoff, run_sink
from store import Store
from tests.sinks.helpers import (
    TcpProxy,
    create_topic,
    delete_topic,
    fresh_pg_database,
    postgres_url,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database of its own for this test (empty: no schema yet)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        async with fresh_pg_database(postgres_url()) as url:
            yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url)
    try:
        yield store
    finally:
        await store.close()


class Outage:
    """Makes the database unusable for writers at ``url`` and restores it, for real.

    SQLite: another connection holds the write lock (``BEGIN EXCLUSIVE``), and ``url`` waits
    only 0.2s for it. PostgreSQL: ``url`` goes through a TCP proxy that gets cut (connections
    reset, new ones refused), then listens again.
    """

    def __init__(self, backend: str, direct_url: str) -> None:
        self.backend = backend
        self.direct_url = direct_url
        self._lock: sqlite3.Connection | None = None
        self._proxy: TcpProxy | None = None
        parsed = make_url(direct_url)
        if backend == "sqlite":
            self.url = f"{direct_url}?timeout=0.2"
        else:
            self._proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
            self.url = parsed.set(port=self._proxy.port).render_as_string(hide_password=False)

    async def start_proxy(self) -> None:
        if self._proxy is not None:
            await self._proxy.start()

    async def begin(self) -> None:
        if self._proxy is not None:
            await self._proxy.cut()
            return
        database = make_url(self.direct_url).database
        assert database is not None

        def lock() -> sqlite3.Connection:
            conn = sqlite3.connect(
                database, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("BEGIN EXCLUSIVE")
            return conn

        self._lock = await asyncio.to_thread(lock)

    async def end(self) -> None:
        if self._proxy is not None:
            await self._proxy.start()
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None


@pytest.fixture
async def outage(backend: str, database_url: str, store: Store) -> AsyncIterator[Outage]:
    """An :class:`Outage` of this test's database (whose schema ``store`` has created)."""
    result = Outage(backend, database_url)
    await result.start_proxy()
    try:
        yield result
    finally:
        await result.end()
        if result._proxy is not None:
            await result._proxy.cut()


@pytest.fixture(scope="session")
def kafka(kafka_bootstrap: str) -> str:
    """The session's broker (``tests/conftest.py``): the one CI started, or one of ours."""
    return kafka_bootstrap


@dataclass
class SinkHarness:
    """A unique ``sms.status`` topic and sink runs against it."""

    bootstrap: str
    prefix: str
    partitions: int = 3
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return Topics.STATUS.name(self.prefix)

    @property
    def group_id(self) -> str:
        return f"{self.prefix}smslane-sink"

    def settings(self, database_url: str) -> Settings:
        return Settings(
            kafka_bootstrap_servers=self.bootstrap,
            database_url=database_url,
            topic_prefix=self.prefix,
        )

    async def start(
        self, database_url: str, *, batch_size: int = 100, wait_ready: bool = True
    ) -> tuple[asyncio.Task[None], asyncio.Event]:
        """Start ``run_sink`` in a task; return it and its ``stop`` event (once it is ready)."""
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            run_sink(
                self.settings(database_url),
                stop=stop,
                ready=ready,
                batch_size=batch_size,
                poll_timeout_ms=100,
                backoff=Backoff(initial_s=0.05, factor=2.0, max_s=0.4),
                stats_interval_s=1.0,
            )
        )
        self.tasks.append(task)
        if not wait_ready:
            return task, stop
        ready_wait = asyncio.create_task(ready.wait())
        await asyncio.wait({task, ready_wait}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        ready_wait.cancel()
        if task.done():
            task.result()  # raise what made it stop
        assert ready.is_set(), "the sink did not get ready in 30s"
        return task, stop

    async def kill(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def sink(kafka: str) -> AsyncIterator[SinkHarness]:
    harness = SinkHarness(kafka, prefix=f"t{uuid4().hex[:12]}.")
    await create_topic(kafka, harness.topic, harness.partitions)
    try:
        yield harness
    finally:
        for task in harness.tasks:
            await harness.kill(task)
        await delete_topic(kafka, harness.topic)
