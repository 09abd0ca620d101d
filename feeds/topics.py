"""The catalog's topics on the broker: created when missing, their configs kept aligned.

Every process calls :func:`ensure_topics` at its start (the ingress, the worker and the
sink), so whichever comes first creates the topics with the catalog's layout
(``schemas.topics.Topics``) instead of letting the broker auto-create them with its defaults.
"""

from __future__ import annotations

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from feeds import kafka_clients
from feeds.kafka_admin import align_topic_configs
from schemas.settings import Settings
from schemas.topics import Topics


async def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """Create every catalog topic that does not exist yet; return the names created.

    An existing catalog topic gets the catalog's configs (``cleanup.policy``, …) where its own
    differ, each change logged; its other configs and its partitions are left as they are.
    Idempotent, and a concurrent creator is fine. Prefix and partitions are
    SMSLANE_TOPIC_PREFIX and SMSLANE_TOPIC_PARTITIONS.
    """
    prefix, partitions = settings.topic_prefix, settings.topic_partitions
    admin = kafka_clients.admin(settings, request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for spec in Topics.all():
            name = spec.name(prefix)
            if name in existing:
                continue
            configs = spec.topic_configs()
            wanted.append(NewTopic(name, spec.partitions or partitions, 1, topic_configs=configs))
        created = []
        for topic in wanted:  # one by one: a concurrent creator fails only its own topic
            try:
                response = await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
            # The broker answers per topic: "already exists" (another creator came first, or
            # the topic was made after list_topics) is not a creation of ours.
            codes = [error[1] for error in getattr(response, "topic_errors", ())]
            if TopicAlreadyExistsError.errno in codes:
                existing.add(topic.name)
            else:
                created.append(topic.name)
        await align_topic_configs(
            admin,
            {s.name(prefix): s.topic_configs() for s in Topics.all() if s.name(prefix) in existing},
        )
        return created
    finally:
        await admin.close()
