"""How smslane's topics are replicated: the factor, the configs, the warning, the check."""

from __future__ import annotations

import pytest

from feeds.replication import (
    ReplicationError,
    TopicFound,
    TopicNeed,
    missing_or_different,
    replication_configs,
    replication_factor,
    short_replicated,
    short_replicated_warning,
)
from feeds.topics import catalog_needs
from schemas.topics import Topics


@pytest.mark.parametrize(
    ("asked", "brokers", "factor"),
    [(None, 1, 1), (None, 2, 2), (None, 3, 3), (None, 6, 3), (1, 3, 1), (5, 6, 5), (3, 3, 3)],
)
def test_the_factor_is_the_setting_or_3_or_the_brokers_when_fewer(
    asked: int | None, brokers: int, factor: int
) -> None:
    assert replication_factor(asked, brokers) == factor


def test_a_factor_above_the_broker_count_is_refused_naming_the_setting() -> None:
    with pytest.raises(ReplicationError, match=r"SMSLANE_KAFKA_REPLICATION_FACTOR=3 .* 2 broker"):
        replication_factor(3, 2)


@pytest.mark.parametrize(
    ("factor", "configs"),
    [(1, {}), (2, {}), (3, {"min.insync.replicas": "2"}), (5, {"min.insync.replicas": "2"})],
)
def test_min_insync_replicas_is_2_from_3_replicas(factor: int, configs: dict[str, str]) -> None:
    assert replication_configs(factor) == configs


def test_every_catalog_topic_gets_the_factor_and_its_own_configs_plus_min_insync() -> None:
    needs = {need.name: need for need in catalog_needs("p.", 6, 3)}
    assert set(needs) == {spec.name("p.") for spec in Topics.all()}
    status = needs[Topics.STATUS.name("p.")]
    assert (status.partitions, status.replication) == (6, 3)
    assert status.configs == {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "86400000",
        "min.insync.replicas": "2",
    }
    assert needs[Topics.SEND_REPLIES.name("p.")].partitions == Topics.SEND_REPLIES.partitions
    assert "min.insync.replicas" not in catalog_needs("p.", 6, 1)[0].configs


def test_topics_short_of_the_factor_are_named_in_one_warning_with_the_fix() -> None:
    found = {
        "sms.status": TopicFound("sms.status", 4, 1),
        "sms.created": TopicFound("sms.created", 4, 3),
        "sms.callbacks": TopicFound("sms.callbacks", 4, 2),
    }
    short = short_replicated(found, 3)
    assert [t.name for t in short] == ["sms.callbacks", "sms.status"]
    warning = short_replicated_warning(short, 3)
    assert warning.startswith(
        "2 topic(s) have fewer than 3 replicas: sms.callbacks (2 replica(s)), "
        "sms.status (1 replica(s))."
    )
    assert "smslane does not move data itself" in warning
    assert "kafka-reassign-partitions.sh" in warning and "--execute" in warning
    assert "min.insync.replicas=2" in warning


def test_a_single_broker_has_no_short_replicated_topic() -> None:
    assert short_replicated({"sms.status": TopicFound("sms.status", 4, 1)}, 1) == []


def test_the_check_names_missing_and_different_topics() -> None:
    needs = [
        TopicNeed("a", 4, 3),
        TopicNeed("b", 4, 3),
        TopicNeed("c", 4, 3),
        TopicNeed("d", 4, 3),
    ]
    found = {
        "b": TopicFound("b", 2, 3),
        "c": TopicFound("c", 4, 1),
        "d": TopicFound("d", 4, 3),
    }
    assert missing_or_different(needs, found) == [
        "a: missing",
        "b: 2 partition(s), smslane needs 4",
        "c: 1 replica(s), smslane asks 3",
    ]


def test_the_create_command_names_everything_an_operator_needs() -> None:
    need = TopicNeed("sms.status", 4, 3, {"min.insync.replicas": "2", "cleanup.policy": "compact"})
    assert need.create_command("k1:9092") == (
        "kafka-topics.sh --bootstrap-server k1:9092 --create --topic sms.status --partitions 4 "
        "--replication-factor 3 --config cleanup.policy=compact --config min.insync.replicas=2"
    )
