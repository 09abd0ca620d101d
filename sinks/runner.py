"""The sink process: ``sms.status`` → :meth:`Store.upsert_records`, at least once (and
``sms.inbound`` → :meth:`Store.insert_inbound` beside it: ``sinks.inbound``).

Each loop takes up to ``batch_size`` records from Kafka, writes them in one transaction and
only then commits their offsets. A crash anywhere re-delivers from the last commit, and the
version-ordered upsert makes the replay harmless, so the table always converges on what an
uninterrupted run would have written.

A value that is not an :class:`SmsStatusEvent` is logged (topic, partition, offset) and
skipped, and so is a row the database refuses for its own values (a data or constraint
error, ``store.errors.is_row_error``). Any other refusal holds the batch: when the database
is down or cannot take writes now (read-only after a failover, deadlock, serialization
failure, lock timeout, too many connections, shutdown: ``store.errors.is_unavailable``), and
also when it fails for a reason that is no row's (logged as an error), the same batch is
retried with bounded exponential backoff for as long as it takes, while the partitions are
paused (the consumer keeps polling, so it stays in its group); nothing is dropped, reordered
or committed past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from feeds import kafka_clients
from feeds.topics import ensure_topics
from schemas.records import SmsStatusEvent
from schemas.settings import Settings
from schemas.topics import Topics
from store import Store
from store.errors import StoreUnavailable, driver_message, is_row_error, sqlstate

log = logging.getLogger(__name__)

Batch = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]


def sink_group(settings: Settings) -> str:
    """The sink's consumer group (and client id): under the topic prefix, so that two
    deployments sharing a broker (different prefixes) never share their sink's offsets."""
    return f"{settings.topic_prefix}{settings.app_id}-sink"


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts while the database is down: ``initial * factor**n``, capped."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_s, self.initial_s * self.factor ** (attempt - 1)))


class _Throughput:
    """Counts rows and logs the rate every ``interval_s`` seconds at INFO."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._since = time.monotonic()
        self._messages = 0
        self._rows = 0

    def add(self, messages: int, rows: int) -> None:
        self._messages += messages
        self._rows += rows
        self.maybe_log()

    def maybe_log(self) -> None:
        elapsed = time.monotonic() - self._since
        if elapsed < self._interval_s:
            return
        if self._messages:
            log.info(
                "sink: %d events, %d rows changed in %.1fs (%.0f events/s, %.0f rows/s)",
                self._messages,
                self._rows,
                elapsed,
                self._messages / elapsed,
                self._rows / elapsed,
                extra={"events": self._messages, "rows": self._rows, "seconds": elapsed},
            )
        self._since, self._messages, self._rows = time.monotonic(), 0, 0


async def run_sink(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    batch_size: int = 1000,
    poll_timeout_ms: int = 500,
    backoff: Backoff | None = None,
    stats_interval_s: float = 10.0,
) -> None:
    """Materialize ``sms.status`` into the store at ``settings.database_url`` until ``stop``.

    ``ready`` is set once the store is open and the consumer has started. Cancelling the
    task is safe at any point: uncommitted records are simply consumed again next time.
    """
    stop = stop or asyncio.Event()
    backoff = backoff or Backoff()
    store = await _open_store(settings.database_url, stop, backoff)
    if store is None:
        return
    await _ensure_topics(settings)
    consumer = _status_consumer(settings)
    inbound = _start_inbound(settings, store, stop, backoff)
    webhook_log = _start_webhook_log(settings, store, stop, backoff)
    try:
        await consumer.start()
        log.info(
            "sink: consuming %s into %s",
            Topics.STATUS.name(settings.topic_prefix),
            store.engine.url.render_as_string(),
        )
        if ready is not None:
            ready.set()
        throughput = _Throughput(stats_interval_s)
        await _consume(consumer, store, stop, backoff, throughput, batch_size, poll_timeout_ms)
    finally:
        await consumer.stop()
        await _stop_inbound(webhook_log)
        await _stop_inbound(inbound)
        await store.close()
        log.info("sink: stopped")


def _start_inbound(
    settings: Settings, store: Store, stop: asyncio.Event, backoff: Backoff
) -> asyncio.Task[None]:
    """``sms.inbound`` into the same store, in its own consumer group (``sinks.inbound``).
    If it fails, the whole sink stops (``stop``) and :func:`run_sink` raises its error."""
    from sinks.inbound import InboundSink  # it builds on this module

    sink = InboundSink(settings, store, stop, backoff)
    task = asyncio.create_task(sink.run(), name="sink-inbound")
    task.add_done_callback(functools.partial(_inbound_ended, stop))
    return task


def _start_webhook_log(
    settings: Settings, store: Store, stop: asyncio.Event, backoff: Backoff
) -> asyncio.Task[None]:
    """``sms.webhook-deliveries`` into the same store (``sinks.webhooks``), stopping the
    whole sink if it fails, as the inbound sink does."""
    from sinks.webhooks import WebhookLogSink  # it builds on this module

    sink = WebhookLogSink(settings, store, stop, backoff)
    task = asyncio.create_task(sink.run(), name="sink-webhook-log")
    task.add_done_callback(functools.partial(_inbound_ended, stop))
    return task


def _inbound_ended(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sink: the inbound sink failed (%r); stopping the sink", task.exception())
        stop.set()


async def _stop_inbound(task: asyncio.Task[None]) -> None:
    """Stop the inbound sink with the status sink (what it has not committed comes again);
    raises what made it fail, if it did."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _ensure_topics(settings: Settings) -> None:
    """Like the ingress and the worker: a consumer that comes first would otherwise get
    sms.status auto-created by the broker, with its default layout (one partition)."""
    try:
        await ensure_topics(settings, timeout_s=settings.kafka_timeout_seconds)
    except Exception as exc:
        log.warning("sink: could not check the topics (%s); consuming anyway", exc)


