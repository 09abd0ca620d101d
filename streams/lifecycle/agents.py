"""The lifecycle agent: created records and raw callbacks into per-message state.

``sms.created``, ``sms.callbacks`` and ``sms.lifecycle-control`` are all keyed by
``message_sid`` and share their partition count, so one agent reads them as one stream and
the tables ``record_by_sid`` and ``held_by_sid`` stay co-partitioned with it. Every change of
a record goes to ``sms.status`` keyed by the record's id with the next ``version``.

This module is the Faust wiring only: :class:`LifecycleAgent` declares the tables, takes events
in batches, hands each to the :class:`~streams.lifecycle.processor.LifecycleProcessor` in order
and runs its two timers, which work from snapshots of the tables and send their orders through
the control topic. Table writes of a batch are held in a
:class:`~streams.lifecycle.batch.WriteBehind` and written once per key at its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import ProducerT

from schemas.events import LifecycleControl
from schemas.records import SmsStatusEvent
from schemas.topics import Topics
from streams.batches import finished_batches
from streams.lifecycle.batch import WriteBehind
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.processor import LifecycleProcessor, Source
from streams.lifecycle.tables import HeldTable, RecordTable
from streams.tables import StoreReads, bind_event
from streams.worker import Worker

#: Events taken at once: a batch's table writes are one per key, its publishes one burst.
#: At most Faust's producer buffer (100), which stalls the stream when a burst overfills it.
BATCH_SIZE = 100
BATCH_WITHIN_S = 0.05
STATUS = Topics.STATUS.codec
CONTROL = Topics.LIFECYCLE_CONTROL.codec


class TopicPublisher:
    """The processor's :class:`~streams.lifecycle.processor.Publisher`, onto Kafka.

    Versions go straight to the app's producer, not through ``Topic.send`` (its
    per-message futures, callbacks and sensors cost as much as the rest of an event): the
    producer is the same, so the flush before every offset commit still covers them.
    """

    def __init__(self, producer: ProducerT, status_topic: str, control_topic: faust.TopicT) -> None:
        self._producer = producer
        self._status = status_topic
        self._control = control_topic

    async def status(self, event: SmsStatusEvent) -> None:
        await self._producer.send(
            self._status, str(event.id).encode(), STATUS.encode(event), None, None, None
        )

    async def order(self, sid: bytes, order: LifecycleControl) -> None:
        await self._control.send(key=sid, value=CONTROL.encode(order))


class LifecycleAgent:
    """``track_lifecycle``, its tables and its housekeeping timers."""

    def __init__(self, worker: Worker) -> None:
        app, settings = worker.app, worker.settings
        specs: tuple[tuple[str, Source], ...] = (
            (Topics.CREATED.base_name, "created"),
            (Topics.CALLBACKS.base_name, "callback"),
            (Topics.LIFECYCLE_CONTROL.base_name, "control"),
        )
        #: Source of each topic the agent reads, by full topic name.
        self.sources: dict[str, Source] = {
            worker.topic(base).get_topic_name(): source for base, source in specs
        }
        self.stream_topic = app.topic(
            *self.sources, key_type=bytes, value_type=bytes, key_serializer="raw",
            value_serializer="raw",
        )  # fmt: skip
        self.app = app
        partitions = settings.topic_partitions
        self.batched: tuple[WriteBehind[faust.EventT[Any]], ...] = tuple(
            WriteBehind(
                StoreReads(
                    app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions)
                ),
                bind_event,
            )
            for name in ("record_by_sid", "held_by_sid")
        )
        self.records = RecordTable(self.batched[0])
        self.held = HeldTable(self.batched[1])
        self.rules = Housekeeping.from_settings(settings)
        publisher = TopicPublisher(
            app.producer,
            worker.topic(Topics.STATUS.base_name).get_topic_name(),
            worker.topic(Topics.LIFECYCLE_CONTROL.base_name),
        )
        self.processor = LifecycleProcessor(self.records, self.held, self.rules, publisher)

    async def run(self, stream: Any) -> None:  # a faust.Stream: StreamT lacks _enable_passive
        """Batches of events, each handled in order with itself bound as the current event
        (a ``rocksdb://`` table reads from its partition), then the batch's table writes,
        one per key. A batch is acked once its writes are handed over, never before: a stop
        while it waits on the producer redelivers it whole."""
        async for events in finished_batches(stream, BATCH_SIZE, BATCH_WITHIN_S):
            await self.process_batch(events)

    async def process_batch(self, events: Sequence[faust.EventT[Any]]) -> None:
        generation = self.app.consumer_generation_id
        for event in events:
            sid, value, message = event.key, event.value, event.message
            if not sid or value is None or message.generation_id != generation:
                # Taken before a rebalance: its partition may be another worker's now.
                continue
            for table in self.batched:
                table.own(event)
            await self.processor.process(self.sources[message.topic], sid, value, message)
        for table in self.batched:
            table.flush()

    async def expire_held_callbacks(self) -> None:
        await self.processor.order_expiry(datetime.now(UTC))

    async def evict_old_records(self) -> None:
        await self.processor.order_evictions(datetime.now(UTC))


def register(worker: Worker) -> LifecycleAgent:
    """Declare the lifecycle agent, its tables and its timers on the worker's app."""
    agent = LifecycleAgent(worker)
    app = worker.app
    app.agent(agent.stream_topic, name="track_lifecycle")(agent.run)
    app.timer(interval=agent.rules.expire_every_s)(agent.expire_held_callbacks)
    app.timer(interval=agent.rules.evict_every_s)(agent.evict_old_records)
    return agent
