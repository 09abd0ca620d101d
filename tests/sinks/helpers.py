"""Real-service helpers for the sink tests: databases, a TCP proxy, Kafka topics and offsets."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from uuid import UUID, uuid4

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import select
from sqlalchemy.engine import make_url

from schemas.records import SmsRecord, SmsStatusEvent
from smslane.processes import free_port
from store import Store
from store.tables import row_record, sms_records

POSTGRES_URL_VAR = "SMSLANE_TEST_POSTGRES_URL"


def unavailable(what: str) -> None:
    """Skip the test because ``what`` is missing, or fail it when running in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so these tests must run)", pytrace=False)
    pytest.skip(what)


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        unavailable(
            f"{POSTGRES_URL_VAR} is not set: start a server with `.ci/postgres.sh` and export "
            "the line it prints to run the PostgreSQL tests"
        )
    assert url is not None
    return url


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def create_pg_database(base_url: str) -> str:
    """A new, empty PostgreSQL database on the server of ``base_url``; its URL."""
    name = f"test_{uuid4().hex}"
    try:
        maintenance = await asyncpg.connect(_dsn(base_url), timeout=5)
    except OSError as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL_VAR} does not answer: {exc}")
    try:
        await maintenance.execute(f'CREATE DATABASE "{name}"')
    finally:
        await maintenance.close()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    """Drop the database of ``url`` (made by :func:`create_pg_database`), sessions and all."""
    maintenance = await asyncpg.connect(_dsn(url, "postgres"), timeout=5)
    try:
        await maintenance.execute(
            f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'
        )
    finally:
        await maintenance.close()


@contextlib.asynccontextmanager
async def fresh_pg_database(base_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the server of ``base_url``; dropped afterwards."""
    url = await create_pg_database(base_url)
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def set_read_only(url: str, read_only: bool) -> None:
    """Make the (test's own) database at ``url`` refuse writes, or take them again, for real.

    On: new sessions start read-only (``default_transaction_read_only``) and the open ones are
    terminated, as after a failover to a standby. Off: only new sessions can write; sessions
    opened meanwhile stay read-only, as a client still attached to the old primary would.
    """
    name = make_url(url).database
    assert name is not None and name.startswith("test_"), "only a test's own database"
    maintenance = await asyncpg.connect(_dsn(url, "postgres"), timeout=5)
    try:
        setting = "on" if read_only else "off"
        await maintenance.execute(
            f'ALTER DATABASE "{name}" SET default_transaction_read_only = {setting}'
        )
        if read_only:
            await maintenance.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await maintenance.close()


async def dump_rows(store: Store) -> dict[UUID, tuple[SmsRecord, int]]:
    """Every row of the table as ``{id: (record, version)}``."""
    async with store.engine.connect() as connection:
        rows = (await connection.execute(select(sms_records))).all()
    return {row.id: (row_record(row), row.version) for row in rows}


class TcpProxy:
    """A TCP forwarder to ``target``; :meth:`cut` makes the server vanish (refused, reset)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones, like a crashed server."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def new_topic(bootstrap: str, suffix: str, partitions: int) -> AsyncIterator[str]:
    """A topic of its own (a unique name ending in ``suffix``), deleted afterwards."""
    name = f"t{uuid4().hex[:10]}.{suffix}"
    await create_topic(bootstrap, name, partitions)
    try:
        yield name
    finally:
        await delete_topic(bootstrap, name)


async def produce(
    bootstrap: str, topic: str, events: Iterable[SmsStatusEvent | tuple[bytes, bytes | None]]
) -> None:
    """Publish events keyed by record id, in order; a ``(key, value)`` pair goes as is."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for item in events:
            value: bytes | None
            if isinstance(item, SmsStatusEvent):
                key, value = str(item.id).encode(), item.model_dump_json().encode()
            else:
                key, value = item
            futures.append(await producer.send(topic, value=value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group_id: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()
