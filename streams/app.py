"""The Faust application: built in one place by :func:`create_app`, run by :func:`run_worker`."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import aiokafka
import faust
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from feeds import fetch_wait, kafka_clients
from feeds.config import ConfigFeed, ConfigView
from feeds.replication import ReplicationError, replication_configs
from feeds.secret_box import SecretBox
from feeds.topics import TopicsMissing, check_topics, prepare_topics
from schemas.settings import Settings, SettingsError
from schemas.topics import Topics
from streams import metrics
from streams.lifecycle.agents import register as register_lifecycle
from streams.policy.agent import register as register_policy
from streams.producer import IdempotentProducer
from streams.reconcile.agent import register as register_reconcile
from streams.repair.agent import register as register_repair
from streams.restore import TableRestore, discard_unassigned, held_partitions
from streams.sending.agents import register as register_sending
from streams.sending.provider import TwilioGateway
from streams.webhooks.agents import register as register_webhooks
from streams.worker import Worker

log = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a fetch wait chosen per fetch (:mod:`feeds.fetch_wait`).

    aiokafka keeps one fetch in flight per broker, and that fetch names only the partitions
    with nothing buffered; Faust sends it with ``fetch_max_wait_ms=1500``. When those are
    idle topics (say, lifecycle control while sends pour in), the busy partitions are not
    fetched again until it returns: sends waited ~1.5 s in Kafka at 500 req/s. So a fetch
    that leaves a partition out waits SMSLANE_KAFKA_FETCH_MAX_WAIT_MS; one naming every
    partition but those Faust has paused (its changelogs once recovered) waits
    :data:`feeds.fetch_wait.IDLE_FETCH_WAIT_MS`, answered at once by new data on any of them:
    an idle worker asks twice a second instead of 40 times.
    """

    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = self.app.conf.smslane_fetch_max_wait_ms
        if not hasattr(consumer, "_fetch_max_wait_ms"):  # read by consumer.start()
            raise RuntimeError("aiokafka changed: AIOKafkaConsumer._fetch_max_wait_ms is gone")
        consumer._fetch_max_wait_ms = wait_ms
        fetch_wait.check_aiokafka()
        return consumer

    async def on_start(self) -> None:
        await super().on_start()  # creates and starts the consumer
        if not isinstance(getattr(self.consumer, "_paused_partitions", None), set):
            raise RuntimeError("faust changed: Consumer._paused_partitions is gone")
        fetch_wait.use_idle_wait(self._consumer, self._paused_partitions)

    def _paused_partitions(self) -> set[TP]:
        """The partitions Faust does not read now (read from this thread: a lookup only)."""
        paused: set[TP] = self.consumer._paused_partitions
        return paused


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = IdempotentProducer


def faust_app_id(settings: Settings) -> str:
    """The Faust app id: consumer group and changelog-topic prefix."""
    return f"{settings.topic_prefix}smslane"


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


def create_app(settings: Settings, *, replication: int = 1) -> Worker:
    """Build the Faust app with its topics, tables and agents; the tables' changelogs get
    ``replication`` replicas when Faust creates them (:func:`run_worker` gives the
    cluster's factor, :func:`feeds.replication.replication_factor`)."""
    prefix = settings.topic_prefix
    app = faust.App(
        faust_app_id(settings),
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap_servers.split(",")],
        store=settings.table_store,
        datadir=str(settings.data_dir.resolve() / "worker"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=replication,
        topic_allow_declare=settings.kafka_create_topics == "on",
        broker_credentials=kafka_clients.faust_credentials(settings),
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        stream_wait_empty=False,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_linger=0.001,
        table_cleanup_interval=60.0,
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=settings.kafka_session_timeout_seconds / 3,
    )
    app.conf.smslane_fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
    app.transport = _Transport(app.conf.broker_consumer, app)
    view = ConfigView(SecretBox(settings.secret_keys))
    feed = ConfigFeed(settings, Topics.CONFIG.name(prefix), view)
    worker = Worker(app=app, settings=settings, config=view, config_feed=feed)
    for spec in Topics.all():
        worker.topics[spec.base_name] = _raw_topic(
            app, spec.name(prefix), spec.partitions or settings.topic_partitions
        )

    gateway = TwilioGateway(settings)  # one HTTP session for every Twilio call
    worker.closers.append(gateway.close)
    register_sending(worker, gateway)
    register_reconcile(worker, gateway)
    lifecycle = register_lifecycle(worker)
    register_repair(worker, gateway, lifecycle.records)
    register_policy(worker, lifecycle.records)
    register_webhooks(worker)
    metrics.install(worker, lifecycle.records)
    _replicate_changelogs(worker.app, replication)
    return worker


