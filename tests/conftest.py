"""Shared fixtures: a real Kafka broker for the session, and whole smslane stacks on it.

The broker comes from SMSLANE_KAFKA_BOOTSTRAP_SERVERS when set (CI starts one); otherwise
from testcontainers when a Docker engine answers; otherwise the tests start the local broker
(`smslane kafka`) themselves, on a free port, and stop it at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Stack, docker_answers, start_local_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("SMSLANE_KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    bootstrap, broker = start_local_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running smslane (simulator, worker, sink, ingress) for a test module."""
    root: Path = tmp_path_factory.mktemp("stack")
    running = Stack(root, kafka_bootstrap)
    with running.running():
        yield running


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of the test module's own (skips without a test server)."""
    from tests.sinks.helpers import create_pg_database, drop_pg_database, postgres_url

    url = asyncio.run(create_pg_database(postgres_url()))
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))
