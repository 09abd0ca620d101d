"""SMSLANE_KAFKA_CREATE_TOPICS=off: processes only check, and `smslane kafka topics` says
what to create."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from feeds.secret_box import new_key
from feeds.topics import TopicsMissing, ensure_topics
from schemas.settings import Settings
from schemas.topics import Topics
from smslane.kafka_topics import EXIT_TOPICS_DIFFER, all_needs, run_topics

pytestmark = pytest.mark.integration


def check_only(bootstrap: str, prefix: str) -> Settings:
    """A worker's settings with SMSLANE_KAFKA_CREATE_TOPICS=off."""
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        kafka_create_topics="off",
        secret_keys=(new_key(),),
    )


def topics_of(bootstrap: str, prefix: str) -> Settings:
    """Settings that make the catalog's topics under ``prefix``, two partitions each."""
    return Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, topic_partitions=2)


async def listed(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return [name for name in await admin.list_topics() if name.startswith(prefix)]
    finally:
        await admin.close()


async def test_check_only_creates_nothing_and_names_the_missing_topics(
    kafka_bootstrap: str,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with pytest.raises(TopicsMissing) as refused:
        await ensure_topics(topics_of(kafka_bootstrap, prefix), create=False)
    assert Topics.STATUS.name(prefix) in str(refused.value)
    assert "smslane kafka topics --print" in str(refused.value)
    assert await listed(kafka_bootstrap, prefix) == []


def test_topics_check_fails_until_every_topic_is_there_and_print_lists_them(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    assert run_topics(settings, check=True) == EXIT_TOPICS_DIFFER
    assert f"{Topics.STATUS.name(prefix)}: missing" in capsys.readouterr().out

    assert run_topics(settings, check=False) == 0
    printed = capsys.readouterr().out.splitlines()
    needed = len(all_needs(settings, 1))  # the catalog's and the worker's Faust topics
    assert printed[0].startswith(f"# {needed} topics; replication factor 1")
    assert len(printed) == 1 + needed
    assert any(f"--topic {prefix}smslane-record_by_sid-changelog " in line for line in printed)
    assert all(line.startswith("kafka-topics.sh ") for line in printed[1:])


def test_a_worker_that_may_not_create_topics_stops_at_start_in_one_line(
    kafka_bootstrap: str,
) -> None:
    from schemas.settings import SettingsError
    from streams.app import run_worker

    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = check_only(kafka_bootstrap, prefix)
    with pytest.raises(SettingsError, match=r"^smslane worker: SMSLANE_KAFKA_CREATE_TOPICS=off"):
        run_worker(settings)


def test_a_worker_that_may_not_create_topics_names_missing_changelogs_too(
    kafka_bootstrap: str,
) -> None:
    """Faust creates the tables' changelogs itself: with creation off the worker checks
    them before Faust starts, instead of letting it run without them."""
    import asyncio

    from schemas.settings import SettingsError
    from streams.app import run_worker

    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(ensure_topics(topics_of(kafka_bootstrap, prefix)))  # by an operator
    settings = check_only(kafka_bootstrap, prefix)
    with pytest.raises(SettingsError, match=f"{prefix}smslane-record_by_sid-changelog"):
        run_worker(settings)
