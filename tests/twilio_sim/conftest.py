"""Fixtures: a simulator started in-process on a free port, a callback receiver, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from tests.twilio_sim.factories import create_client, create_config
from tests.twilio_sim.receiver import CallbackReceiver
from twilio_sim import TwilioSimulator


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator(create_config())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    running = await CallbackReceiver().start()
    yield running
    await running.stop()


@pytest.fixture
def client(sim: TwilioSimulator) -> Iterator[Client]:
    """twilio's synchronous Client; call it through ``asyncio.to_thread``, as it blocks."""
    sync_client = create_client(sim.base_url)
    yield sync_client
    sync_client.http_client.session.close()


@pytest.fixture
async def async_client(sim: TwilioSimulator) -> AsyncIterator[Client]:
    """twilio's Client with its aiohttp-based AsyncTwilioHttpClient."""
    http_client = AsyncTwilioHttpClient()
    yield create_client(sim.base_url, http_client=http_client)
    await http_client.close()
