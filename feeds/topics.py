"""The catalog's topics on the broker: created when missing, their configs kept aligned.

Every process calls :func:`ensure_topics` at its start (the ingress, the worker and the
sink), so whichever comes first creates the topics with the catalog's layout
(``schemas.topics.Topics``) instead of letting the broker auto-create them with its defaults.
New topics get the replication factor of :mod:`feeds.replication`; existing ones with fewer
replicas are named in a warning. With ``create=False`` (SMSLANE_KAFKA_CREATE_TOPICS=off)
nothing is created or changed: missing topics are reported (:class:`TopicsMissing`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict, Unpack

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from feeds import kafka_clients
from feeds.kafka_admin import align_topic_configs
from feeds.replication import (
    TopicFound,
    TopicNeed,
    replication_configs,
    replication_factor,
    short_replicated,
    short_replicated_warning,
)
from schemas.settings import Settings
from schemas.topics import Topics

log = logging.getLogger(__name__)


class TopicsMissing(Exception):
    """Topics smslane needs are missing and it may not create them; the text names them."""


@dataclass(frozen=True)
class TopicsReport:
    """What :func:`prepare_topics` did: the topics created, the factor new ones get, and
    the existing ones with fewer replicas than that (named in a warning)."""

    created: list[str]
    replication: int
    short: list[TopicFound]


def catalog_needs(prefix: str, partitions: int, factor: int) -> list[TopicNeed]:
    """Every catalog topic as smslane creates it on a cluster where new topics get
    ``factor`` replicas."""
    return [
        TopicNeed(
            spec.name(prefix),
            spec.partitions or partitions,
            factor,
            {**spec.topic_configs(), **replication_configs(factor)},
        )
        for spec in Topics.all()
    ]


class TopicOptions(TypedDict, total=False):
    """Overrides of what the settings say of how topics are made: ``timeout_s`` of each
    admin request (30 s), ``replication`` (SMSLANE_KAFKA_REPLICATION_FACTOR; None:
    :func:`feeds.replication.replication_factor`'s default), ``create`` (False: check only,
    SMSLANE_KAFKA_CREATE_TOPICS=off)."""

    timeout_s: float
    replication: int | None
    create: bool


async def ensure_topics(settings: Settings, **options: Unpack[TopicOptions]) -> list[str]:
    """Create every catalog topic that does not exist yet; return the names created.

    An existing catalog topic gets the catalog's configs (``cleanup.policy``, …) where its own
    differ, each change logged; its other configs and its partitions are left as they are.
    Idempotent, and a concurrent creator is fine.
    """
    report = await prepare_topics(settings, **options)
    return report.created


async def prepare_topics(settings: Settings, **options: Unpack[TopicOptions]) -> TopicsReport:
    """:func:`ensure_topics`, also saying which replication factor new topics get (the
    worker gives it to Faust for the tables' changelogs)."""
    timeout_ms = int(options.get("timeout_s", 30.0) * 1000)
    replication = options.get("replication", settings.kafka_replication_factor)
    create = options.get("create", settings.kafka_create_topics == "on")
    prefix, partitions = settings.topic_prefix, settings.topic_partitions
    admin = kafka_clients.admin(settings, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        factor = replication_factor(replication, brokers)
        needs = catalog_needs(prefix, partitions, factor)
        found = await describe_topics(admin, [need.name for need in needs])
        short = warn_short_replicated(found, factor)
        if not create:
            check_present([need.name for need in needs], found)
            return TopicsReport([], factor, short)
        created = await _create_missing(admin, [n for n in needs if n.name not in found])
        await align_topic_configs(admin, _wanted_configs(prefix, found))
        return TopicsReport(created, factor, short)
    finally:
        await admin.close()


async def describe_topics(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, TopicFound]:
    """The topics among ``names`` that exist, with their partitions and fewest replicas."""
    existing = set(await admin.list_topics())
    wanted = [name for name in names if name in existing]
    if not wanted:
        return {}
    found = {}
    for description in await admin.describe_topics(wanted):
        parts = description["partitions"]
        if description.get("error_code") or not parts:
            continue
        replicas = min(len(part["replicas"]) for part in parts)
        found[description["topic"]] = TopicFound(description["topic"], len(parts), replicas)
    return found


def warn_short_replicated(found: Mapping[str, TopicFound], factor: int) -> list[TopicFound]:
    """The topics with fewer replicas than ``factor``, named in one warning if any."""
    short = short_replicated(found, factor)
    if short:
        log.warning("%s", short_replicated_warning(short, factor))
    return short


async def check_topics(
    settings: Settings, names: list[str], factor: int, *, create: bool, timeout_s: float
) -> list[TopicFound]:
    """For topics another library creates (Faust's changelogs): warn about those with fewer
    replicas than ``factor`` (returned), and with ``create`` False raise
    :class:`TopicsMissing` for those missing."""
    admin = kafka_clients.admin(settings, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        found = await describe_topics(admin, names)
    finally:
        await admin.close()
    short = warn_short_replicated(found, factor)
    if not create:
        check_present(names, found)
    return short


def check_present(names: list[str], found: Mapping[str, TopicFound]) -> None:
    """Raise :class:`TopicsMissing` unless every one of ``names`` exists."""
    missing = [name for name in names if name not in found]
    if missing:
        raise TopicsMissing(
            f"SMSLANE_KAFKA_CREATE_TOPICS=off and {len(missing)} topic(s) smslane needs are "
            f"missing: {', '.join(missing)}; `smslane kafka topics --print` shows how to "
            "create them"
        )


async def _create_missing(admin: AIOKafkaAdminClient, needs: list[TopicNeed]) -> list[str]:
    created = []
    for need in needs:  # one by one: a concurrent creator fails only its own topic
        topic = NewTopic(
            need.name, need.partitions, need.replication, topic_configs=dict(need.configs)
        )
        try:
            response = await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            continue
        # The broker answers per topic: "already exists" (another creator came first, or
        # the topic was made after list_topics) is not a creation of ours.
        codes = [error[1] for error in getattr(response, "topic_errors", ())]
        if TopicAlreadyExistsError.errno not in codes:
            created.append(topic.name)
    return created


def _wanted_configs(prefix: str, found: Mapping[str, TopicFound]) -> dict[str, dict[str, str]]:
    """The catalog's configs of each existing topic; ``min.insync.replicas`` only where the
    topic has the replicas for it (more than it has would refuse every acks=all write)."""
    wanted = {}
    for spec in Topics.all():
        topic = found.get(spec.name(prefix))
        if topic is not None:
            wanted[topic.name] = {**spec.topic_configs(), **replication_configs(topic.replicas)}
    return wanted
