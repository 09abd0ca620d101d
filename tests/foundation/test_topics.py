"""The catalog's topic configs, on a real broker: new topics get them, existing ones are
brought to them key by key (an operator's other overrides stay)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from feeds.kafka_admin import config_changes
from feeds.topics import ensure_topics
from schemas.settings import Settings
from schemas.topics import STATUS_MIN_COMPACTION_LAG_MS, Topics


def test_sms_status_is_compacted_and_keeps_a_day_of_every_version() -> None:
    assert Topics.STATUS.topic_configs() == {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": str(STATUS_MIN_COMPACTION_LAG_MS),
    }
    assert STATUS_MIN_COMPACTION_LAG_MS == 24 * 3600 * 1000
    assert Topics.SEND_REPLIES.topic_configs()["retention.ms"] == "3600000"
    assert Topics.SEND_REQUESTS.topic_configs() == {
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",  # the worker's deadline clock
    }


def topic_settings(bootstrap: str, prefix: str) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, topic_partitions=2)


def test_config_changes_are_the_keys_whose_value_differs() -> None:
    wanted = {"a": {"cleanup.policy": "compact", "x": "1"}, "b": {"cleanup.policy": "delete"}}
    current: dict[str, dict[str, str | None]] = {
        "a": {"cleanup.policy": "delete", "x": "1"},
        "b": {"cleanup.policy": "delete"},
    }
    assert config_changes(wanted, current) == {"a": {"cleanup.policy": "compact"}}
    assert config_changes(wanted, {}) == wanted


async def configs_of(admin: AIOKafkaAdminClient, topic: str, *keys: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=dict.fromkeys(keys))
    (response,) = await admin.describe_configs([resource])
    ((error_code, _, _, _, entries),) = response.resources
    assert error_code == 0
    return {entry[0]: entry[1] for entry in entries}


async def settled_configs(
    admin: AIOKafkaAdminClient, topic: str, expected: dict[str, str], timeout_s: float = 10.0
) -> dict[str, str]:
    """The topic's configs once they equal ``expected``, or as they are after ``timeout_s``:
    with KRaft a broker learns of a new topic, or of a config change, a moment after the
    controller accepted it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        with contextlib.suppress(AssertionError):
            found = await configs_of(admin, topic, *expected)
            if found == expected or asyncio.get_running_loop().time() > deadline:
                return found
        if asyncio.get_running_loop().time() > deadline:
            return await configs_of(admin, topic, *expected)
        await asyncio.sleep(0.1)


async def until_listed(admin: AIOKafkaAdminClient, topic: str, timeout_s: float = 10.0) -> None:
    """Wait until the broker describes ``topic``'s configs: a topic just created is not
    known everywhere at once (KRaft publishes it a moment later)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=None)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        (response,) = await admin.describe_configs([resource])
        if response.resources[0][0] == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{topic} never described"
        await asyncio.sleep(0.1)


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def prefix(admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    """A unique topic prefix; its topics are deleted afterwards."""
    value = f"t{uuid.uuid4().hex[:12]}."
    yield value
    ours = [name for name in await admin.list_topics() if name.startswith(value)]
    if ours:
        await admin.delete_topics(ours)


@pytest.mark.integration
async def test_new_topics_get_the_catalog_configs(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, prefix: str
) -> None:
    created = await ensure_topics(topic_settings(kafka_bootstrap, prefix))

    assert set(created) == {spec.name(prefix) for spec in Topics.all()}
    wanted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "86400000"}
    status = await settled_configs(admin, Topics.STATUS.name(prefix), wanted)
    assert status == wanted
    replies = await settled_configs(
        admin, Topics.SEND_REPLIES.name(prefix), {"retention.ms": "3600000"}
    )
    assert replies == {"retention.ms": "3600000"}


@pytest.mark.integration
async def test_an_existing_topic_is_brought_to_the_catalog_and_keeps_its_other_overrides(
    kafka_bootstrap: str,
    admin: AIOKafkaAdminClient,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As a deployment from before sms.status was compacted has it, plus an operator's own
    # override that a whole-config replace (legacy AlterConfigs) would silently drop.
    status = Topics.STATUS.name(prefix)
    old = {"cleanup.policy": "delete", "retention.bytes": "987654321"}
    await admin.create_topics([NewTopic(status, 3, 1, topic_configs=old)])
    await until_listed(admin, status)  # brokers learn of a new topic a moment later
    caplog.set_level(logging.INFO, logger="feeds")

    created = await ensure_topics(topic_settings(kafka_bootstrap, prefix))

    assert status not in created
    wanted = {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "86400000",
        "retention.bytes": "987654321",
    }
    assert await settled_configs(admin, status, wanted) == wanted
    changed = [r.getMessage() for r in caplog.records if f"topic {status}:" in r.getMessage()]
    assert sorted(changed) == [
        f"topic {status}: cleanup.policy changed from delete to compact (the topic catalog's)",
        f"topic {status}: min.compaction.lag.ms changed from 0 to 86400000 (the topic catalog's)",
    ]

    caplog.clear()
    await ensure_topics(topic_settings(kafka_bootstrap, prefix))  # aligned: nothing to change
    assert not [r for r in caplog.records if "changed from" in r.getMessage()]
    description = await admin.describe_topics([status])
    assert len(description[0]["partitions"]) == 3  # the layout is left alone