def _status_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The sink's consumer of ``sms.status``, in its group (:func:`sink_group`)."""
    return group_consumer(
        settings,
        Topics.STATUS.name(settings.topic_prefix),
        sink_group(settings),
        # One transaction and one offset commit per batch: let the broker gather a batch.
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=settings.sink_batch_wait_ms,
    )


def group_consumer(settings: Settings, topic: str, group: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer of ``topic`` in ``group`` that commits by hand, from the earliest offset
    when the group has none."""
    return kafka_clients.consumer(
        settings,
        topic,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.kafka_session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(settings.kafka_session_timeout_seconds * 1000 / 3),
        **options,
    )


async def _consume(
    consumer: AIOKafkaConsumer,
    store: Store,
    stop: asyncio.Event,
    backoff: Backoff,
    throughput: _Throughput,
    batch_size: int,
    poll_timeout_ms: int,
) -> None:
    """Batch after batch until ``stop``: decode, write (held while the store refuses it),
    then commit its offsets."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=poll_timeout_ms, max_records=batch_size)
        if not batch:
            throughput.maybe_log()
            continue
        events = decode_batch(batch)
        rows = await write_batch(consumer, store, events, stop, backoff)
        if rows is None:
            return  # stopped while the database was down: nothing committed
        await _commit(consumer, batch)
        throughput.add(sum(len(records) for records in batch.values()), rows)


def decode_batch(batch: Batch) -> list[SmsStatusEvent]:
    """The events of a batch; a value that is not a valid event is logged and skipped."""
    events: list[SmsStatusEvent] = []
    for records in batch.values():
        for record in records:
            try:
                if record.value is None:
                    raise ValueError("the value is empty (a tombstone)")
                events.append(SmsStatusEvent.model_validate_json(record.value))
            except (ValidationError, ValueError) as exc:
                log.error(
                    "sink: skipping a value that is not an SmsStatusEvent at %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
    return events


async def _open_store(url: str, stop: asyncio.Event, backoff: Backoff) -> Store | None:
    attempt = 0
    while True:
        attempt += 1
        try:
            return await Store.open(url)
        except StoreUnavailable as exc:
            delay = backoff.delay(attempt)
            log.warning(
                "sink: store unavailable (attempt %d), retry in %.2fs: %s", attempt, delay, exc
            )
        if await _wait(stop, delay):
            return None


async def write_batch(
    consumer: AIOKafkaConsumer,
    store: Store,
    events: Sequence[SmsStatusEvent],
    stop: asyncio.Event,
    backoff: Backoff,
) -> int | None:
    """Upsert ``events`` (skipping only rows the database refuses for their values), holding
    the batch and retrying while the store refuses it otherwise; ``None`` if stopped meanwhile.

    ``consumer``'s partitions are paused while the batch is held (and resumed after), so a
    group member keeps its partitions. The sink and ``smslane store rebuild`` both write
    through here.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            rows = await _upsert_or_skip_bad_rows(store, events)
        except (StoreUnavailable, SQLAlchemyError) as exc:
            delay = backoff.delay(attempt)
            _log_held(exc, len(events), attempt, delay)
            if await _wait_paused(consumer, stop, delay):
                return None
            continue
        if attempt > 1:
            log.info("sink: store back after %d attempts", attempt)
            consumer.resume(*consumer.assignment())
        return rows


def _log_held(exc: Exception, events: int, attempt: int, delay: float) -> None:
    """A held batch: a warning while the store is unavailable; an error when the database
    refuses it for a reason that is neither its state nor the rows (a bug to look at)."""
    extra = {"attempt": attempt, "events": events}
    if isinstance(exc, StoreUnavailable):
        log.warning(
            "sink: store unavailable, batch of %d events held (attempt %d), retry in %.2fs: %s",
            events, attempt, delay, exc, extra=extra,
        )  # fmt: skip
        return
    log.error(
        "sink: the store refuses the batch of %d events for a reason other than its rows "
        "(SQLSTATE %s), held (attempt %d), retry in %.2fs: %s",
        events, sqlstate(exc), attempt, delay, driver_message(exc),
        extra={**extra, "sqlstate": sqlstate(exc)},
    )  # fmt: skip


async def _upsert_or_skip_bad_rows(store: Store, events: Sequence[SmsStatusEvent]) -> int:
    """Upsert the batch; if the database refuses it for its data (see ``is_row_error``),
    upsert row by row and skip, with a log line, only the rows it refuses, so one bad row
    never stops materialization. Any other refusal is raised: the batch is held."""
    try:
        return await store.upsert_records(events)
    except SQLAlchemyError as exc:
        if not is_row_error(exc):
            raise
        log.error(
            "sink: batch of %d refused (%s); writing row by row", len(events), driver_message(exc)
        )
    rows = 0
    for event in events:
        try:
            rows += await store.upsert_records([event])
        except SQLAlchemyError as exc:
            if not is_row_error(exc):
                raise
            log.error(
                "sink: skipping record %s version %d the store refuses: %s",
                event.id, event.version, type(exc).__name__,
                extra={"record_id": str(event.id), "message_sid": event.message_sid},
            )  # fmt: skip
    return rows


async def _wait_paused(consumer: AIOKafkaConsumer, stop: asyncio.Event, delay_s: float) -> bool:
    """Wait ``delay_s`` polling paused partitions (so the group keeps us); True if stopped.

    A partition assigned during the wait arrives unpaused and may yield records: those are
    handed back (seek to the first) so they come again, in order, after the held batch.
    """
    deadline = time.monotonic() + delay_s
    while not stop.is_set():
        consumer.pause(*consumer.assignment())
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        stray = await consumer.getmany(timeout_ms=max(1, int(min(remaining, 0.5) * 1000)))
        for tp, records in stray.items():
            consumer.seek(tp, records[0].offset)
    return True


async def _commit(consumer: AIOKafkaConsumer, batch: Batch) -> None:
    """Commit past ``batch`` for the partitions this consumer still owns."""
    owned = consumer.assignment()
    offsets = {
        tp: OffsetAndMetadata(records[-1].offset + 1, "")
        for tp, records in batch.items()
        if records and tp in owned
    }
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        # A rebalance took the partitions: the new owner re-applies them (idempotently).
        log.warning("sink: commit failed, records will be re-delivered: %s", exc)


async def _wait(stop: asyncio.Event, delay_s: float) -> bool:
    """Sleep ``delay_s`` or until ``stop``; True if stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    return stop.is_set()


def main(settings: Settings) -> None:
    """Run the sink until SIGINT or SIGTERM (``smslane sink``)."""

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_sink(settings, stop=stop)

    asyncio.run(_run())
