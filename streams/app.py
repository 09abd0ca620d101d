"""The Faust application: built in one place by :func:`create_app`, run by :func:`run_worker`."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokafka
import faust
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka

from schemas.config_view import ConfigView
from schemas.settings import Settings
from schemas.topics import Topics, ensure_topics
from streams import metrics

log = logging.getLogger(__name__)


def bind_event(event: faust.EventT) -> None:
    """Make ``event`` the current event of this task, for table writes from a batch.

    Faust sends a table's changelog to the partition of the current event; inside a
    ``take_events`` batch that must be the event being handled, not the batch's last one.
    Only the context variable is set: the stream's own ``current_event`` attribute belongs
    to its background buffering and must not be touched.
    """
    _current_event.set(weakref.ref(event))


class ChangelogTable(faust.Table):
    """A Faust table whose writes can be awaited until they are in Kafka."""

    _last_write: asyncio.Future[Any] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self._last_write = future
        return future

    def put(self, key: Any, value: Any) -> asyncio.Future[Any]:
        """``table[key] = value``; the future is done when the broker has acked the
        changelog message (acks=all), unlike Faust's buffer flush, which gives up after
        100 ms and waits for everything else in flight too."""
        self[key] = value
        assert self._last_write is not None
        return self._last_write


def changelog_table(app: faust.App, name: str, **kwargs: Any) -> ChangelogTable:
    """Declare a :class:`ChangelogTable` on ``app``, as ``app.Table`` would."""
    table = ChangelogTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    app.tables.add(table)
    return table


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a short fetch wait (SMSLANE_KAFKA_FETCH_MAX_WAIT_MS).

    aiokafka keeps one fetch in flight per broker, and that fetch names only the partitions
    with nothing buffered; Faust sends it with ``fetch_max_wait_ms=1500``. When those are
    idle topics (say, lifecycle control while sends pour in), the busy partitions are not
    fetched again until it returns: sends waited ~1.5 s in Kafka at 500 req/s.
    """

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = self.app.conf.smslane_fetch_max_wait_ms
        if not hasattr(consumer, "_fetch_max_wait_ms"):  # read by consumer.start()
            raise RuntimeError("aiokafka changed: AIOKafkaConsumer._fetch_max_wait_ms is gone")
        consumer._fetch_max_wait_ms = wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def faust_app_id(settings: Settings) -> str:
    """The Faust app id: consumer group and changelog-topic prefix."""
    return f"{settings.topic_prefix}smslane"


@dataclass
class Worker:
    """The app and what its agents share."""

    app: faust.App
    settings: Settings
    config: ConfigView
    topics: dict[str, faust.TopicT] = field(default_factory=dict)
    #: Called when the worker shuts down.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def topic(self, name: str) -> faust.TopicT:
        return self.topics[name]


def _raw_topic(app: faust.App, name: str, partitions: int) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )


def create_app(settings: Settings) -> Worker:
    """Build the Faust app with its topics, tables and agents."""
    prefix = settings.topic_prefix
    app = faust.App(
        faust_app_id(settings),
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap_servers.split(",")],
        store=settings.table_store,
        datadir=str(settings.data_dir.resolve() / "worker"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        stream_wait_empty=False,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_linger=0.001,
        table_cleanup_interval=60.0,
    )
    app.conf.smslane_fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
    app.transport = _Transport(app.conf.broker_consumer, app)
    worker = Worker(app=app, settings=settings, config=ConfigView())
    for spec in Topics.all():
        worker.topics[spec.base_name] = _raw_topic(
            app, spec.name(prefix), spec.partitions or settings.topic_partitions
        )

    async def on_config_event(event: faust.EventT) -> None:
        message = event.message
        key = message.key.decode() if isinstance(message.key, bytes) else str(message.key)
        worker.config.apply(key, message.value, message.offset)
        await worker.config.notify()

    # The changelog of this GlobalTable is the compacted topic the admin API writes: its
    # default name, "<app id>-config-changelog", is the catalog's config topic.
    assert Topics.CONFIG.name(prefix) == f"{faust_app_id(settings)}-config-changelog"
    app.GlobalTable(
        "config",
        key_type=bytes,
        value_type=bytes,
        partitions=1,
        store="memory://",
        recovery_buffer_size=1,
        on_changelog_event=on_config_event,
    )

    from streams.lifecycle.agents import register as register_lifecycle
    from streams.sending.agents import register as register_sending

    register_sending(worker)
    register_lifecycle(worker)
    metrics.install(worker)
    return worker


class _Worker(faust.Worker):
    """Faust's worker, plus a ready file (pid inside) once recovery has completed."""

    def __init__(
        self,
        *args: Any,
        ready_file: Path,
        closers: list[Callable[[], Awaitable[None]]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.closers = closers
        self.spinner = None  # a terminal spinner: not one line per event in a log file
        self.ready_file = ready_file
        ready_file.unlink(missing_ok=True)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        self.ready_file.parent.mkdir(parents=True, exist_ok=True)
        self.ready_file.write_text(str(os.getpid()))
        log.info("worker ready: tables recovered, agents running")

    async def on_shutdown(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        for close in self.closers:  # e.g. the Twilio HTTP session
            try:
                await close()
            except Exception:
                log.exception("error while closing %r", close)
        await super().on_shutdown()


def run_worker(settings: Settings) -> None:
    """Create the topics, then run the worker until SIGINT/SIGTERM."""
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers, settings.topic_prefix, settings.topic_partitions
        )
    )
    (settings.data_dir.resolve() / "worker").mkdir(parents=True, exist_ok=True)
    worker = create_app(settings)
    metrics.serve(settings)
    log.info(
        "worker starting: app id %s, broker %s, store %s",
        worker.app.conf.id,
        settings.kafka_bootstrap_servers,
        settings.table_store,
    )
    _Worker(
        worker.app,
        ready_file=settings.data_dir.resolve() / "worker.ready",
        closers=worker.closers,
        loglevel="INFO",
        redirect_stdouts=False,
        override_logging=False,
        console_port=0,
    ).execute_from_commandline()
