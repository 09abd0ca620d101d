"""``smslane kafka start --brokers N``: each node's ports, config and data, without starting."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import Settings
from smslane.kafka_cluster import (
    LocalCluster,
    NodePorts,
    cluster_properties,
    new_cluster_id,
    node_ports,
)
from smslane.kafka_local import KafkaError


def test_each_node_takes_two_ports_from_the_base() -> None:
    assert node_ports(9092, 3) == [
        NodePorts(9092, 9093),
        NodePorts(9094, 9095),
        NodePorts(9096, 9097),
    ]


@pytest.mark.parametrize(
    ("brokers", "replicas", "in_sync"), [(1, "1", "1"), (2, "2", "2"), (3, "3", "2"), (5, "3", "2")]
)
def test_kafka_own_topics_are_replicated_as_the_cluster_allows(
    brokers: int, replicas: str, in_sync: str
) -> None:
    props = cluster_properties(2, brokers)
    assert props["node.id"] == "2"
    assert props["offsets.topic.replication.factor"] == replicas
    assert props["default.replication.factor"] == replicas
    assert props["transaction.state.log.min.isr"] == in_sync


def test_every_node_has_its_data_ports_and_the_shared_quorum(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:39092", data_dir=tmp_path)
    cluster = LocalCluster(settings, 3)
    assert cluster.bootstrap_servers == "127.0.0.1:39092,127.0.0.1:39094,127.0.0.1:39096"
    configs = []
    for node in cluster.nodes:
        text = node._write_config().read_text()
        configs.append(dict(line.split("=", 1) for line in text.splitlines()))
    voters = "1@127.0.0.1:39093,2@127.0.0.1:39095,3@127.0.0.1:39097"
    assert {c["controller.quorum.voters"] for c in configs} == {voters}
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert configs[1]["listeners"] == "PLAINTEXT://127.0.0.1:39094,CONTROLLER://127.0.0.1:39095"
    assert configs[1]["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39094"
    assert len({c["log.dirs"] for c in configs}) == 3
    assert cluster.nodes[0]._cluster_id() == cluster.nodes[2]._cluster_id()
    assert LocalCluster.recorded_size(settings) == 3


def test_a_cluster_of_no_broker_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KafkaError):
        LocalCluster(Settings(data_dir=tmp_path), 0)


@pytest.mark.parametrize(
    ("argv", "check", "brokers"),
    [
        (["kafka", "topics"], False, None),
        (["kafka", "topics", "--print"], False, None),
        (["kafka", "topics", "--check"], True, None),
        (["kafka", "start", "--brokers", "3"], False, 3),
    ],
)
def test_kafka_command_line(argv: list[str], check: bool, brokers: int | None) -> None:
    from smslane.cli import build_parser

    parsed = build_parser().parse_args(argv)
    assert (parsed.check, parsed.brokers) == (check, brokers)


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """One id in 64 did: `kafka-storage format -t -…` then took it for an option and the
    cluster did not start."""
    made = [new_cluster_id() for _ in range(2000)]
    assert not [one for one in made if one.startswith("-")]
    assert {len(one) for one in made} == {22}
