"""The worker's Faust app, as built (no broker: nothing here starts)."""

from __future__ import annotations

from feeds.secret_box import new_key
from schemas.settings import Settings
from streams.app import create_app


async def test_the_worker_consumer_fetches_with_the_configured_wait() -> None:
    """Faust builds its consumer with fetch_max_wait_ms=1500; ours takes the setting, so a
    busy partition never waits behind a fetch of idle ones for 1.5 s."""
    worker = create_app(Settings(kafka_fetch_max_wait_ms=25, secret_keys=(new_key(),)))
    thread = worker.app.consumer._thread
    consumer = thread._create_worker_consumer(worker.app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 25
        assert consumer._group_id == worker.app.conf.id  # still Faust's consumer otherwise
    finally:
        await consumer.stop()


async def test_the_worker_producer_is_idempotent_and_a_fatal_error_crashes_the_worker() -> None:
    """Faust's producer cannot be replaced under its own futures: the worker stops (once)
    so that its supervisor starts it with a new producer; other errors do not stop it."""
    from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber
    from faust.exceptions import ProducerSendError

    from streams.producer import IdempotentProducer

    worker = create_app(Settings(secret_keys=(new_key(),)))
    producer = worker.app.producer
    assert isinstance(producer, IdempotentProducer)
    assert producer._settings_extra()["enable_idempotence"] is True
    crashes: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    worker.app.crash = crash
    producer.crash_if_fatal(KafkaTimeoutError())
    refused = ProducerSendError("Error while sending")
    refused.__cause__ = OutOfOrderSequenceNumber()
    producer.crash_if_fatal(refused)
    producer.crash_if_fatal(OutOfOrderSequenceNumber())  # the same breakage, seen again
    assert producer._crashing is not None
    await producer._crashing
    assert crashes == [refused]


def test_the_tables_changelogs_get_the_replication_and_min_insync() -> None:
    worker = create_app(Settings(secret_keys=(new_key(),)), replication=3)
    assert worker.app.conf.topic_replication_factor == 3
    for table in worker.app.tables.values():
        assert table.changelog_topic.config["min.insync.replicas"] == "2"
