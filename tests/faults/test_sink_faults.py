"""The sink under faults, on the production configuration: real processes, a real broker,
RocksDB tables in the worker and a PostgreSQL store.

- ``kill -9`` of the sink while sends and callbacks flow: once restarted, the store is the
  one a fresh rebuild from ``sms.status`` offset 0 makes.
- PostgreSQL read-only mid-stream (as after a failover): nothing skipped, everything written
  once it takes writes again.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from schemas.records import SmsRecord, SmsStatusEvent
from schemas.settings import Settings
from sinks.rebuild import rebuild_store
from smslane.processes import wait_until_async
from store import Store
from tests.factories import create_use_case, unique_number
from tests.harness import Stack, topic_partitions
from tests.integration.test_send import send
from tests.sinks.factories import expected_rows
from tests.sinks.helpers import (
    committed_offsets,
    dump_rows,
    end_offsets,
    set_read_only,
)

pytestmark = pytest.mark.integration

Rows = dict[UUID, tuple[SmsRecord, int]]


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, pg_url: str
) -> Iterator[Stack]:
    running = Stack(
        tmp_path_factory.mktemp("faults"), kafka_bootstrap, database_url=pg_url,
        table_store="rocksdb://",
    )  # fmt: skip
    with running.running():
        yield running


async def live_rows(url: str) -> Rows:
    async with await Store.open(url, migrate=False) as store:
        return await dump_rows(store)


async def delivered(url: str, ids: set[UUID]) -> int:
    rows = await live_rows(url)
    return sum(1 for key in ids if key in rows and rows[key][0].status == "delivered")


async def sink_caught_up(stack: Stack) -> bool:
    """The sink has committed every event of ``sms.status`` (so it wrote them all)."""
    bootstrap = stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"{stack.prefix}sms.status"
    ends = await end_offsets(bootstrap, topic, await topic_partitions(bootstrap, topic))
    committed = await committed_offsets(bootstrap, f"{stack.prefix}smslane-sink")
    return all(committed.get(p, 0) >= end for p, end in ends.items())


async def send_paced(stack: Stack, use_case_id: str, count: int, pause_s: float) -> set[UUID]:
    """``count`` sends, one every ``pause_s``; the ids of their records."""
    ids: set[UUID] = set()
    async with stack.client() as client:
        for _ in range(count):
            answer = await send(client, use_case_id, unique_number(), "fault test")
            assert answer.status_code == 201, answer.text
            ids.add(UUID(answer.json()["id"]))
            await asyncio.sleep(pause_s)
    return ids


async def topic_rows(stack: Stack) -> Rows:
    """What the store must hold: the newest version of every record on ``sms.status``."""
    events = [SmsStatusEvent.model_validate_json(r.value) for r in await stack.read_topic(
        "sms.status"
    )]  # fmt: skip
    return expected_rows(events)


async def test_a_sink_killed_mid_stream_ends_as_a_rebuild_from_offset_0(
    stack: Stack, pg_url: str, tmp_path: Path
) -> None:
    async with stack.admin() as admin, stack.sim_client() as sim:
        use_case = await create_use_case(admin)
        await sim.post("/_sim/config", json={"callback_delay_ms": 150})
    try:
        sends = asyncio.create_task(send_paced(stack, use_case["id"], 20, 0.1))

        async def some_written() -> bool:
            return len(await live_rows(pg_url)) >= 4

        await wait_until_async(some_written, 30, "the sink to write the first records")
        await asyncio.to_thread(stack.sink.stop, signal.SIGKILL)
        assert not sends.done(), "the sends were over before the kill"
        await asyncio.sleep(0.5)  # sends and callbacks go on meanwhile
        stack.sink.start()
        ids = await sends
    finally:
        async with stack.sim_client() as sim:
            await sim.post("/_sim/config", json={"callback_delay_ms": 5})

    async def all_delivered_and_committed() -> bool:
        return await delivered(pg_url, ids) == len(ids) and await sink_caught_up(stack)

    await wait_until_async(all_delivered_and_committed, 60, "every record delivered in the store")
    rebuilt_url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    settings = Settings(
        kafka_bootstrap_servers=stack.env["SMSLANE_KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=stack.prefix,
    )
    summary = await rebuild_store(settings, rebuilt_url)
    assert summary.complete and summary.skipped == 0
    assert await live_rows(pg_url) == await live_rows(rebuilt_url)


async def test_a_read_only_database_mid_stream_loses_nothing(stack: Stack, pg_url: str) -> None:
    async with stack.admin() as admin:
        use_case = await create_use_case(admin)
    before = await send_paced(stack, use_case["id"], 5, 0)

    async def before_delivered() -> bool:
        return await delivered(pg_url, before) == len(before)

    await wait_until_async(before_delivered, 30, "the first records delivered in the store")
    log_mark = stack.sink.log_path.stat().st_size

    def sink_log() -> str:
        """What the sink logged since the database went read-only."""
        with stack.sink.log_path.open("rb") as log:
            log.seek(log_mark)
            return log.read().decode(errors="replace")

    await set_read_only(pg_url, True)
    try:
        during = await send_paced(stack, use_case["id"], 8, 0.05)

        async def held_or_skipped() -> bool:
            log = sink_log()
            return log.count("store unavailable, batch of") >= 2 or "skipping record" in log

        await wait_until_async(
            held_or_skipped, 30, "the sink to hold (or skip) what it cannot write"
        )
        assert "skipping record" not in sink_log()
        assert not await sink_caught_up(stack)
        assert not set(await live_rows(pg_url)) & during
    finally:
        await set_read_only(pg_url, False)

    async def all_written() -> bool:
        return await delivered(pg_url, before | during) == 13 and await sink_caught_up(stack)

    await wait_until_async(all_written, 60, "every record written once the database takes writes")
    assert "skipping record" not in sink_log()
    stack.sink.check_alive()
    assert await live_rows(pg_url) == await topic_rows(stack)
