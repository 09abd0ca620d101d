"""The ingress's producer, refused by the broker for out-of-order sequences, is replaced.

aiokafka's idempotent producer then refuses every later write to that partition: an ingress
answered ``OutOfOrderSequenceNumber`` to 4,054 writes in a row after a broker restart, until
it was restarted. Here the real broker refuses for the same reason (the producer's sequence
for the partition is put ahead of the broker's, as a batch lost in a leader change leaves
it), and the ingress's next writes must be accepted without a restart.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import OutOfOrderSequenceNumber

from feeds.secret_box import new_key
from feeds.topics import ensure_topics
from ingress.bridge import KafkaBridge
from schemas.events import RawCallback
from schemas.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def bridge(kafka_bootstrap: str) -> AsyncIterator[KafkaBridge]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        topic_partitions=1,
        secret_keys=(new_key(),),
    )
    await ensure_topics(settings)
    running = KafkaBridge(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def kafka_producer(bridge: KafkaBridge) -> AIOKafkaProducer:
    """The aiokafka producer the bridge writes with now."""
    held: Any = bridge._producer
    return held if isinstance(held, AIOKafkaProducer) else held.producer


def desynchronize(producer: AIOKafkaProducer, topic: str) -> None:
    """Put the producer's next sequence for ``topic``'s partition 0 ahead of the broker's."""
    producer._txn_manager.increment_sequence_number(TopicPartition(topic, 0), 5)


def callback(status: str) -> RawCallback:
    sid = "SM" + uuid.uuid4().hex
    params = [("MessageSid", sid), ("MessageStatus", status)]
    return RawCallback.from_form(uuid.uuid4(), datetime.now(UTC), params)


async def test_a_producer_refused_for_out_of_order_sequences_is_replaced(
    bridge: KafkaBridge,
) -> None:
    await bridge.publish_callback("SM1", callback("sent"))
    broken = kafka_producer(bridge)
    desynchronize(broken, bridge.callbacks_topic)
    # The broker refuses it, and it stays refused: what the ingress kept answering.
    for _ in range(2):
        with pytest.raises(OutOfOrderSequenceNumber):
            await broken.send_and_wait(bridge.callbacks_topic, b"{}", key=b"SM2", partition=0)

    for status in ("delivered", "read"):  # accepted again, no restart
        await bridge.publish_callback("SM3", callback(status))
    assert kafka_producer(bridge) is not broken


async def test_a_write_refused_for_out_of_order_sequences_is_sent_again_once(
    bridge: KafkaBridge,
) -> None:
    """The write that met the refusal is itself sent again on the new producer, so the
    request that made it is answered, not 504; the broker had refused it, so it lands once."""
    await bridge.publish_callback("SM1", callback("sent"))  # offset 0
    desynchronize(kafka_producer(bridge), bridge.callbacks_topic)
    value = callback("delivered").model_dump_json().encode()
    assert await bridge._send(bridge.callbacks_topic, b"SM4", value) == 1
