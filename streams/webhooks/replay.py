"""Replays: deliver again what the event topics still hold since a time.

``sms.status`` is compacted, so it holds at least the latest version of every record;
``sms.inbound`` what its retention keeps. A replay reads both from their start to the end
offsets they had when it began (its own consumer, no group), keeps the latest version of
each record that changed at or after ``since`` and every inbound message received since,
and enqueues those the endpoint takes into their lanes, their 72 hours counted from the
replay. Their event ids are the ones of the first delivery, so receivers drop what they had.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from feeds import kafka_clients
from feeds.config import ConfigView
from schemas.config import WebhookEventType
from schemas.settings import Settings
from schemas.topics import Topics
from schemas.webhooks import LaneEnqueue, ReplayOrder
from streams.webhooks.routing import Event, lane_orders, read_event

log = logging.getLogger(__name__)

Publish = Callable[[bytes, LaneEnqueue], Awaitable[None]]


class Replayer:
    """Carries out :class:`~schemas.webhooks.ReplayOrder` values."""

    def __init__(self, settings: Settings, config: ConfigView, publish: Publish) -> None:
        self._settings = settings
        self._topics = {
            Topics.STATUS.name(settings.topic_prefix): WebhookEventType.STATUS,
            Topics.INBOUND.name(settings.topic_prefix): WebhookEventType.INBOUND,
        }
        #: Both topics have SMSLANE_TOPIC_PARTITIONS (``feeds.topics`` creates them so).
        self._partitions = settings.topic_partitions
        self._config, self._publish = config, publish

    async def replay(self, order: ReplayOrder) -> int:
        """Enqueue the events of ``order``; how many lanes got one."""
        endpoint = self._config.webhook_endpoints.get(order.endpoint_id)
        if endpoint is None:
            log.info("replay for deleted webhook endpoint %s skipped", order.endpoint_id)
            return 0
        latest = await self._read_since(order)
        count = 0
        for event in latest.values():
            for key, enqueue in lane_orders([endpoint], event, replayed_at=order.requested_at):
                await self._publish(key, enqueue)
                count += 1
        log.info(
            "replay for webhook endpoint %s since %s: %d event(s)", endpoint.id,
            order.since.isoformat(), count, extra={"endpoint_id": str(endpoint.id)},
        )  # fmt: skip
        return count

    async def _read_since(self, order: ReplayOrder) -> dict[uuid.UUID, Event]:
        """The latest event of each subject that happened at or after ``order.since``."""
        consumer = kafka_clients.consumer(self._settings, enable_auto_commit=False)
        await consumer.start()
        latest: dict[uuid.UUID, Event] = {}
        try:
            ends = await self._assign(consumer)
            while ends:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    for record in records:
                        if record.offset < ends.get(tp, 0):
                            self._keep(latest, self._topics[tp.topic], record.value, order)
                for tp in [tp for tp, end in ends.items() if await consumer.position(tp) >= end]:
                    del ends[tp]
        finally:
            await consumer.stop()
        return latest

    async def _assign(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._topics
            for partition in range(self._partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return {tp: end for tp, end in ends.items() if end > 0}

    @staticmethod
    def _keep(
        latest: dict[uuid.UUID, Event], event_type: WebhookEventType, value: Any, order: ReplayOrder
    ) -> None:
        if value is None:
            return
        event = read_event(event_type, value)
        if event is None or event.created_at < order.since:
            return
        known = latest.get(event.subject_id)
        if known is None or known.version < event.version:
            latest[event.subject_id] = event
