"""How smslane's topics are replicated on the cluster: the decisions, without I/O.

Every topic smslane creates (the catalog's and the tables' changelogs) gets the replication
factor SMSLANE_KAFKA_REPLICATION_FACTOR, by default 3 or the cluster's broker count when it
has fewer (the local single broker gets 1). A topic with 3 replicas or more also gets
``min.insync.replicas=2``: with ``acks=all`` a write is then on two brokers before it is
acknowledged, so losing one broker loses no acknowledged write.

smslane never moves data: an existing topic with fewer replicas than asked (or fewer than 3,
created when the cluster was smaller) is named in a warning at start, with the
``kafka-reassign-partitions`` way for an operator to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The replication a production cluster needs to lose a broker without losing a write.
SAFE_REPLICATION = 3
#: With SAFE_REPLICATION replicas: a write is acknowledged once on this many brokers.
SAFE_MIN_IN_SYNC = 2


class ReplicationError(Exception):
    """The replication asked for cannot be had on this cluster; the text says why."""


def replication_factor(asked: int | None, brokers: int) -> int:
    """The factor for new topics: ``asked`` (SMSLANE_KAFKA_REPLICATION_FACTOR) when set,
    otherwise 3, or ``brokers`` when the cluster has fewer."""
    if asked is None:
        return max(1, min(SAFE_REPLICATION, brokers))
    if asked > brokers:
        raise ReplicationError(
            f"SMSLANE_KAFKA_REPLICATION_FACTOR={asked} but the cluster has {brokers} "
            f"broker(s): Kafka cannot place {asked} replicas of a partition"
        )
    return asked


def replication_configs(factor: int) -> dict[str, str]:
    """The topic configs a topic of ``factor`` replicas gets: ``min.insync.replicas=2``
    where ``factor`` >= 3, nothing otherwise (the broker's default, 1, stands)."""
    if factor >= SAFE_REPLICATION:
        return {"min.insync.replicas": str(SAFE_MIN_IN_SYNC)}
    return {}


@dataclass(frozen=True)
class TopicNeed:
    """One topic smslane needs: what an operator creates when smslane may not."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def create_command(self, bootstrap_servers: str) -> str:
        """The ``kafka-topics.sh`` line that creates this topic."""
        configs = "".join(f" --config {key}={value}" for key, value in sorted(self.configs.items()))
        return (
            f"kafka-topics.sh --bootstrap-server {bootstrap_servers} --create --topic {self.name}"
            f" --partitions {self.partitions} --replication-factor {self.replication}{configs}"
        )


@dataclass(frozen=True)
class TopicFound:
    """What the cluster has of a topic: partitions and the replica count of each."""

    name: str
    partitions: int
    replicas: int  # the fewest of any partition


def short_replicated(found: Mapping[str, TopicFound], factor: int) -> list[TopicFound]:
    """The existing topics with fewer replicas than ``factor``, in name order. With the
    default factor this includes a topic created with fewer than 3 when the cluster had
    fewer brokers than it has now."""
    return [topic for _, topic in sorted(found.items()) if topic.replicas < factor]


def short_replicated_warning(topics: list[TopicFound], factor: int) -> str:
    """One warning naming each short-replicated topic and how an operator fixes it."""
    names = ", ".join(f"{t.name} ({t.replicas} replica(s))" for t in topics)
    in_sync = replication_configs(factor).get("min.insync.replicas")
    then = f", then set min.insync.replicas={in_sync} on each topic" if in_sync else ""
    return (
        f"{len(topics)} topic(s) have fewer than {factor} replicas: {names}. A broker lost "
        f"with them may lose their messages; smslane does not move data itself. Add replicas "
        f"with kafka-reassign-partitions.sh --bootstrap-server ... --reassignment-json-file "
        f"FILE --execute (FILE lists each partition with {factor} broker ids){then} "
        f"(docs/operations.md, Running on a Kafka cluster)"
    )


def missing_or_different(needs: list[TopicNeed], found: Mapping[str, TopicFound]) -> list[str]:
    """For ``smslane kafka topics --check``: one line per topic the cluster lacks, or has
    with other partitions or fewer replicas than needed."""
    problems = []
    for need in needs:
        have = found.get(need.name)
        if have is None:
            problems.append(f"{need.name}: missing")
        elif have.partitions != need.partitions:
            problems.append(
                f"{need.name}: {have.partitions} partition(s), smslane needs {need.partitions}"
            )
        elif have.replicas < need.replication:
            problems.append(
                f"{need.name}: {have.replicas} replica(s), smslane asks {need.replication}"
            )
    return problems
