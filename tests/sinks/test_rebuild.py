"""``smslane store rebuild``: a real topic into fresh SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from sinks.rebuild import RebuildProgress, RebuildRefused, rebuild_store, trim_batch
from store import Store
from tests.sinks.conftest import SinkHarness
from tests.sinks.factories import expected_rows, interleave, make_event, make_histories
from tests.sinks.helpers import dump_rows, end_offsets, fresh_pg_database, postgres_url, produce
from tests.sinks.test_runner import wait_all_committed


def record(offset: int, partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


def test_a_batch_is_trimmed_to_the_end_offsets_taken_at_the_start() -> None:
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    batch = {p0: [record(8), record(9), record(10)], p1: [record(3, 1)]}

    trimmed = trim_batch(batch, {p0: 10, p1: 3})

    assert {tp: [r.offset for r in records] for tp, records in trimmed.items()} == {
        p0: [8, 9],
        p1: [],
    }


@pytest.mark.integration
async def test_a_rebuild_from_offset_0_equals_the_live_store(
    sink: SinkHarness, store: Store, database_url: str, tmp_path: Path
) -> None:
    events = interleave(make_histories(150))
    poison = (b"poison", b"{not json")
    await produce(sink.bootstrap, sink.topic, [*events[:200], poison, *events[200:]])
    task, stop = await sink.start(database_url)
    await wait_all_committed(sink)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    live = await dump_rows(store)
    assert live == expected_rows(events)

    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    async with fresh_pg_database(postgres_url()) as pg_url:
        for url in (sqlite_url, pg_url):
            seen: list[RebuildProgress] = []
            summary = await rebuild_store(
                sink.settings(url), url, batch_size=100, on_progress=seen.append
            )
            assert summary.complete and summary.partitions == sink.partitions
            assert (summary.events, summary.skipped, summary.records) == (450, 1, 150)
            assert summary.total == sum((await end_offsets(sink.bootstrap, sink.topic, 3)).values())
            assert seen[-1].read == seen[-1].total == summary.total
            async with await Store.open(url) as rebuilt:
                assert await dump_rows(rebuilt) == live  # all but the sink's write time


@pytest.mark.integration
async def test_a_rebuild_stops_at_the_end_it_found_and_does_not_chase_new_events(
    sink: SinkHarness, tmp_path: Path
) -> None:
    await produce(sink.bootstrap, sink.topic, [make_event() for _ in range(300)])
    url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    keep_producing = asyncio.Event()

    async def more() -> None:
        while not keep_producing.is_set():
            await produce(sink.bootstrap, sink.topic, [make_event() for _ in range(5)])

    producer = asyncio.create_task(more())
    try:
        summary = await asyncio.wait_for(
            rebuild_store(sink.settings(url), url, batch_size=20), timeout=60
        )
    finally:
        keep_producing.set()
        await producer
    ends = await end_offsets(sink.bootstrap, sink.topic, sink.partitions)
    assert summary.complete and summary.events == summary.records == summary.total >= 300
    assert summary.total < sum(ends.values()), "nothing was produced during the rebuild"


@pytest.mark.integration
async def test_a_stopped_rebuild_says_it_is_incomplete(sink: SinkHarness, tmp_path: Path) -> None:
    await produce(sink.bootstrap, sink.topic, [make_event() for _ in range(200)])
    url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    stop = asyncio.Event()

    def stop_after_some(progress: RebuildProgress) -> None:
        if progress.rows:
            stop.set()

    summary = await rebuild_store(
        sink.settings(url), url, batch_size=20, stop=stop, on_progress=stop_after_some
    )
    assert not summary.complete and 0 < summary.records < 200


@pytest.mark.integration
async def test_a_missing_topic_is_refused(kafka: str, tmp_path: Path) -> None:
    harness = SinkHarness(kafka, prefix=f"t{uuid4().hex[:12]}.")
    url = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    with pytest.raises(RebuildRefused, match="does not exist"):
        await rebuild_store(harness.settings(url), url)


@contextlib.asynccontextmanager
async def cli_env(sink: SinkHarness) -> AsyncIterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSLANE_")}
    env.update(SMSLANE_KAFKA_BOOTSTRAP_SERVERS=sink.bootstrap, SMSLANE_TOPIC_PREFIX=sink.prefix)
    yield env


async def smslane(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smslane.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.integration
async def test_the_command_refuses_a_store_with_records_unless_forced(
    sink: SinkHarness, tmp_path: Path
) -> None:
    events = interleave(make_histories(20))
    await produce(sink.bootstrap, sink.topic, events)
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with await Store.open(url) as store:
        await store.upsert_records([events[0]])

    async with cli_env(sink) as env:
        code, out, err = await smslane(env, "store", "rebuild", "--database-url", url)
        assert code == 1 and out == ""
        assert err.splitlines()[-1] == (
            f"smslane store rebuild: the store at {url} already holds 1 record(s): rebuild "
            "fills an empty database (--force applies the topic over them, newer versions win)"
        )

        code, out, err = await smslane(env, "store", "rebuild", "--database-url", url, "--force")
    assert code == 0, err
    assert out.startswith(f"rebuilt {url} from {sink.topic}: 20 records (60 events read")
    assert "offsets read (100%)" in err  # the progress lines, on a pipe
    async with await Store.open(url) as store:
        assert await dump_rows(store) == expected_rows(events)


def test_the_help_explains_the_rebuild_and_the_move_to_postgresql() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smslane.cli", "store", "rebuild", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    for words in ("--database-url", "--force", "offset 0", "empty", "SQLite to PostgreSQL"):
        assert words in done.stdout
