"""The SMS record of ``sms-api.md`` and the status rules every part of smslane shares."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class SmsStatus(StrEnum):
    """The record's delivery status (``sms-api.md``, Delivery Status Lifecycle).

    ``scheduled`` and ``canceled`` are reached only by a message sent with ``send_at``.
    """

    SCHEDULED = "scheduled"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"

    @property
    def rank(self) -> int:
        """0 scheduled, 1 pending, 2 sent, 3 terminal: only a higher rank changes a status."""
        return STATUS_RANK[self]

    @property
    def terminal(self) -> bool:
        return STATUS_RANK[self] == TERMINAL_RANK


TERMINAL_RANK = 3
STATUS_RANK: dict[SmsStatus, int] = {
    SmsStatus.SCHEDULED: 0,
    SmsStatus.PENDING: 1,
    SmsStatus.SENT: 2,
    SmsStatus.DELIVERED: TERMINAL_RANK,
    SmsStatus.FAILED: TERMINAL_RANK,
    SmsStatus.UNDELIVERED: TERMINAL_RANK,
    SmsStatus.CANCELED: TERMINAL_RANK,
}

#: Twilio's ``MessageStatus`` onto the status of a record sent without ``send_at`` (contract,
#: "Status callbacks"); :func:`record_status` is the mapping for every record.
TWILIO_STATUS_MAP: dict[str, SmsStatus] = {
    "accepted": SmsStatus.PENDING,
    "scheduled": SmsStatus.PENDING,
    "queued": SmsStatus.PENDING,
    "sending": SmsStatus.PENDING,
    "sent": SmsStatus.SENT,
    "delivered": SmsStatus.DELIVERED,
    "read": SmsStatus.DELIVERED,
    "undelivered": SmsStatus.UNDELIVERED,
    "failed": SmsStatus.FAILED,
    "canceled": SmsStatus.FAILED,
}

#: Where a message sent with ``send_at`` differs: Twilio's own scheduling statuses show.
_SCHEDULED_STATUS_MAP: dict[str, SmsStatus] = {
    "scheduled": SmsStatus.SCHEDULED,
    "canceled": SmsStatus.CANCELED,
}


def record_status(twilio_status: str, *, scheduled: bool) -> SmsStatus | None:
    """The record's status for Twilio's ``twilio_status`` (lower-case), or None when the
    contract does not know it. ``scheduled``: the record was sent with ``send_at``."""
    if scheduled and twilio_status in _SCHEDULED_STATUS_MAP:
        return _SCHEDULED_STATUS_MAP[twilio_status]
    return TWILIO_STATUS_MAP.get(twilio_status)


class SmsRecord(BaseModel):
    """One outbound SMS: the fields of ``sms-api.md``'s 201 answer and the contract's
    scheduling fields (``send_at``, ``validity_period``, ``client_reference``, ``canceled_at``)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    use_case_id: UUID
    message_sid: str
    from_number: str | None = None
    to_number: str
    body: str
    num_segments: int | None = None
    status: SmsStatus = SmsStatus.PENDING
    handed_off_at: datetime | None = None
    delivered_at: datetime | None = None
    errored_at: datetime | None = None
    error_code: int | None = None
    created_at: datetime
    updated_at: datetime
    #: When Twilio is to send it (UTC); None for a message sent at once.
    send_at: datetime | None = None
    #: Twilio's ``ValidityPeriod`` in seconds, as requested.
    validity_period: int | None = None
    #: The client's own reference, never interpreted.
    client_reference: str | None = None
    #: When the scheduled message was canceled; None until then.
    canceled_at: datetime | None = None

    @property
    def scheduled(self) -> bool:
        """Whether it was sent with ``send_at`` (Twilio's scheduling statuses apply)."""
        return self.send_at is not None

    @property
    def quiet_since(self) -> datetime:
        """Where eviction's and repair's clocks start: see :func:`quiet_since`."""
        return quiet_since(self.updated_at, self.send_at)


def quiet_since(updated_at: datetime, send_at: datetime | None) -> datetime:
    """The later of a record's last change and its ``send_at``: nothing is expected of a
    scheduled message before its time, so it is neither stale nor due for repair before."""
    if send_at is None:
        return updated_at
    return max(updated_at, send_at)


class SmsStatusEvent(SmsRecord):
    """A value of the ``sms.status`` topic: the record after a change, and its ``version``.

    Keyed by the record's ``id``. ``version`` is 1 for the created record and grows by one
    with each change, so consumers can drop duplicates and rely on per-key order.
    """

    version: int

    def record(self) -> SmsRecord:
        return SmsRecord.model_validate(self.model_dump(exclude={"version"}))


class SmsCreated(SmsRecord):
    """A value of the ``sms.created`` topic: the record as created, and where it was sent from.

    ``account_sid`` and ``messaging_service_sid`` are the subaccount and Messaging Service the
    message was created with, as they were then: the lifecycle keeps them beside the record
    (never in it: they are not part of the public record) so that status callbacks from
    another subaccount are dropped and status repair asks the right account even after the
    use case was changed. ``None`` on events written before they were carried, and on
    messages adopted by reconciliation without them.
    """

    account_sid: str | None = None
    messaging_service_sid: str | None = None

    def record(self) -> SmsRecord:
        return SmsRecord.model_validate(
            self.model_dump(exclude={"account_sid", "messaging_service_sid"})
        )
