"""The ingress's connection to Kafka: one producer, the reply consumer, the config view.

- Sends are request-reply over Kafka: a :class:`SendRequest` carries ``reply_topic`` and a
  ``correlation_id``; the worker answers on the reply topic and the waiting request resumes.
- The compacted config topic is read from its start into a :class:`ConfigView`, so admin
  reads, webhook signature checks and read-your-writes offsets need no extra round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import ValidationError

from feeds import kafka_clients
from feeds.config import ConfigFeed, ConfigView
from feeds.producer import ReplacingProducer
from feeds.secret_box import SecretBox
from schemas.config import ConfigChange, ConfigEntity, config_key
from schemas.errors import GatewayTimeout, ServiceUnavailable
from schemas.events import CancelRequest, RawCallback, SendReply, SendRequest
from schemas.inbound import InboundMessage
from schemas.settings import Settings
from schemas.topics import Topics
from schemas.webhooks import ReplayOrder

log = logging.getLogger(__name__)


class WriteUnconfirmed(ServiceUnavailable):
    """A record was handed to the producer but the broker did not confirm it in time: it
    may still be written."""


class KafkaBridge:
    """Everything the HTTP handlers need from Kafka, started once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        prefix = settings.topic_prefix
        self.requests_topic = Topics.SEND_REQUESTS.name(prefix)
        self.replies_topic = Topics.SEND_REPLIES.name(prefix)
        self.callbacks_topic = Topics.CALLBACKS.name(prefix)
        self.config_topic = Topics.CONFIG.name(prefix)
        self.inbound_topic = Topics.INBOUND.name(prefix)
        #: Seals the auth tokens the admin API stores (SMSLANE_SECRET_KEYS).
        self.secrets = SecretBox(settings.secret_keys)
        self.config = ConfigView(self.secrets)
        self._feed: ConfigFeed | None = None
        self._pending: dict[str, asyncio.Future[SendReply]] = {}
        self._shed, self._shed_logged_at = 0, 0.0
        self._producer: ReplacingProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._starting: ReplacingProducer | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        #: Highest config offset this process wrote; sends carry it (read-your-writes).
        self.written_config_offset = -1

    @property
    def _timeout(self) -> float:
        return self.settings.kafka_timeout_seconds

    async def start(self) -> None:
        servers = self.settings.kafka_bootstrap_servers
        self._producer = ReplacingProducer(self._new_producer, "ingress")
        await self._producer.start()
        # Handlers keep answering 503 until the config view has caught up.
        self._starting, self._producer = self._producer, None
        replies = kafka_clients.consumer(self.settings, enable_auto_commit=False)
        self._consumers.append(replies)
        await replies.start()
        reply_tp = TopicPartition(self.replies_topic, 0)
        replies.assign([reply_tp])
        await replies.seek_to_end(reply_tp)
        await replies.position(reply_tp)
        self.config = ConfigView(self.secrets)  # a reconnect reads the topic again from its start
        self._feed = ConfigFeed(self.settings, self.config_topic, self.config)
        await self._feed.start()
        self._tasks = [asyncio.create_task(self._read_replies(replies), name="read-replies")]
        if not await self._feed.wait_caught_up(timeout_s=60):
            raise KafkaTimeoutError(f"configuration not read within 60 s ({self.config.problem})")
        self._producer, self._starting = self._starting, None
        log.info(
            "ingress connected to Kafka at %s; configuration loaded up to offset %d",
            servers, self.config.applied_offset,
        )  # fmt: skip

    def _new_producer(self) -> AIOKafkaProducer:
        """The producer of every write, made again when it can no longer write."""
        return kafka_clients.producer(
            self.settings,
            acks="all",
            linger_ms=1,
            request_timeout_ms=int(self._timeout * 1000),
            enable_idempotence=True,
        )

    async def connect(self, retry_every_s: float = 2.0) -> None:
        """Start, retrying until the broker answers (handlers answer 503 meanwhile)."""
        while True:
            try:
                await self.start()
                return
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "Kafka at %s unavailable (%s); retrying in %.0fs",
                    self.settings.kafka_bootstrap_servers, type(exc).__name__, retry_every_s,
                )  # fmt: skip
                await self._close_partial()
                await asyncio.sleep(retry_every_s)

    async def _close_partial(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for producer in (self._producer, self._starting):
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()
        self._producer = self._starting = None
        for consumer in self._consumers:
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._consumers = []
        if self._feed is not None:
            await self._feed.stop()
            self._feed = None

    @property
    def connected(self) -> bool:
        return self._producer is not None and self.config.caught_up.is_set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._producer is not None:
            await self._producer.stop()
        if self._feed is not None:
            await self._feed.stop()
        for future in self._pending.values():
            future.cancel()

    async def _read_replies(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                except KafkaError as exc:  # the consumer reconnects by itself; keep reading
                    log.warning("reading replies failed (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(0.5)
                    continue
                for messages in batches.values():
                    for message in messages:
                        self._resolve(message.value)
        finally:
            await consumer.stop()

    def _resolve(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            reply = SendReply.model_validate_json(value)
        except ValidationError:
            log.error("malformed reply on %s", self.replies_topic)
            return
        future = self._pending.get(reply.correlation_id)
        if future is not None and not future.done():
            future.set_result(reply)

    # -- producing -------------------------------------------------------------------------

    async def _send(self, topic: str, key: bytes, value: bytes | None, **kw: object) -> int:
        """Produce and wait for the broker's ack; the record's offset."""
        if not self.connected or self._producer is None:
            raise ServiceUnavailable("Kafka is not connected yet; retry in a moment.")
        try:
            metadata = await asyncio.wait_for(
                self._producer.send_and_wait(topic, value, key=key, **kw),
                timeout=self._timeout,
            )
        except (KafkaError, TimeoutError) as exc:
            log.error("could not write to Kafka topic %s: %s", topic, type(exc).__name__)
            raise WriteUnconfirmed(
                "Kafka did not acknowledge the write in time; retry later (with the same "
                "Idempotency-Key, a retry is safe)."
            ) from exc
        return int(metadata.offset)

    async def request_send(self, request: SendRequest) -> SendReply:
        """Publish a send request and wait (bounded) for the worker's reply."""
        return await self._request(
            request.request_id.bytes, request.model_dump_json().encode(), request.correlation_id
        )

    async def request_cancel(self, request: CancelRequest) -> SendReply:
        """Publish a cancel (keyed by the record's id) and wait for the worker's reply."""
        return await self._request(
            request.record.id.bytes, request.model_dump_json().encode(), request.correlation_id
        )

    async def _request(self, key: bytes, value: bytes, correlation_id: str) -> SendReply:
        """Publish on the requests topic and wait (bounded) for the worker's reply."""
        if len(self._pending) >= self.settings.send_max_in_flight:
            self._note_shed()
            raise ServiceUnavailable(
                f"smslane is at capacity ({len(self._pending)} sends in flight on this server); "
                "retry in a second.",
                retry_after=1,
            )
        future: asyncio.Future[SendReply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._send(self.requests_topic, key, value)
            # The worker measures its deadline from the broker's append time, which is no
            # later than this ack: it never calls Twilio after this wait has given up.
            return await asyncio.wait_for(future, timeout=self.settings.send_timeout_seconds)
        except WriteUnconfirmed as exc:
            # Not "503, nothing happened": the request may land and be sent after all.
            raise GatewayTimeout(
                "Kafka did not confirm the request in time, so it may still be sent; retry "
                "with the same Idempotency-Key to get its answer."
            ) from exc
        except TimeoutError as exc:
            raise GatewayTimeout() from exc
        finally:
            self._pending.pop(correlation_id, None)

    def _note_shed(self) -> None:
        """Count a send answered 503 at capacity; log at most one line per 5 s."""
        self._shed += 1
        now = time.monotonic()
        if now - self._shed_logged_at >= 5.0:
            log.warning(
                "at capacity: %d send(s) answered 503 since the last report "
                "(SMSLANE_SEND_MAX_IN_FLIGHT=%d in flight)",
                self._shed, self.settings.send_max_in_flight,
            )  # fmt: skip
            self._shed, self._shed_logged_at = 0, now

    def new_correlation_id(self) -> str:
        return uuid.uuid4().hex

    async def publish_callback(self, sid: str, callback: RawCallback) -> None:
        """Write a raw callback durably (broker ack) before the webhook answers."""
        await self._send(self.callbacks_topic, sid.encode(), callback.model_dump_json().encode())

    async def publish_inbound(self, message: InboundMessage) -> None:
        """Write an inbound SMS durably (broker ack), keyed by its sender."""
        value = Topics.INBOUND.codec.encode(message)
        await self._send(self.inbound_topic, message.from_number.encode(), value)

    async def publish_config(self, entity: ConfigEntity) -> None:
        """Write a config entity and wait until this process's view has applied it."""
        value = ConfigChange(entity=entity).model_dump_json().encode()
        offset = await self._send(
            self.config_topic, config_key(entity).encode(), value, partition=0
        )
        await self._applied(offset)

    async def publish_webhook_replay(self, order: ReplayOrder) -> None:
        """Write a webhook replay order durably (broker ack); the worker carries it out."""
        value = Topics.WEBHOOK_REPLAYS.codec.encode(order)
        topic = Topics.WEBHOOK_REPLAYS.name(self.settings.topic_prefix)
        await self._send(topic, str(order.endpoint_id).encode(), value)

    async def delete_config(self, key: str) -> None:
        offset = await self._send(self.config_topic, key.encode(), None, partition=0)
        await self._applied(offset)

    async def _applied(self, offset: int) -> None:
        """Wait until this process's view holds the write at ``offset`` (read-your-writes)."""
        self.written_config_offset = max(self.written_config_offset, offset)
        if not await self.config.wait_for(offset, timeout_s=self._timeout):
            raise ServiceUnavailable(
                "The change was written but is not in force yet; read it back before relying "
                "on it, or retry."
            )

    @property
    def config_offset(self) -> int:
        """The config offset a send must see applied: what this process read or wrote."""
        return max(self.config.applied_offset, self.written_config_offset)

    async def ping(self) -> None:
        """Raise ServiceUnavailable unless the broker answers a metadata request."""
        if self._producer is None:
            raise ServiceUnavailable("Kafka is not connected.")
        try:
            client = self._producer.producer.client
            await asyncio.wait_for(client.fetch_all_metadata(), self._timeout)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable("Kafka does not answer.") from exc
