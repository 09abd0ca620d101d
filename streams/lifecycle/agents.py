"""The lifecycle agent: created records and raw callbacks into per-message state.

``sms.created``, ``sms.callbacks`` and ``sms.lifecycle-control`` are all keyed by
``message_sid`` and share their partition count, so one agent reads them as one stream and
the tables ``record_by_sid`` and ``held_by_sid`` stay co-partitioned with it. Every change of
a record goes to ``sms.status`` keyed by the record's id with the next ``version``.

This module is the Faust wiring only: :class:`LifecycleAgent` declares the tables, hands each
event to the :class:`~streams.lifecycle.processor.LifecycleProcessor` and runs its two timers,
which work from snapshots of the tables and send their orders through the control topic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust

from schemas.events import LifecycleControl
from schemas.records import SmsStatusEvent
from schemas.topics import Topics
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.processor import LifecycleProcessor, Source
from streams.lifecycle.tables import HeldTable, RecordTable
from streams.worker import Worker

STATUS = Topics.STATUS.codec
CONTROL = Topics.LIFECYCLE_CONTROL.codec


class TopicPublisher:
    """The processor's :class:`~streams.lifecycle.processor.Publisher`, onto Kafka."""

    def __init__(self, status_topic: faust.TopicT, control_topic: faust.TopicT) -> None:
        self._status = status_topic
        self._control = control_topic

    async def status(self, event: SmsStatusEvent) -> None:
        await self._status.send(key=str(event.id).encode(), value=STATUS.encode(event), force=True)

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
        partitions = settings.topic_partitions
        self.records = RecordTable(
            app.Table("record_by_sid", key_type=bytes, value_type=bytes, partitions=partitions)
        )
        self.held = HeldTable(
            app.Table("held_by_sid", key_type=bytes, value_type=bytes, partitions=partitions)
        )
        self.rules = Housekeeping.from_settings(settings)
        publisher = TopicPublisher(
            worker.topic(Topics.STATUS.base_name), worker.topic(Topics.LIFECYCLE_CONTROL.base_name)
        )
        self.processor = LifecycleProcessor(self.records, self.held, self.rules, publisher)

    async def run(self, stream: faust.StreamT[Any]) -> None:
        """One event at a time: Faust's current event is then the one whose key the
        processor reads and writes, whose partition a ``rocksdb://`` table reads from and
        every changelog write goes to."""
        async for event in stream.events():
            sid, value, message = event.key, event.value, event.message
            if not sid or value is None:
                continue
            await self.processor.process(self.sources[message.topic], sid, value, message)

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
