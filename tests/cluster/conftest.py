"""One local three-broker Kafka cluster (KRaft) for the whole test session, shared by the
cluster tests: its own free ports and data directories, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.settings import Settings
from smslane.kafka_cluster import LocalCluster, NodePorts
from smslane.processes import free_port


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    ports = [NodePorts(free_port(), free_port()) for _ in range(3)]
    root = tmp_path_factory.mktemp("kafka-cluster")
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{ports[0].broker}", data_dir=root)
    cluster = LocalCluster(settings, 3, ports=ports)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
