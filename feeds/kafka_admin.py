"""Read and change topic configs on the broker, one key at a time.

aiokafka's admin client describes configs, but alters them only with the legacy AlterConfigs
request, which replaces a topic's whole set of overrides: every config it does not name
falls back to the broker default, so an operator's own settings would be lost. This module
sends IncrementalAlterConfigs (Kafka 2.3+, KIP-339) instead, which sets only the keys given,
through the admin client's connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String

log = logging.getLogger(__name__)

#: IncrementalAlterConfigs' operation that sets a key (the others delete, append, subtract).
_SET = 0
_TOPIC = int(ConfigResourceType.TOPIC)


class IncrementalAlterConfigsResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "responses",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
            ),
        ),
    )


class IncrementalAlterConfigsRequest_v0(RequestStruct):  # type: ignore[misc]
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IncrementalAlterConfigsResponse_v0
    SCHEMA = Schema(
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                (
                    "configs",
                    Array(
                        ("name", String("utf-8")),
                        ("config_operation", Int8),
                        ("value", String("utf-8")),
                    ),
                ),
            ),
        ),
        ("validate_only", Boolean),
    )


class IncrementalAlterConfigsRequest(Request[IncrementalAlterConfigsRequest_v0]):  # type: ignore[misc]
    API_KEY = 44

    def __init__(self, resources: list[Any], validate_only: bool = False) -> None:
        self._resources = resources
        self._validate_only = validate_only

    def build(
        self, request_struct_class: type[IncrementalAlterConfigsRequest_v0]
    ) -> IncrementalAlterConfigsRequest_v0:
        return request_struct_class(self._resources, self._validate_only)


def config_changes(
    wanted: Mapping[str, Mapping[str, str]], current: Mapping[str, Mapping[str, str | None]]
) -> dict[str, dict[str, str]]:
    """The keys of ``wanted`` (``{topic: {key: value}}``) whose ``current`` value differs."""
    changes: dict[str, dict[str, str]] = {}
    for name, configs in wanted.items():
        have = current.get(name, {})
        differing = {key: value for key, value in configs.items() if have.get(key) != value}
        if differing:
            changes[name] = differing
    return changes


async def align_topic_configs(
    admin: AIOKafkaAdminClient, wanted: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Set on each existing topic the keys of ``wanted`` it holds otherwise; log and return
    what changed. A broker that refuses (e.g. no ALTER_CONFIGS permission) is logged, not
    raised: the topics still work, without these guarantees until an operator sets them."""
    try:
        current = await describe_topic_configs(admin, wanted)
        changes = config_changes(wanted, current)
        await set_topic_configs(admin, changes)
    except KafkaError as exc:
        log.warning("could not bring existing topics to the catalog's configs: %s", exc)
        return {}
    for name, configs in changes.items():
        for key, value in configs.items():
            log.info(
                "topic %s: %s changed from %s to %s (the topic catalog's)",
                name, key, current[name].get(key), value,
                extra={"topic": name, "config": key, "old": current[name].get(key), "new": value},
            )  # fmt: skip
    return changes


async def describe_topic_configs(
    admin: AIOKafkaAdminClient, keys_by_topic: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, str | None]]:
    """The current value of the given config keys of each topic (defaults included)."""
    if not keys_by_topic:
        return {}
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(keys))
        for name, keys in keys_by_topic.items()
    ]
    found: dict[str, dict[str, str | None]] = {}
    for response in await admin.describe_configs(resources):
        for error_code, message, _type, name, entries in response.resources:
            _raise_for(error_code, name, message)
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def set_topic_configs(
    admin: AIOKafkaAdminClient, configs_by_topic: Mapping[str, Mapping[str, str]]
) -> None:
    """Set these config keys on each topic, leaving its other overrides as they are."""
    resources = [
        (_TOPIC, name, [(key, _SET, value) for key, value in configs.items()])
        for name, configs in configs_by_topic.items()
        if configs
    ]
    if not resources:
        return
    # A topic's configs can be altered through any broker (it forwards to the controller).
    response = await admin._send_request(IncrementalAlterConfigsRequest(resources))
    for error_code, message, _type, name in response.responses:
        _raise_for(error_code, name, message)


def _raise_for(error_code: int, name: str, message: str | None) -> None:
    if error_code:
        error_class = for_code(error_code)
        raise error_class(f"topic {name}: {message or error_class.__name__}")
