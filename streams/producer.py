"""The worker's Kafka producer: Faust's, idempotent, and a clean stop when it breaks.

aiokafka's idempotent producer can reach a state where it refuses every later write
(``OutOfOrderSequenceNumber`` after a broker restart, ``ProducerFenced``, an unknown producer
id: :mod:`feeds.producer`). The ingress replaces its producer and sends the write again. The
worker does not: Faust writes through its producer from many places (agents' sends, the
tables' changelogs, its own buffers) and awaits each write's future where it was made, so a
write that failed cannot be sent again from here in its order; a changelog write re-sent
after a newer one of the same key would restore an older value. So the worker crashes
instead, cleanly (Faust stops its services and the process exits non-zero), and its
supervisor (systemd, Kubernetes, ``Restart=always``) starts it again: a new producer id, the
tables restored from their changelogs, the unfinished messages processed again from the
committed offsets, exactly as after any other crash.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka

from feeds.producer import is_fatal

log = logging.getLogger(__name__)


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with ``enable_idempotence``; a fatal error crashes the worker."""

    _crashing: asyncio.Task[None] | None = None

    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "enable_idempotence": True}

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        try:
            future = await super().send(*args, **kwargs)
        except ProducerSendError as exc:
            self.crash_if_fatal(exc)
            raise
        written = cast("asyncio.Future[Any]", future)  # typed Awaitable; aiokafka's Future
        written.add_done_callback(self._check_written)
        return written

    def _check_written(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.crash_if_fatal(future.exception())

    def crash_if_fatal(self, error: BaseException | None) -> None:
        """Crash the worker (once) when ``error`` leaves the producer unable to write."""
        if error is None or not is_fatal(error) or self._crashing is not None:
            return
        log.critical(
            "the Kafka producer cannot write any more (%s): stopping the worker so that its "
            "supervisor starts it again with a new producer",
            type(error.__cause__ or error).__name__,
        )
        self._crashing = asyncio.ensure_future(self.app.crash(error))
