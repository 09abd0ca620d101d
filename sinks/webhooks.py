"""``sms.webhook-deliveries`` → the store's webhook delivery log, beside the status sink.

Each batch is upserted in one transaction and only then are its offsets committed (at least
once; a later change of a delivery always wins, so a redelivered batch is harmless). While the
store refuses a batch it is held and retried with the sink's backoff. A value that is not a
:class:`~schemas.webhooks.DeliveryLogEntry` is logged and skipped. About once an hour the
deliveries the log no longer keeps (7 days) are deleted. Its consumer group is the sink's
with ``-webhooks``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from schemas.settings import Settings
from schemas.topics import Topics
from schemas.webhooks import DeliveryLogEntry
from sinks.runner import Backoff, Batch, group_consumer, sink_group
from sinks.topic_sink import TopicSink, decode_values
from store import Store
from store.errors import StoreUnavailable

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


def webhook_log_group(settings: Settings) -> str:
    """The consumer group (and client id) of the delivery-log sink."""
    return f"{sink_group(settings)}-webhooks"


def decode_deliveries(batch: Batch) -> list[DeliveryLogEntry]:
    """The entries of a batch; a value that is not one is logged and skipped."""
    return decode_values(batch, Topics.WEBHOOK_DELIVERIES.codec, "a delivery")


class WebhookLogSink(TopicSink[DeliveryLogEntry]):
    """Consumes ``sms.webhook-deliveries`` into ``store`` until ``stop``."""

    def __init__(
        self, settings: Settings, store: Store, stop: asyncio.Event, backoff: Backoff
    ) -> None:
        topic = Topics.WEBHOOK_DELIVERIES.name(settings.topic_prefix)
        consumer = group_consumer(settings, topic, webhook_log_group(settings))
        super().__init__(store, stop, backoff, consumer)
        self._purged_at = 0.0

    def decode(self, batch: Batch) -> list[DeliveryLogEntry]:
        return decode_deliveries(batch)

    async def store_items(self, items: list[DeliveryLogEntry]) -> None:
        await self.store.upsert_deliveries(items)

    async def after_batch(self) -> None:
        await self.purge()

    async def purge(self) -> None:
        """Delete what the log no longer keeps, at most every :data:`PURGE_EVERY_S`."""
        if time.monotonic() - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = time.monotonic()
        try:
            purged = await self.store.purge_deliveries(datetime.now(UTC))
        except (StoreUnavailable, SQLAlchemyError) as exc:
            log.warning("sink: purging old webhook deliveries failed (%s); later", exc)
            return
        if purged:
            log.info("sink: %d webhook deliveries older than 7 days purged", purged)
