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
