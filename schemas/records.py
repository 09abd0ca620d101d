"""The SMS record of ``sms-api.md`` and the status rules every part of smslane shares."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class SmsStatus(StrEnum):
    """The record's delivery status (``sms-api.md``, Delivery Status Lifecycle)."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"

    @property
    def rank(self) -> int:
        """0 pending, 1 sent, 2 terminal: only a higher rank changes a status."""
        return STATUS_RANK[self]

    @property
    def terminal(self) -> bool:
        return STATUS_RANK[self] == 2


STATUS_RANK: dict[SmsStatus, int] = {
    SmsStatus.PENDING: 0,
    SmsStatus.SENT: 1,
    SmsStatus.DELIVERED: 2,
    SmsStatus.FAILED: 2,
    SmsStatus.UNDELIVERED: 2,
}

#: Twilio's ``MessageStatus`` onto the record's status (contract, "Status callbacks").
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


class SmsRecord(BaseModel):
    """One outbound SMS, exactly the fields of ``sms-api.md``'s 201 answer."""

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
