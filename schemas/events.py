"""Events that cross Kafka between the ingress and the worker."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from schemas.records import SmsRecord


class SendRequest(BaseModel):
    """A validated ``POST /v1/sms/``, keyed by ``request_id`` on ``sms.send-requests``.

    ``request_id`` is derived from (API key, ``Idempotency-Key``) when the header is present,
    so a replay lands on the same partition and the same table entry; otherwise it is random.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["send"] = "send"
    request_id: UUID
    idempotency_key: str | None = None
    body_hash: str
    use_case_id: UUID
    to_phone_number: str
    message: str
    received_at: datetime
    reply_topic: str
    correlation_id: str
    #: Offset of ``config.changes`` the ingress had applied: the worker applies at least this
    #: much configuration before it checks the request (read-your-writes for admin calls).
    config_offset: int = -1
    #: When Twilio is to send it (UTC, checked against the window by the ingress).
    send_at: datetime | None = None
    #: Twilio's ``ValidityPeriod``, seconds.
    validity_period: int | None = None
    client_reference: str | None = None


class ExpireOutcome(BaseModel):
    """An order on ``sms.send-requests``, keyed by a request id: forget that request's
    outcome if it is older than the idempotency window at ``at``.

    The send agent's hourly timer sends these so that the deletion happens inside stream
    processing, on the partition that owns the key.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["expire_outcome"] = "expire_outcome"
    at: datetime


class Reconciled(BaseModel):
    """On ``sms.send-requests``, keyed by a request id: what reconciliation with Twilio found
    for the request whose in-flight marker dates from ``marker_at``.

    ``message_sid`` is the message Twilio created for it (adopt it); ``None`` means the
    first attempt never reached Twilio and can no longer arrive: send it once.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["reconciled"] = "reconciled"
    request_id: UUID
    marker_at: datetime
    message_sid: str | None


class SendTarget(BaseModel):
    """Where a request's create call went: the subaccount, the Messaging Service and the
    destination (E.164) its checks chose. Kept in the in-flight marker, so that
    reconciliation looks where the message was sent, not where the use case points today."""

    model_config = ConfigDict(frozen=True)

    account_sid: str
    messaging_service_sid: str
    to: str


class ReconcileOrder(BaseModel):
    """On ``sms.reconcile``, keyed by the destination (E.164): find out whether Twilio
    created the message of an interrupted request. Keyed by the destination so that one
    partition sees every interrupted request to a number, and no Twilio message is adopted
    by two of them.

    ``target`` is the marker's snapshot of where the create call went; ``None`` for a marker
    written before markers carried it (reconciled with today's configuration)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["order"] = "order"
    request: SendRequest
    marker_at: datetime
    target: SendTarget | None = None


class SidClaimed(BaseModel):
    """On ``sms.reconcile``, keyed by the destination (E.164): the send path created
    ``message_sid`` for ``request_id``. Reconciliation never adopts a claimed message for
    another request."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["claimed"] = "claimed"
    to: str
    #: SHA-256 (hex) of the message's body.
    body_digest: str
    message_sid: str
    request_id: UUID
    at: datetime


def _kind(value: Any, unmarked: str) -> str:
    """The ``kind`` of a topic's value; ``unmarked`` for values written before ``kind``."""
    if isinstance(value, dict):
        return str(value.get("kind", unmarked))
    return str(getattr(value, "kind", unmarked))


class CancelRequest(BaseModel):
    """A ``POST /v1/sms/{id}/cancel`` on ``sms.send-requests``, keyed by the record's id:
    cancel the scheduled message at Twilio; answered like a send, on ``reply_topic``.

    ``record`` is the record as the ingress read it (``scheduled``); ``received_at`` the
    ingress's clock. ``reason`` is set when smslane itself cancels (a policy change), and
    then nobody waits for the answer (``reply_topic`` empty)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["cancel"] = "cancel"
    record: SmsRecord
    received_at: datetime
    reply_topic: str = ""
    correlation_id: str = ""
    reason: str | None = None


def _send_topic_kind(value: Any) -> str:
    """The ``kind`` of a value of ``sms.send-requests`` (older requests are sends)."""
    return _kind(value, "send")


def _reconcile_topic_kind(value: Any) -> str:
    """The ``kind`` of a value of ``sms.reconcile`` (older values are orders)."""
    return _kind(value, "order")


#: A value of ``sms.reconcile``: an order to reconcile, or a SID the send path created.
ReconcileValue = Annotated[
    Annotated[ReconcileOrder, Tag("order")] | Annotated[SidClaimed, Tag("claimed")],
    Discriminator(_reconcile_topic_kind),
]


#: A value of ``sms.send-requests``: a send request, an expiry order, a reconciliation
#: result or a cancel, told apart by ``kind``.
SendRequestsValue = Annotated[
    Annotated[SendRequest, Tag("send")]
    | Annotated[ExpireOutcome, Tag("expire_outcome")]
    | Annotated[Reconciled, Tag("reconciled")]
    | Annotated[CancelRequest, Tag("cancel")],
    Discriminator(_send_topic_kind),
]


class ErrorBody(BaseModel):
    """The body of every error answer: a sentence for a person and a stable code."""

    model_config = ConfigDict(frozen=True)

    detail: str
    code: str


class SendReply(BaseModel):
    """The worker's answer to a :class:`SendRequest`, keyed by ``correlation_id``."""

    model_config = ConfigDict(frozen=True)

    correlation_id: str
    request_id: UUID
    status_code: int
    record: SmsRecord | None = None
    error: ErrorBody | None = None
    retry_after: int | None = None


class RawCallback(BaseModel):
    """A Twilio status callback as received, keyed by ``MessageSid`` on ``sms.callbacks``.

    ``params`` holds every form field Twilio sent (it adds new ones without notice), with the
    *last* value of a key sent more than once (as Starlette's form and the ingress before it
    read them); ``repeated`` holds every value, in order, of each such key, so nothing signed
    is lost. ``received_at`` is the ingress's clock when the request arrived, the source of
    the record's timestamps so that a replay rebuilds identical records.
    """

    model_config = ConfigDict(frozen=True)

    receipt_id: UUID
    received_at: datetime
    params: dict[str, str]
    #: Absent from callbacks stored before it existed; empty when no key was repeated.
    repeated: dict[str, list[str]] = Field(default_factory=dict)

    @classmethod
    def from_form(
        cls, receipt_id: UUID, received_at: datetime, fields: Iterable[tuple[str, str]]
    ) -> RawCallback:
        """The callback of form ``fields`` in the order received, repeated keys included."""
        values: dict[str, list[str]] = {}
        for key, value in fields:
            values.setdefault(key, []).append(value)
        return cls(
            receipt_id=receipt_id,
            received_at=received_at,
            params={key: every[-1] for key, every in values.items()},
            repeated={key: every for key, every in values.items() if len(every) > 1},
        )


class LifecycleControl(BaseModel):
    """A housekeeping order for the lifecycle agent, keyed by ``message_sid``.

    Sent by the worker's own timers onto ``sms.lifecycle-control`` so that table deletions
    happen inside stream processing, on the partition that owns the key.
    """

    model_config = ConfigDict(frozen=True)

    action: Literal["expire_held", "evict"]
    #: When the timer decided it; the agent re-checks the condition against this time.
    at: datetime
