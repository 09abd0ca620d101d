"""``smslane secrets rotate``: seal every stored subaccount secret again with the newest key.

The config topic is compacted: its *live head* is the latest record of each key. The rotation
reads the topic from offset 0 to its end, and for every subaccount whose latest record is not
sealed with the first key of ``SMSLANE_SECRET_KEYS`` (sealed with an older key, or written in
clear before tokens were sealed) writes a new record, sealed with the first key. It then reads
the topic again and checks that no subaccount's latest record needs an older key.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from feeds import kafka_clients
from feeds.producer import ReplacingProducer
from feeds.secret_box import VARIABLE, SecretBox, Undecryptable
from schemas.config import ConfigChange, SealedSubaccount, config_key
from schemas.settings import Settings, require_secret_keys
from schemas.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class Rotation:
    """What a rotation found and did, by subaccount SID."""

    rotated: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    undecryptable: list[str] = field(default_factory=list)


async def live_subaccounts(settings: Settings) -> dict[str, SealedSubaccount]:
    """The latest record of every subaccount on the config topic (its live head)."""
    tp = TopicPartition(Topics.CONFIG.name(settings.topic_prefix), 0)
    consumer = kafka_clients.consumer(settings, enable_auto_commit=False)
    await consumer.start()
    latest: dict[str, SealedSubaccount | None] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000)
            for record in batches.get(tp, ()):
                key = record.key.decode(errors="replace") if record.key else ""
                if not key.startswith("subaccount:"):
                    continue
                latest[key] = _subaccount(record.value, key, record.offset)
    finally:
        await consumer.stop()
    return {e.account_sid: e for e in latest.values() if e is not None}


def _subaccount(value: bytes | None, key: str, offset: int) -> SealedSubaccount | None:
    if value is None:
        return None  # deleted
    try:
        entity = ConfigChange.model_validate_json(value).entity
    except ValidationError:
        log.warning("skipping malformed config record key=%s offset=%d", key, offset)
        return None
    return entity if isinstance(entity, SealedSubaccount) else None


def plan(
    box: SecretBox, live: dict[str, SealedSubaccount]
) -> tuple[Rotation, list[SealedSubaccount]]:
    """Which subaccounts need a new record, and those records (pure: no I/O)."""
    result, records = Rotation(), []
    for sid, entity in sorted(live.items()):
        sealed = entity.sealed_auth_token
        if sealed is not None and box.is_newest(sealed):
            result.current.append(sid)
            continue
        try:
            token = entity.auth_token if sealed is None else box.open(sealed)
        except Undecryptable:
            result.undecryptable.append(sid)
            continue
        assert token is not None  # a record has one or the other (SealedSubaccount checks)
        records.append(
            entity.model_copy(update={"sealed_auth_token": box.seal(token), "auth_token": None})
        )
        result.rotated.append(sid)
    return result, records


async def rotate(settings: Settings) -> Rotation:
    """Write the new records, then check the live head; raise RuntimeError if it fails."""
    box = SecretBox(settings.secret_keys)
    result, records = plan(box, await live_subaccounts(settings))
    if records:
        new_producer = functools.partial(
            kafka_clients.producer, settings, acks="all", enable_idempotence=True
        )
        producer = ReplacingProducer(new_producer, "secrets rotate")
        await producer.start()
        try:
            topic = Topics.CONFIG.name(settings.topic_prefix)
            for entity in records:
                value = ConfigChange(entity=entity).model_dump_json().encode()
                await producer.send_and_wait(
                    topic, value, key=config_key(entity).encode(), partition=0
                )
        finally:
            await producer.stop()
    _, left = plan(box, await live_subaccounts(settings))
    if left:
        stale = ", ".join(e.account_sid for e in left)
        raise RuntimeError(f"records still under an older key after the rotation: {stale}")
    return result


def run_rotate(settings: Settings) -> int:
    """The command: exit 0 done, 1 when a subaccount cannot be decrypted or Kafka fails."""
    require_secret_keys(settings)
    try:
        result = asyncio.run(rotate(settings))
    except (KafkaError, OSError, RuntimeError) as exc:
        sys.stderr.write(f"smslane secrets rotate: {exc}\n")
        return 1
    sys.stdout.write(
        f"{len(result.rotated)} subaccount(s) sealed with the first key, "
        f"{len(result.current)} already were\n"
    )
    if result.undecryptable:
        sys.stderr.write(
            f"smslane secrets rotate: no key in {VARIABLE} decrypts the auth token of "
            f"{', '.join(result.undecryptable)}: add the key it was sealed with, or put the "
            "token again (PUT /v1/admin/twilio-subaccounts/{sid})\n"
        )
        return 1
    return 0
