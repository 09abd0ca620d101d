"""``smslane kafka topics``: the topics smslane needs, for clusters where it may not create
them (SMSLANE_KAFKA_CREATE_TOPICS=off).

``--print`` lists each topic (the catalog's and the worker's table changelogs) with its
partitions, replication factor and configs, as a ``kafka-topics.sh`` command an operator
runs; ``--check`` compares them with the cluster and names each missing or different one.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiokafka.errors import KafkaError

from feeds import kafka_clients, replication
from feeds.replication import TopicFound, TopicNeed
from feeds.secret_box import new_key
from feeds.topics import catalog_needs, describe_topics
from schemas.settings import Settings

#: Exit status of ``--check`` when a topic is missing or different.
EXIT_TOPICS_DIFFER = 4


def worker_needs(settings: Settings, factor: int) -> list[TopicNeed]:
    """The topics the worker's Faust app creates (:func:`streams.app.faust_topics`)."""
    from streams.app import create_app, faust_topics

    keys = settings.secret_keys or (new_key(),)  # the app is built, never run: any key
    app = create_app(settings.model_copy(update={"secret_keys": keys}), replication=factor).app
    transport: Any = app.transport
    needs = []
    for topic in faust_topics(app):
        configs = transport._topic_config(topic.retention, topic.compacting, topic.deleting)
        configs.update(topic.config or {})
        partitions = topic.partitions or settings.topic_partitions
        name = topic.get_topic_name()
        needs.append(TopicNeed(name, partitions, factor, {k: str(v) for k, v in configs.items()}))
    return needs


def all_needs(settings: Settings, factor: int) -> list[TopicNeed]:
    catalog = catalog_needs(settings.topic_prefix, settings.topic_partitions, factor)
    return catalog + worker_needs(settings, factor)


async def _cluster(settings: Settings) -> tuple[int, dict[str, TopicFound]] | None:
    """The broker count and smslane's topics found, or None when the cluster does not
    answer within SMSLANE_KAFKA_TIMEOUT_SECONDS."""
    admin = kafka_clients.admin(
        settings, request_timeout_ms=int(settings.kafka_timeout_seconds * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), settings.kafka_timeout_seconds)
        brokers = len((await admin.describe_cluster())["brokers"])
        factor = replication.replication_factor(settings.kafka_replication_factor, brokers)
        names = [need.name for need in all_needs(settings, factor)]
        return brokers, await describe_topics(admin, names)
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()


def run_topics(settings: Settings, *, check: bool) -> int:
    """The command; exit 0, 1 (cluster unreachable for --check, or a bad factor) or 4."""
    cluster = asyncio.run(_cluster(settings))
    try:
        brokers = cluster[0] if cluster else None
        asked = settings.kafka_replication_factor
        factor = replication.replication_factor(asked, brokers) if brokers else (asked or 3)
    except replication.ReplicationError as exc:
        sys.stderr.write(f"smslane kafka topics: {exc}\n")
        return 1
    needs = all_needs(settings, factor)
    if not check:
        _print_needs(settings, needs, factor, brokers)
        return 0
    if cluster is None:
        where = settings.kafka_bootstrap_servers
        sys.stderr.write(f"smslane kafka topics --check: no answer from Kafka at {where}\n")
        return 1
    problems = replication.missing_or_different(needs, cluster[1])
    for line in problems:
        sys.stdout.write(f"{line}\n")
    if problems:
        return EXIT_TOPICS_DIFFER
    sys.stdout.write(f"all {len(needs)} topics smslane needs are there\n")
    return 0


def _print_needs(
    settings: Settings, needs: list[TopicNeed], factor: int, brokers: int | None
) -> None:
    source = f"a cluster of {brokers} broker(s)" if brokers else "no cluster answered"
    in_sync = replication.replication_configs(factor) or {"min.insync.replicas": "broker default"}
    sys.stdout.write(
        f"# {len(needs)} topics; replication factor {factor} ({source}), "
        f"min.insync.replicas {in_sync['min.insync.replicas']}\n"
    )
    for need in needs:
        sys.stdout.write(need.create_command(settings.kafka_bootstrap_servers) + "\n")
