"""``sms.inbound`` → :meth:`Store.insert_inbound`, at least once, beside the status sink.

The same rules as ``sinks.runner``: a batch is written in one transaction and only then are
its offsets committed; while the store refuses the batch it is held and retried with the
same backoff (partitions paused); a value that is not an :class:`InboundMessage`, and a
message the database refuses for its own values, are logged and skipped. Inserts are
idempotent by the message's ``id``, so a redelivered batch or a webhook Twilio retried adds
nothing. Its consumer group is the sink's with ``-inbound``.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from schemas.inbound import InboundMessage
from schemas.settings import Settings
from schemas.topics import Topics
from sinks.runner import Backoff, Batch, group_consumer, sink_group
from sinks.topic_sink import TopicSink, decode_values
from store import Store
from store.errors import driver_message, is_row_error

log = logging.getLogger(__name__)


def inbound_group(settings: Settings) -> str:
    """The consumer group (and client id) of the inbound sink."""
    return f"{sink_group(settings)}-inbound"


def decode_inbound(batch: Batch) -> list[InboundMessage]:
    """The messages of a batch; a value that is not one is logged and skipped."""
    return decode_values(batch, Topics.INBOUND.codec, "an InboundMessage")


class InboundSink(TopicSink[InboundMessage]):
    """Consumes ``sms.inbound`` into ``store`` until ``stop``: poll, write, commit."""

    def __init__(
        self, settings: Settings, store: Store, stop: asyncio.Event, backoff: Backoff
    ) -> None:
        topic = Topics.INBOUND.name(settings.topic_prefix)
        consumer = group_consumer(settings, topic, inbound_group(settings))
        super().__init__(store, stop, backoff, consumer)

    def decode(self, batch: Batch) -> list[InboundMessage]:
        return decode_inbound(batch)

    async def store_items(self, items: list[InboundMessage]) -> None:
        await self.insert_or_skip_bad_rows(items)

    async def insert_or_skip_bad_rows(self, messages: list[InboundMessage]) -> None:
        """Insert the batch; if the database refuses it for its data (``is_row_error``),
        insert one by one and skip, logged, only the messages it refuses. Any other refusal
        is raised: the batch is held."""
        try:
            await self.store.insert_inbound(messages)
            return
        except SQLAlchemyError as exc:
            if not is_row_error(exc):
                raise
            log.error(
                "sink: inbound batch of %d refused (%s); one by one",
                len(messages), driver_message(exc),
            )  # fmt: skip
        for message in messages:
            try:
                await self.store.insert_inbound([message])
            except SQLAlchemyError as exc:
                if not is_row_error(exc):
                    raise
                log.error(
                    "sink: skipping inbound message %s the store refuses: %s",
                    message.message_sid, type(exc).__name__,
                    extra={"message_sid": message.message_sid},
                )  # fmt: skip
