"""A broker of these tests' own that accepts only SASL_SSL with SCRAM-SHA-512, and a whole
smslane stack on it (package-scoped: started once, shared by every test here, stopped at
the end)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.kafka_secure import SecuredLocalKafka
from tests.harness import Stack, free_port


@pytest.fixture(scope="package")
def broker_said() -> list[str]:
    """Every line the secured broker's start and stop showed the user."""
    return []


@pytest.fixture(scope="package")
def secured_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_said: list[str]
) -> Iterator[SecuredLocalKafka]:
    root = tmp_path_factory.mktemp("sasl-ssl-kafka")
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port(span=2)}", data_dir=root)
    broker = SecuredLocalKafka(settings, progress=broker_said.append)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def stack_settings(broker: SecuredLocalKafka) -> dict[str, str]:
    """The broker's client settings as a :class:`Stack` takes them (lower-case names)."""
    return {
        name.removeprefix("SMSLANE_").lower(): value
        for name, value in broker.client_environment().items()
        if name != "SMSLANE_KAFKA_BOOTSTRAP_SERVERS"
    }


@pytest.fixture(scope="package")
def secured_stack(
    secured_broker: SecuredLocalKafka, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root: Path = tmp_path_factory.mktemp("sasl-ssl-stack")
    bootstrap = secured_broker.settings.kafka_bootstrap_servers
    running = Stack(root, bootstrap, **stack_settings(secured_broker))
    with running.running():
        yield running
