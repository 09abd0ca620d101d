"""A local Kafka cluster: several KRaft nodes on this machine, each both controller and broker.

For tests that lose a broker and for users who want to try smslane on a replicated cluster
(``smslane kafka start --brokers 3``). Every node is a :class:`~smslane.kafka_local.LocalKafka`
with its own ports, data directory, pid file and log under ``SMSLANE_DATA_DIR/kafka-cluster``;
the nodes share one cluster id and one static controller quorum.

Ports: node *i* (from 1) listens for clients on ``base + 2(i-1)`` and for the controller
quorum on the port after it, where ``base`` is the port of the first address of
SMSLANE_KAFKA_BOOTSTRAP_SERVERS: 9092 gives 9092-9097 for three nodes. Two clusters run side
by side with different bases and data directories.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from schemas.settings import Settings
from smslane.kafka_local import (
    BrokerStatus,
    KafkaError,
    LocalKafka,
    Progress,
    _print,
    broker_answers,
)

#: The replication of Kafka's own topics (group offsets, transactions) on a cluster of n.
_INTERNAL_TOPIC_KEYS = (
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "share.coordinator.state.topic.replication.factor",
    "default.replication.factor",
)
_INTERNAL_MIN_ISR_KEYS = ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr")


@dataclass(frozen=True)
class NodePorts:
    """A node's client (broker) port and its controller port."""

    broker: int
    controller: int


def node_ports(base: int, brokers: int) -> list[NodePorts]:
    """Two ports per node from ``base``: client port, then controller port."""
    return [NodePorts(base + 2 * i, base + 2 * i + 1) for i in range(brokers)]


def cluster_properties(node_id: int, brokers: int) -> dict[str, str]:
    """What a node of a cluster of ``brokers`` sets beyond the single node's config."""
    replicas = str(min(3, brokers))
    in_sync = str(min(2, brokers))
    props = dict.fromkeys(_INTERNAL_TOPIC_KEYS, replicas)
    props.update(dict.fromkeys(_INTERNAL_MIN_ISR_KEYS, in_sync))
    props["node.id"] = str(node_id)
    return props


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` makes one: a random UUID in
    URL-safe base64, never starting with ``-`` (the tool would take it for an option)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


class ClusterNode(LocalKafka):
    """One node of a :class:`LocalCluster`: a :class:`LocalKafka` with the cluster's quorum,
    cluster id and replication of Kafka's own topics. :meth:`launch` starts its process
    without waiting (a node cannot answer until a quorum of nodes is up); ``start`` starts it
    and waits, as for a node restarted while the others run."""

    def __init__(
        self, cluster: LocalCluster, node_id: int, ports: NodePorts, progress: Progress
    ) -> None:
        host = cluster.host
        settings = cluster.settings.model_copy(
            update={"kafka_bootstrap_servers": f"{host}:{ports.broker}"}
        )
        super().__init__(settings, self._say, bar=False)
        self.cluster, self.node_id, self.ports = cluster, node_id, ports
        self.show = progress
        self.state = cluster.state / f"node-{node_id}"
        self.data = self.state / "data"
        self.pid_file = self.state / "broker.pid"
        self.log_file = self.state / "broker.log"
        self.waiting = True

    def _write_config(self) -> Path:
        path = super()._write_config()
        props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        props.update(cluster_properties(self.node_id, len(self.cluster.nodes)))
        props["controller.quorum.voters"] = self.cluster.voters
        host, controller = self.host, self.ports.controller
        props["listeners"] = f"PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{controller}"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _cluster_id(self) -> str:
        return self.cluster.cluster_id()

    def _say(self, line: str) -> None:
        if self.waiting or not line.startswith("Kafka is ready"):  # launched, not ready yet
            self.show(f"node {self.node_id}: {line}")

    def _wait_ready(self, pid: int, timeout_s: float) -> None:
        if self.waiting:
            super()._wait_ready(pid, timeout_s)

    def launch(self) -> None:
        """Start this node's process (unless it runs) without waiting for it to answer."""
        self.waiting = False
        try:
            self.start(die_with_parent=False)
        finally:
            self.waiting = True


class LocalCluster:
    """Start, stop and inspect ``brokers`` local KRaft nodes as one cluster."""

    def __init__(
        self,
        settings: Settings,
        brokers: int,
        progress: Progress = _print,
        *,
        ports: Sequence[NodePorts] | None = None,
    ) -> None:
        if brokers < 1:
            raise KafkaError("a cluster needs at least one broker")
        self.settings = settings
        self.progress = progress
        first = settings.kafka_bootstrap_servers.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        self.host = host
        self.state = settings.data_dir.resolve() / "kafka-cluster"
        chosen = list(ports) if ports is not None else node_ports(int(port), brokers)
        self.nodes: list[ClusterNode] = []
        for number, node_port in enumerate(chosen[:brokers], start=1):
            self.nodes.append(ClusterNode(self, number, node_port, progress))

    @staticmethod
    def recorded_size(settings: Settings) -> int:
        """How many nodes the cluster in SMSLANE_DATA_DIR has (0: none was started)."""
        return len(list((settings.data_dir.resolve() / "kafka-cluster").glob("node-*")))

    @property
    def bootstrap_servers(self) -> str:
        """Every node's client address, comma-separated (SMSLANE_KAFKA_BOOTSTRAP_SERVERS)."""
        return ",".join(f"{self.host}:{node.ports.broker}" for node in self.nodes)

    @property
    def voters(self) -> str:
        """``controller.quorum.voters``: every node is a voter."""
        return ",".join(f"{n.node_id}@{self.host}:{n.ports.controller}" for n in self.nodes)

    def cluster_id(self) -> str:
        """The cluster's id, made once and kept in its state directory."""
        path = self.state / "cluster.id"
        if not path.exists():
            self.state.mkdir(parents=True, exist_ok=True)
            path.write_text(new_cluster_id())
        return path.read_text().strip()

    def start(self, timeout_s: float = 120.0) -> list[BrokerStatus]:
        """Start every node not running, then wait until each answers a metadata request."""
        self.nodes[0].resolve()
        for node in self.nodes:
            node.launch()
        self.wait_ready(timeout_s)
        self.progress(
            f"Kafka cluster of {len(self.nodes)} brokers is ready; "
            f"SMSLANE_KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers}"
        )
        return self.status()

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every node answers; raises when one exits or the time is up."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            pid = node.recorded_pid()
            if pid is None:
                raise KafkaError(f"node {node.node_id} is not running; see {node.log_file}")
            node._wait_ready(pid, max(1.0, deadline - time.monotonic()))

    def stop(self, timeout_s: float = 60.0) -> int:
        """Stop every node smslane started, all at once; how many were running. (One by one,
        the last nodes would wait out their timeout: a node's controlled shutdown needs a
        controller quorum, gone once most nodes have stopped.)"""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            stopped = pool.map(functools.partial(ClusterNode.stop, timeout_s=timeout_s), self.nodes)
            return sum(stopped)

    def status(self) -> list[BrokerStatus]:
        """Each node's status, in node order."""
        return [node.status() for node in self.nodes]

    def answering(self) -> bool:
        """True when the cluster answers at its bootstrap addresses."""
        cluster = self.settings.model_copy(
            update={"kafka_bootstrap_servers": self.bootstrap_servers}
        )
        return asyncio.run(broker_answers(cluster))