def _replicate_changelogs(app: faust.App, replication: int) -> None:
    """``min.insync.replicas`` on the topics Faust creates, as on the catalog's."""
    for topic in faust_topics(app):
        topic.config = {**(topic.config or {}), **replication_configs(replication)}


def faust_topics(app: faust.App) -> list[faust.TopicT]:
    """The topics Faust creates itself: each table's changelog and the leader-election
    topic of its partition assignor (one partition, nothing written to it)."""
    leader: faust.TopicT = app._leader_assignor._leader_topic  # type: ignore[attr-defined]
    return [*(table.changelog_topic for table in app.tables.values()), leader]


class _Worker(faust.Worker):
    """Faust's worker, plus the config feed and a ready file (pid inside).

    The ready file is written once the tables are recovered *and* the configuration has been
    read to the end of its topic: a worker that says ready can send.
    """

    def __init__(self, *args: Any, ready_file: Path, worker: Worker, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.smslane = worker
        self.spinner = None  # a terminal spinner: not one line per event in a log file
        self.ready_file = ready_file
        ready_file.unlink(missing_ok=True)
        self.restore = TableRestore(worker.settings, worker.app.tables.values())

    async def on_first_start(self) -> None:
        await super().on_first_start()
        await self.restore.run()
        await self._start_config_feed()

    async def _start_config_feed(self) -> None:
        """Start reading the config topic (it goes on in the background), retrying until
        the broker answers."""
        feed = self.smslane.config_feed
        while True:
            try:
                await feed.start()
                return
            except (KafkaError, OSError) as exc:
                feed.view.problem = f"the config topic cannot be read ({type(exc).__name__})"
                log.warning("%s; retrying in 2 s", feed.view.problem)
                await asyncio.sleep(2.0)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        discard_unassigned(self.restore, held_partitions(self.smslane.app))  # assigned now
        feed = self.smslane.config_feed
        while not await feed.wait_caught_up(timeout_s=5.0):
            log.warning("worker not ready yet: %s", feed.view.problem)
        self.ready_file.parent.mkdir(parents=True, exist_ok=True)
        self.ready_file.write_text(str(os.getpid()))
        log.info("worker ready: tables recovered, configuration loaded, agents running")

    async def on_shutdown(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        await self.smslane.config_feed.stop()
        for close in self.smslane.closers:  # e.g. the Twilio HTTP session
            try:
                await close()
            except Exception:
                log.exception("error while closing %r", close)
        await super().on_shutdown()


def run_worker(settings: Settings) -> None:
    """Create the topics, then run the worker until SIGINT/SIGTERM."""
    names = [topic.get_topic_name() for topic in faust_topics(create_app(settings).app)]
    try:  # before the app that runs is made, as Faust expects no event loop run before it
        replication = asyncio.run(_prepare_topics(settings, names))
    except (TopicsMissing, ReplicationError) as exc:  # one line naming the setting, no trace
        raise SettingsError(f"smslane worker: {exc}") from None
    (settings.data_dir.resolve() / "worker").mkdir(parents=True, exist_ok=True)
    worker = create_app(settings, replication=replication)
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
        worker=worker,
        loglevel="INFO",
        redirect_stdouts=False,
        override_logging=False,
        console_port=0,
    ).execute_from_commandline()


async def _prepare_topics(settings: Settings, faust_names: list[str]) -> int:
    """Create the catalog's topics and check Faust's own (``faust_names``: Faust creates
    them as the worker starts, unless SMSLANE_KAFKA_CREATE_TOPICS=off); the replication
    factor of the topics Faust creates."""
    create = settings.kafka_create_topics == "on"
    report = await prepare_topics(settings)
    await check_topics(
        settings, faust_names, report.replication,
        create=create, timeout_s=settings.kafka_timeout_seconds,
    )  # fmt: skip
    return report.replication
