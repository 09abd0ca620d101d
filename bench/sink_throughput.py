"""Sink throughput: events/s and rows/s through ``run_sink`` from a real topic into a store.

Pre-produces ``--events`` SmsStatusEvents (records with three versions each: created, sent,
delivered; versions of different records interleaved) to a fresh topic, then runs the sink
until it has committed everything and prints the rates.

    python bench/sink_throughput.py --database-url sqlite+aiosqlite:///./var/bench.db
    python bench/sink_throughput.py --database-url postgresql+asyncpg://postgres@127.0.0.1:55432/smslane_test

For PostgreSQL a fresh database is created on that server and dropped afterwards; for SQLite
the file is deleted first. Uses the Kafka broker at ``--bootstrap``, or starts one of its own
on a free port (as ``python -m bench`` does) when that is not given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kafka import kafka_settings
from feeds import kafka_clients
from schemas.records import SmsStatus, SmsStatusEvent
from schemas.settings import Settings
from schemas.topics import Topics
from sinks.runner import run_sink
from store import Store


def make_events(count: int) -> list[SmsStatusEvent]:
    base = datetime(2025, 3, 1, tzinfo=UTC)
    layers: list[list[SmsStatusEvent]] = [[], [], []]
    for n in range((count + 2) // 3):
        created = SmsStatusEvent(
            id=uuid4(),
            use_case_id=uuid4(),
            message_sid=f"SM{uuid4().hex}",
            to_number=f"+1555{n % 10_000_000:07d}",
            body=f"Your code is {n:06d}",
            created_at=base + timedelta(milliseconds=n),
            updated_at=base + timedelta(milliseconds=n),
            version=1,
        )
        sent = created.model_copy(
            update={"version": 2, "status": SmsStatus.SENT, "from_number": "+15550001111"}
        )
        delivered = sent.model_copy(update={"version": 3, "status": SmsStatus.DELIVERED})
        for layer, event in zip(layers, (created, sent, delivered), strict=True):
            layer.append(event)
    return [event for layer in layers for event in layer][:count]


def _delete_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        await asyncio.to_thread(_delete_sqlite, Path(parsed.database or ""))
        yield url
        return
    name = f"bench_{uuid4().hex}"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def produce(bootstrap: str, topic: str, events: list[SmsStatusEvent]) -> None:
    producer = kafka_clients.producer(kafka_settings(bootstrap), linger_ms=20, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, e.model_dump_json().encode(), key=str(e.id).encode())
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(meta.offset, 0) for meta in offsets.values())


async def bench(args: argparse.Namespace) -> dict[str, object]:
    """Run it; the figures (also what ``python -m bench`` records under ``sink``)."""
    prefix = f"bench{uuid4().hex[:8]}."
    topic = Topics.STATUS.name(prefix)
    admin = kafka_clients.admin(kafka_settings(args.bootstrap))
    await admin.start()
    await admin.create_topics([NewTopic(topic, args.partitions, 1)])
    try:
        events = make_events(args.events)
        await produce(args.bootstrap, topic, events)
        async with fresh_database(args.database_url) as url:
            await (await Store.open(url)).close()  # schema first: not part of the figure
            settings = Settings(
                kafka_bootstrap_servers=args.bootstrap,
                database_url=url,
                topic_prefix=prefix,
            )
            stop, ready = asyncio.Event(), asyncio.Event()
            task = asyncio.create_task(
                run_sink(settings, stop=stop, ready=ready, batch_size=args.batch_size)
            )
            await ready.wait()
            started = time.perf_counter()
            first_at: float | None = None
            first_done = 0
            while (done := await committed_total(admin, f"{prefix}smslane-sink")) < len(events):
                if done and first_at is None:
                    first_at, first_done = time.perf_counter(), done
                await asyncio.sleep(0.02)
            finished = time.perf_counter()
            stop.set()
            await task
            async with await Store.open(url) as store:
                rows, _ = await store.list_records(limit=1)
            assert rows, "nothing was written"
    finally:
        await admin.delete_topics([topic])
        await admin.close()

    total_s = finished - started
    steady = None
    if first_at is not None and finished > first_at:
        steady = round((len(events) - first_done) / (finished - first_at))
    return {
        "backend": make_url(args.database_url).get_backend_name(),
        "events": len(events),
        "records": (len(events) + 2) // 3,
        "batch_size": args.batch_size,
        "partitions": args.partitions,
        "seconds": round(total_s, 2),
        "events_per_s": round(len(events) / total_s),
        "steady_events_per_s": steady,
    }


def show(result: dict[str, object]) -> None:
    r = result
    print(f"{r['backend']}: {r['events']} events ({r['records']} records x 3 versions), "
          f"batch {r['batch_size']}, {r['partitions']} partitions")  # fmt: skip
    print(f"  ready -> all committed: {result['seconds']}s = {result['events_per_s']:,} events/s")
    if result["steady_events_per_s"] is not None:
        print(f"  first commit -> all committed: {result['steady_events_per_s']:,} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="sqlite+aiosqlite:///./var/bench-sink.db")
    parser.add_argument("--bootstrap", help="a running broker (default: start one)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    import tempfile

    from bench.stack import Broker

    with tempfile.TemporaryDirectory(prefix="smslane-sink-bench-") as root:
        broker = Broker(args.bootstrap, Path(root)).start()
        args.bootstrap = broker.bootstrap
        try:
            show(asyncio.run(bench(args)))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
