"""smslane's topics on a three-broker cluster: three replicas, min.insync.replicas=2, and a
warning naming a topic that has fewer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from feeds.kafka_admin import describe_topic_configs
from feeds.replication import TopicFound
from feeds.topics import describe_topics, ensure_topics, prepare_topics
from schemas.settings import Settings
from schemas.topics import Topics
from smslane.kafka_cluster import LocalCluster
from smslane.processes import wait_until_async

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(kafka_cluster: LocalCluster) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def described(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, TopicFound]:
    """:func:`describe_topics` once every one of ``names`` is listed and described."""

    async def every_one() -> dict[str, TopicFound] | None:
        found = await describe_topics(admin, names)
        return found if len(found) == len(names) else None

    return await wait_until_async(every_one, 15, f"{names} described")


def cluster_settings(cluster: LocalCluster, prefix: str) -> Settings:
    """Settings that make the catalog's topics on ``cluster``, two partitions each."""
    return Settings(
        kafka_bootstrap_servers=cluster.bootstrap_servers, topic_prefix=prefix, topic_partitions=2
    )


async def test_new_topics_get_three_replicas_and_min_insync_2(
    kafka_cluster: LocalCluster, admin: AIOKafkaAdminClient
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(cluster_settings(kafka_cluster, prefix))
    names = [spec.name(prefix) for spec in Topics.all()]
    found = await described(admin, names)
    assert {name: topic.replicas for name, topic in found.items()} == dict.fromkeys(names, 3)
    configs = await describe_topic_configs(admin, {n: ["min.insync.replicas"] for n in names})
    assert {c["min.insync.replicas"] for c in configs.values()} == {"2"}


async def test_a_topic_with_fewer_replicas_is_named_and_left_alone(
    kafka_cluster: LocalCluster, admin: AIOKafkaAdminClient
) -> None:
    """As a topic created when the cluster had one broker: smslane moves no data, it names
    the topic (in a warning whose text tests/feeds/test_replication.py checks); and it does
    not set min.insync.replicas=2 on a topic with one replica (every acks=all write to it
    would be refused)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    status = Topics.STATUS.name(prefix)
    await admin.create_topics([NewTopic(status, 2, 1)])
    await described(admin, [status])  # brokers learn of a new topic a moment later

    report = await prepare_topics(cluster_settings(kafka_cluster, prefix))

    assert report.replication == 3
    assert report.short == [TopicFound(status, 2, 1)]
    assert status not in report.created
    assert (await describe_topics(admin, [status]))[status].replicas == 1
    configs = await describe_topic_configs(admin, {status: ["min.insync.replicas"]})
    assert configs[status]["min.insync.replicas"] == "1"
