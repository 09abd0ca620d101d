"""Every Kafka topic of smslane in one place: name, key, value type, partitions, configs.

Names get ``SMSLANE_TOPIC_PREFIX`` in front (empty by default), so the downstream topic is
exactly ``sms.status`` unless an operator chooses otherwise; tests use a unique prefix each.

``sms.status`` is compacted, never deleted by age: the latest version of every record stays
forever, so the store can always be rebuilt from offset 0 (``smslane store rebuild``). Every
version younger than ``STATUS_MIN_COMPACTION_LAG_MS`` (24 h) is kept too, so a consumer that
is less than a day behind still sees each change, not only the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import TypeAdapter

from schemas.config import ConfigChange
from schemas.events import (
    LifecycleControl,
    RawCallback,
    ReconcileValue,
    SendReply,
    SendRequestsValue,
)
from schemas.inbound import InboundMessage
from schemas.records import SmsCreated, SmsStatusEvent
from schemas.webhooks import DeliveryLogEntry, LaneMessage, ReplayOrder

#: How long every version on ``sms.status`` stays before compaction may drop it for a newer
#: one of the same record (Kafka's ``min.compaction.lag.ms``): a day of full history.
STATUS_MIN_COMPACTION_LAG_MS = 24 * 60 * 60 * 1000

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
    #: Other topic-level configs (Kafka's names and string values, e.g. ``retention.ms``).
    configs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def name(self, prefix: str = "") -> str:
        return f"{prefix}{self.base_name}"

    def topic_configs(self) -> dict[str, str]:
        """Every config the catalog sets on this topic, ``cleanup.policy`` included."""
        return {"cleanup.policy": self.cleanup_policy, **self.configs}

    @cached_property
    def codec(self) -> Codec[Any]:
        return Codec(self.value_type)


class Topics:
    """The topic catalog. ``Topics.all()`` is what start-up creates (``feeds.topics``)."""

    #: Stamped by the broker (LogAppendTime): the worker's send deadline uses that clock.
    SEND_REQUESTS: ClassVar[TopicSpec] = TopicSpec(
        "sms.send-requests", "request_id", SendRequestsValue, None,
        configs={"message.timestamp.type": "LogAppendTime"},
    )  # fmt: skip
    SEND_REPLIES: ClassVar[TopicSpec] = TopicSpec(
        "sms.send-replies", "correlation_id", SendReply, 1, configs={"retention.ms": "3600000"}
    )
    #: Interrupted requests to reconcile with Twilio, and the SIDs the send path created
    #: (never adopted by another request), keyed by destination number.
    RECONCILE: ClassVar[TopicSpec] = TopicSpec("sms.reconcile", "to_number", ReconcileValue, None)
    #: Records as created, with the subaccount and service they were sent through.
    CREATED: ClassVar[TopicSpec] = TopicSpec("sms.created", "message_sid", SmsCreated, None)
    CALLBACKS: ClassVar[TopicSpec] = TopicSpec("sms.callbacks", "MessageSid", RawCallback, None)
    STATUS: ClassVar[TopicSpec] = TopicSpec(
        "sms.status", "record id", SmsStatusEvent, None, cleanup_policy="compact",
        configs={"min.compaction.lag.ms": str(STATUS_MIN_COMPACTION_LAG_MS)},
    )  # fmt: skip
    LIFECYCLE_CONTROL: ClassVar[TopicSpec] = TopicSpec(
        "sms.lifecycle-control", "message_sid", LifecycleControl, None
    )
    #: Every inbound SMS (Twilio's incoming-message webhook), keyed by the sender (``From``):
    #: downstream consumers read it, the sink stores it.
    INBOUND: ClassVar[TopicSpec] = TopicSpec("sms.inbound", "From", InboundMessage, None)
    #: Read from its start by every process at every start (feeds.config). The name is
    #: historical (it was a Faust GlobalTable's changelog) and kept so deployments keep it.
    CONFIG: ClassVar[TopicSpec] = TopicSpec(
        "smslane-config-changelog", "entity key", ConfigChange, 1, cleanup_policy="compact"
    )

    #: Webhook events for one endpoint and one record (or inbound message), and the outcomes
    #: of their attempts: the worker's ``webhook_lanes`` table is keyed the same way.
    WEBHOOK_LANES: ClassVar[TopicSpec] = TopicSpec(
        "sms.webhook-lanes", "endpoint id:record id", LaneMessage, None
    )
    #: Every change of a webhook delivery, for the delivery log (the sink keeps the last).
    WEBHOOK_DELIVERIES: ClassVar[TopicSpec] = TopicSpec(
        "sms.webhook-deliveries", "endpoint id:event id", DeliveryLogEntry, None,
        configs={"retention.ms": str(7 * 24 * 3600 * 1000)},
    )  # fmt: skip
    #: Replays asked through the admin API, keyed by endpoint id.
    WEBHOOK_REPLAYS: ClassVar[TopicSpec] = TopicSpec(
        "sms.webhook-replays", "endpoint id", ReplayOrder, 1,
        configs={"retention.ms": str(24 * 3600 * 1000)},
    )  # fmt: skip

    @classmethod
    def all(cls) -> tuple[TopicSpec, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, TopicSpec))
