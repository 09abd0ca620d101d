"""The sink end to end: a real Kafka topic into a real database, with crashes and outages."""

from __future__ import annotations

import asyncio
import logging
from uuid import uuid4

import pytest

from smslane.processes import wait_until_async
from store import Store
from tests.harness import topic_partitions
from tests.sinks.conftest import Outage, SinkHarness
from tests.sinks.factories import expected_rows, interleave, make_histories, next_version
from tests.sinks.helpers import (
    committed_offsets,
    dump_rows,
    end_offsets,
    produce,
    set_read_only,
)

pytestmark = pytest.mark.integration

RETRY_MESSAGE = "store unavailable"
#: How often the tests look at what the sink did.
POLL_S = 0.02


async def wait_all_committed(sink: SinkHarness, timeout_s: float = 60.0) -> None:
    ends = await end_offsets(sink.bootstrap, sink.topic, sink.partitions)

    async def committed() -> bool:
        offsets = await committed_offsets(sink.bootstrap, sink.group_id)
        return all(offsets.get(p, 0) >= end for p, end in ends.items())

    await wait_until_async(committed, timeout_s, f"the sink to commit up to {ends}", POLL_S)


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == "sinks.runner" and RETRY_MESSAGE in record.getMessage()
    )


async def test_the_sink_materializes_the_topic(
    sink: SinkHarness, store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sinks")
    events = interleave(make_histories(150))
    await produce(sink.bootstrap, sink.topic, events[:200])
    await produce(sink.bootstrap, sink.topic, [(b"poison", b"{not json"), (b"gone", None)])
    await produce(sink.bootstrap, sink.topic, events[200:])

    task, stop = await sink.start(database_url, batch_size=100)
    await wait_all_committed(sink)

    assert await dump_rows(store) == expected_rows(events)
    skipped = [r for r in caplog.records if "skipping a value" in r.getMessage()]
    assert len(skipped) == 2
    assert all(r.topic == sink.topic and r.offset >= 0 for r in skipped)  # type: ignore[attr-defined]

    stop.set()
    await asyncio.wait_for(task, timeout=10)  # a clean stop


async def test_a_sink_started_first_creates_the_topics_with_their_layout(
    kafka: str, database_url: str
) -> None:
    # Started before the ingress and the worker, the sink must not leave sms.status to the
    # broker's auto-creation (one partition, whatever the settings say).
    harness = SinkHarness(kafka, prefix=f"t{uuid4().hex[:12]}.")
    settings = harness.settings(database_url)
    task, stop = await harness.start(database_url)
    try:
        partitions = await topic_partitions(kafka, harness.topic)
        assert partitions == settings.topic_partitions > 1
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_a_sink_killed_mid_stream_ends_where_an_uninterrupted_one_would(
    sink: SinkHarness, store: Store, database_url: str
) -> None:
    events = interleave(make_histories(2000))
    await produce(sink.bootstrap, sink.topic, events)
    total = len(expected_rows(events))
    kills_mid_stream = 0

    async def row_count() -> int:
        return len(await dump_rows(store))

    for _ in range(3):
        before = await row_count()
        task, _ = await sink.start(database_url, batch_size=50)

        async def progressed(before: int = before, task: asyncio.Task[None] = task) -> bool:
            return await row_count() > before or task.done()

        await wait_until_async(progressed, 30.0, "the sink to write something", POLL_S)
        await sink.kill(task)  # cancelled wherever it is: reading, writing or committing
        if await row_count() < total:
            kills_mid_stream += 1

    task, stop = await sink.start(database_url, batch_size=50)
    await wait_all_committed(sink)
    stop.set()
    await asyncio.wait_for(task, timeout=10)

    assert kills_mid_stream >= 1, "the sink finished before it could be killed"
    assert await dump_rows(store) == expected_rows(events)


async def test_while_the_database_is_down_the_batch_is_held_and_not_committed(
    sink: SinkHarness, store: Store, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sinks")
    histories = make_histories(50)
    first = [history[0] for history in histories]
    newcomers = [history[0] for history in make_histories(25)]
    then = [history[1] for history in histories[:25]] + newcomers
    await produce(sink.bootstrap, sink.topic, first)
    task, stop = await sink.start(outage.url)
    await wait_all_committed(sink)
    committed_before = await committed_offsets(sink.bootstrap, sink.group_id)

    await outage.begin()
    await produce(sink.bootstrap, sink.topic, then)

    async def retried_twice() -> bool:
        return retries(caplog) >= 2

    await wait_until_async(retried_twice, 30.0, "the sink to retry the held batch", POLL_S)
    assert await committed_offsets(sink.bootstrap, sink.group_id) == committed_before
    assert await dump_rows(store) == expected_rows(first)
    assert not task.done()

    await outage.end()
    await wait_all_committed(sink)
    assert await dump_rows(store) == expected_rows(first + then)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_read_only_database_holds_the_batch_until_it_takes_writes_again(
    sink: SinkHarness, store: Store, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A failover or default_transaction_read_only: the server answers, but refuses every
    # write with SQLSTATE 25006. That is about the server, not the rows: skip none of them.
    caplog.set_level(logging.INFO, logger="sinks")
    histories = make_histories(30)
    first = [history[0] for history in histories]
    then = [history[1] for history in histories] + [h[0] for h in make_histories(10)]
    await produce(sink.bootstrap, sink.topic, first)
    task, stop = await sink.start(database_url)
    await wait_all_committed(sink)
    committed_before = await committed_offsets(sink.bootstrap, sink.group_id)

    await set_read_only(database_url, True)
    await produce(sink.bootstrap, sink.topic, then)

    async def held_or_committed() -> bool:
        offsets = await committed_offsets(sink.bootstrap, sink.group_id)
        return retries(caplog) >= 2 or offsets != committed_before

    await wait_until_async(
        held_or_committed, 30.0, "the sink to retry the batch or commit past it", POLL_S
    )
    assert await committed_offsets(sink.bootstrap, sink.group_id) == committed_before
    assert await dump_rows(store) == expected_rows(first)

    await set_read_only(database_url, False)
    await wait_all_committed(sink)
    assert await dump_rows(store) == expected_rows(first + then)
    assert not [r for r in caplog.records if "skipping record" in r.getMessage()]
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_a_sink_killed_while_holding_a_batch_loses_nothing(
    sink: SinkHarness, store: Store, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    histories = make_histories(40)
    first = [history[0] for history in histories]
    then = [next_version(event) for event in first] + [h[1] for h in make_histories(10)]
    await produce(sink.bootstrap, sink.topic, first)
    task, _ = await sink.start(outage.url)
    await wait_all_committed(sink)

    await outage.begin()
    await produce(sink.bootstrap, sink.topic, then)

    async def retried() -> bool:
        return retries(caplog) >= 1

    await wait_until_async(retried, 30.0, "the sink to hold a batch", POLL_S)
    await sink.kill(task)  # killed in the middle of a batch it could not write
    await outage.end()

    task, stop = await sink.start(outage.url)
    await wait_all_committed(sink)
    assert await dump_rows(store) == expected_rows(first + then)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_a_sink_started_while_the_database_is_down_waits_for_it(
    sink: SinkHarness, store: Store, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    events = interleave(make_histories(30))
    await produce(sink.bootstrap, sink.topic, events)
    await outage.begin()

    task, stop = await sink.start(outage.url, wait_ready=False)

    async def retried_twice() -> bool:
        return retries(caplog) >= 2

    await wait_until_async(retried_twice, 30.0, "the sink to retry", POLL_S)
    assert await committed_offsets(sink.bootstrap, sink.group_id) == {}
    assert await dump_rows(store) == {}

    await outage.end()
    await wait_all_committed(sink)
    assert await dump_rows(store) == expected_rows(events)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_a_row_the_database_refuses_is_skipped_and_the_rest_written(
    sink: SinkHarness, store: Store, database_url: str, backend: str
) -> None:
    events = interleave(make_histories(20))
    refused = next_version(events[-1], from_number="+1" + "9" * 40)  # longer than the column
    await produce(sink.bootstrap, sink.topic, [*events, refused])
    task, stop = await sink.start(database_url, batch_size=1000)
    await wait_all_committed(sink)
    rows = await dump_rows(store)
    assert len(rows) == 20
    if backend == "postgresql":  # SQLite does not enforce the column's length
        assert rows == expected_rows(events)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
