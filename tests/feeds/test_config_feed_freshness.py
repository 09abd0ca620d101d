"""The config feed on a real broker: once it confirms the view is current as of a moment,
every record written before that moment is applied (the basis of the 5 s revocation bound)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from feeds.config import ConfigFeed, ConfigView
from schemas.config import ConfigChange, api_key_config_key, config_key
from schemas.settings import Settings
from smslane.processes import wait_until_async
from tests.feeds.test_api_keys import make_key
from tests.sinks.helpers import new_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    async with new_topic(kafka_bootstrap, "config", 1) as name:
        yield name


async def confirmed_after(view: ConfigView, moment: float) -> bool:
    return view.confirmed_at is not None and view.confirmed_at > moment


async def test_a_confirmation_later_than_a_write_has_applied_it(
    kafka_bootstrap: str, topic: str
) -> None:
    view = ConfigView()
    feed = ConfigFeed(Settings(kafka_bootstrap_servers=kafka_bootstrap), topic, view)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await feed.start()
    await producer.start()
    try:
        assert await feed.wait_caught_up(10.0)
        key = make_key()
        value = ConfigChange(entity=key).model_dump_json().encode()
        await producer.send_and_wait(topic, value, key=config_key(key).encode(), partition=0)
        written = time.monotonic()
        await wait_until_async(lambda: confirmed_after(view, written), 10.0, "a confirmation")
        assert view.api_keys.get(key.id) == key

        tombstone = api_key_config_key(key.id).encode()
        await producer.send_and_wait(topic, None, key=tombstone, partition=0)
        revoked = time.monotonic()
        await wait_until_async(lambda: confirmed_after(view, revoked), 10.0, "a confirmation")
        assert view.api_keys.get(key.id) is None and view.confirmed_within(5.0)
    finally:
        await producer.stop()
        await feed.stop()
