"""Every Kafka topic of smslane in one place: name, key, value type, partitions, cleanup.

Names get ``SMSLANE_TOPIC_PREFIX`` in front (empty by default), so the downstream topic is
exactly ``sms.status`` unless an operator chooses otherwise; tests use a unique prefix each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import TypeAdapter

from schemas.config import ConfigChange
from schemas.events import (
    LifecycleControl,
    RawCallback,
    ReconcileOrder,
    SendReply,
    SendRequestsValue,
)
from schemas.records import SmsRecord, SmsStatusEvent

T = TypeVar("T")


class Codec(Generic[T]):
    """The one way a topic's (or a table's) values are written and read: JSON of ``T``."""

    def __init__(self, value_type: Any) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(value_type)

    def encode(self, value: T) -> bytes:
        return self._adapter.dump_json(value)

    def decode(self, data: bytes) -> T:
        """Raises ``pydantic.ValidationError`` when ``data`` is not a ``T``."""
        return self._adapter.validate_json(data)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its base name, what its key is, its value type and its layout."""

    base_name: str
    key: str
    #: A model, or a tagged union of models; :attr:`codec` reads and writes it.
    value_type: Any
    #: ``None`` means SMSLANE_TOPIC_PARTITIONS (the per-message topics share it, so that
    #: Faust tables fed by them are co-partitioned).
    partitions: int | None
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = None
    #: Further topic configs, e.g. the broker's clock for record timestamps.
    configs: tuple[tuple[str, str], ...] = ()

    def name(self, prefix: str = "") -> str:
        return f"{prefix}{self.base_name}"

    @cached_property
    def codec(self) -> Codec[Any]:
        return Codec(self.value_type)


class Topics:
    """The topic catalog. ``Topics.all()`` is what start-up creates."""

    #: Stamped by the broker (LogAppendTime): the worker's send deadline uses that clock.
    SEND_REQUESTS: ClassVar[TopicSpec] = TopicSpec(
        "sms.send-requests", "request_id", SendRequestsValue, None,
        configs=(("message.timestamp.type", "LogAppendTime"),),
    )  # fmt: skip
    SEND_REPLIES: ClassVar[TopicSpec] = TopicSpec(
        "sms.send-replies", "correlation_id", SendReply, 1, retention_ms=3_600_000
    )
    #: Interrupted requests to reconcile with Twilio, keyed by destination number.
    RECONCILE: ClassVar[TopicSpec] = TopicSpec("sms.reconcile", "to_number", ReconcileOrder, None)
    CREATED: ClassVar[TopicSpec] = TopicSpec("sms.created", "message_sid", SmsRecord, None)
    CALLBACKS: ClassVar[TopicSpec] = TopicSpec("sms.callbacks", "MessageSid", RawCallback, None)
    STATUS: ClassVar[TopicSpec] = TopicSpec("sms.status", "record id", SmsStatusEvent, None)
    LIFECYCLE_CONTROL: ClassVar[TopicSpec] = TopicSpec(
        "sms.lifecycle-control", "message_sid", LifecycleControl, None
    )
    #: Read from its start by every process at every start (feeds.config). The name is
    #: historical (it was a Faust GlobalTable's changelog) and kept so deployments keep it.
    CONFIG: ClassVar[TopicSpec] = TopicSpec(
        "smslane-config-changelog", "entity key", ConfigChange, 1, cleanup_policy="compact"
    )

    @classmethod
    def all(cls) -> tuple[TopicSpec, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, TopicSpec))


async def ensure_topics(
    bootstrap_servers: str, prefix: str, partitions: int, *, timeout_s: float = 30.0
) -> list[str]:
    """Create every catalog topic that does not exist yet; return the names created.

    Idempotent: existing topics are left as they are, and a concurrent creator is fine.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for spec in Topics.all():
            name = spec.name(prefix)
            if name in existing:
                continue
            configs: dict[str, str] = {"cleanup.policy": spec.cleanup_policy}
            if spec.retention_ms is not None:
                configs["retention.ms"] = str(spec.retention_ms)
            configs.update(spec.configs)
            wanted.append(NewTopic(name, spec.partitions or partitions, 1, topic_configs=configs))
        created = []
        for topic in wanted:  # one by one: a concurrent creator fails only its own topic
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()
