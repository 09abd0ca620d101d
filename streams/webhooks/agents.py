"""The webhook agents: events into lanes, lanes into attempts, replays.

``route_webhook_events`` reads ``sms.status`` and ``sms.inbound`` and, for each endpoint that
takes an event, publishes a :class:`~schemas.webhooks.LaneEnqueue` to ``sms.webhook-lanes``
keyed by the lane (endpoint x record). ``deliver_webhooks`` reads that topic, so the
``webhook_lanes`` table it keeps is co-partitioned with it (STYLE.md #5); attempt outcomes come
back through the same topic. A timer hands due lanes to the
:class:`~streams.webhooks.dispatch.Dispatcher`. ``replay_webhook_events`` reads the event
topics from their start for a replay order (:mod:`streams.webhooks.replay`).

Nothing is routed or attempted before the configuration has been read to its end: an
endpoint not read yet would look deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from feeds.secret_box import SecretBox
from schemas.config import ConfigChange, WebhookEndpoint, WebhookEventType, config_key
from schemas.topics import Codec, Topics
from schemas.webhooks import DeliveryLogEntry, LaneEnqueue, LaneOutcome
from streams.webhooks import metrics
from streams.webhooks.dispatch import Dispatcher
from streams.webhooks.http import WebhookClient
from streams.webhooks.index import LaneIndex
from streams.webhooks.lanes import Lane, RetryPolicy, enqueue, record_outcome
from streams.webhooks.replay import Replayer
from streams.webhooks.routing import lane_orders, read_event
from streams.worker import Worker

log = logging.getLogger(__name__)

LANE_MESSAGES = Topics.WEBHOOK_LANES.codec
DELIVERIES = Topics.WEBHOOK_DELIVERIES.codec
REPLAYS = Topics.WEBHOOK_REPLAYS.codec
LANES: Codec[Lane] = Codec(Lane)


class WebhookAgents:
    """The webhook agents of one worker, their table and their dispatcher."""

    def __init__(self, worker: Worker) -> None:
        app, settings = worker.app, worker.settings
        self.app, self.config = app, worker.config
        status, inbound = (worker.topic(t.base_name) for t in (Topics.STATUS, Topics.INBOUND))
        self.types = {
            status.get_topic_name(): WebhookEventType.STATUS,
            inbound.get_topic_name(): WebhookEventType.INBOUND,
        }
        self.events_topic = app.topic(
            *self.types, key_type=bytes, value_type=bytes, key_serializer="raw",
            value_serializer="raw",
        )  # fmt: skip
        self.lanes_topic = worker.topic(Topics.WEBHOOK_LANES.base_name)
        self.deliveries_topic = worker.topic(Topics.WEBHOOK_DELIVERIES.base_name)
        self.replays_topic = worker.topic(Topics.WEBHOOK_REPLAYS.base_name)
        self.index = LaneIndex()
        self.table = app.Table(
            "webhook_lanes", key_type=bytes, value_type=bytes,
            partitions=settings.topic_partitions,
        )  # fmt: skip
        self.policy = RetryPolicy.from_settings(settings)
        allow_private = settings.webhook_allow_private_urls == "on"
        self.client = WebhookClient(
            timeout_s=settings.webhook_timeout_seconds, allow_private=allow_private
        )
        self.config_topic = worker.topic(Topics.CONFIG.base_name)
        self.dispatcher = Dispatcher(
            worker.config, SecretBox(settings.secret_keys), self.client, self.publish_lane,
            self.disable_endpoint, self.load_lane,
            max_per_endpoint=settings.webhook_max_in_flight_per_endpoint,
            timeout_s=settings.webhook_timeout_seconds,
            disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
        )  # fmt: skip
        self.replayer = Replayer(settings, worker.config, self.publish_lane)
        self.dispatch_every_s = settings.webhook_dispatch_interval_seconds
        self.disable_after_s = settings.webhook_disable_after_seconds

    async def publish_lane(self, key: bytes, message: LaneEnqueue | LaneOutcome) -> None:
        await self.lanes_topic.send(key=key, value=LANE_MESSAGES.encode(message))

    async def disable_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Disable an endpoint that has only failed for the configured time (72 h)."""
        current = self.config.webhook_endpoints.get(endpoint.id)
        if current is None or not current.enabled:
            return
        disabled = current.model_copy(update={"enabled": False, "updated_at": datetime.now(UTC)})
        await self.config_topic.send(
            key=config_key(disabled).encode(),
            value=Topics.CONFIG.codec.encode(ConfigChange(entity=disabled)),
            partition=0,
        )
        metrics.DISABLED.inc()
        log.warning(
            "webhook endpoint %s disabled: every attempt has failed for %.0f hours; PATCH it "
            "with enabled=true once it answers", endpoint.id,
            self.disable_after_s / 3600, extra={"endpoint_id": str(endpoint.id)},
        )  # fmt: skip

    async def route_events(self, stream: Any) -> None:
        """Each event of ``sms.status`` and ``sms.inbound`` into the lanes of the endpoints
        that take it."""
        async for event in stream.events():
            await self.config.caught_up.wait()
            value = event.value
            if value is None:
                continue
            routed = read_event(self.types[event.message.topic], value)
            if routed is None:
                log.warning("skipping a malformed event at offset %d", event.message.offset)
                continue
            for key, order in lane_orders(self.config.webhook_endpoints.values(), routed):
                await self.publish_lane(key, order)

    async def deliver(self, stream: Any) -> None:
        """Apply each lane message to its lane; publish the delivery-log entries."""
        async for event in stream.events():
            key, value = event.key, event.value
            if not key or value is None:
                continue
            if event.message.generation_id != self.app.consumer_generation_id:
                continue  # taken before a rebalance: its partition may be another's now
            await self.apply(key, LANE_MESSAGES.decode(value))

    async def apply(self, key: bytes, message: LaneEnqueue | LaneOutcome) -> None:
        stored = self.table.get(key)
        lane = None if stored is None else LANES.decode(stored)
        if isinstance(message, LaneEnqueue):
            new, entries = enqueue(lane, message, datetime.now(UTC))
        else:
            new, entries = record_outcome(lane, message, self.policy)
            metrics.count_outcome(message, entries)
        if new is None:
            if stored is not None:
                del self.table[key]
        elif new != lane:
            self.table[key] = LANES.encode(new)
        self.index.put(key, new)
        if isinstance(message, LaneOutcome):
            self.dispatcher.settled(key, message.event_id)  # after the table moved on
        for entry in entries:
            await self.publish_delivery(entry)

    async def publish_delivery(self, entry: DeliveryLogEntry) -> None:
        await self.deliveries_topic.send(key=entry.key().encode(), value=DELIVERIES.encode(entry))

    def lanes(self) -> Iterator[tuple[bytes, Lane]]:
        """Every lane this worker holds (a scan of the table, to rebuild the index)."""
        for key, value in list(self.table.items()):
            yield key, LANES.decode(value)

    def load_lane(self, key: bytes) -> Lane | None:
        stored = self.table.get(key)
        return None if stored is None else LANES.decode(stored)

    async def dispatch_due(self) -> None:
        if not self.config.caught_up.is_set():
            return
        generation = self.app.consumer_generation_id
        if self.index.stale(generation):
            self.index.rebuild(self.lanes(), generation)
        now = datetime.now(UTC)
        self.dispatcher.start_due(self.index.due(now))
        metrics.observe_pending(self.index.entries.values(), now)

    async def replay(self, stream: Any) -> None:
        """Each replay order: the matching events read again into the lanes."""
        async for value in stream:
            await self.config.caught_up.wait()
            try:
                await self.replayer.replay(REPLAYS.decode(value))
            except Exception:  # one bad order must not stop the agent
                log.exception("a webhook replay failed; ask for it again")

    async def close(self) -> None:
        await self.dispatcher.close()
        await self.client.close()


def register(worker: Worker) -> WebhookAgents:
    """Declare the webhook agents, their table and their timer on the worker's app."""
    agents = WebhookAgents(worker)
    app = worker.app
    app.agent(agents.events_topic, name="route_webhook_events")(agents.route_events)
    app.agent(agents.lanes_topic, name="deliver_webhooks")(agents.deliver)
    app.agent(agents.replays_topic, name="replay_webhook_events")(agents.replay)
    app.timer(interval=agents.dispatch_every_s)(agents.dispatch_due)
    worker.closers.append(agents.close)
    return agents
