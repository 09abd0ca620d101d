"""Plain factories for the pure stream tests: sensible defaults, any field overridable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from feeds.secret_box import SecretBox, new_key
from schemas.config import (
    A2pCampaignStatus,
    Brand,
    BrandStatus,
    NumberType,
    SealedSubaccount,
    SenderNumber,
    Subaccount,
    UseCase,
)
from schemas.records import SmsRecord
from streams.lifecycle.tables import LifecycleState, RecordHead

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
USE_CASE_ID = UUID("6f1c2b9e-8d4a-4c3e-9b7a-2f5d1e0c4a11")
MESSAGE_SID = "SM0123456789abcdef0123456789abcdef"


#: The secret key of the pure tests' configuration views.
TEST_BOX = SecretBox([new_key()])


def sealed(account: Subaccount, box: SecretBox = TEST_BOX) -> SealedSubaccount:
    """``account`` as the config topic holds it: its auth token sealed with ``box``."""
    return SealedSubaccount(
        **account.model_dump(exclude={"auth_token"}),
        sealed_auth_token=box.seal(account.auth_token),
    )


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``: readable timestamps for tests."""
    return T0 + timedelta(seconds=seconds)


def create_record(**overrides: Any) -> SmsRecord:
    """A freshly sent record (``pending``, created at ``T0``)."""
    values: dict[str, Any] = {
        "id": UUID("0b7e4c1a-5d2f-4e8b-a9c3-1f6d2e8b7a40"),
        "use_case_id": USE_CASE_ID,
        "message_sid": MESSAGE_SID,
        "to_number": "+14155552671",
        "body": "Your appointment is tomorrow at 9:30.",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return SmsRecord(**values)


def create_use_case(**overrides: Any) -> UseCase:
    """An active use case with a verified campaign, permitted to send to US and CA."""
    values: dict[str, Any] = {
        "id": USE_CASE_ID,
        "name": "Appointment reminders",
        "account_sid": "AC" + "0" * 32,
        "messaging_service_sid": "MG" + "0" * 32,
        "brand_id": "BN" + "0" * 32,
        "a2p_campaign_status": A2pCampaignStatus.VERIFIED,
        "permitted_regions": ("US", "CA"),
        "active": True,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return UseCase(**values)


def create_brand(**overrides: Any) -> Brand:
    """A verified brand, the one behind :func:`create_use_case`."""
    values: dict[str, Any] = {
        "brand_id": "BN" + "0" * 32,
        "name": "Acme Dental",
        "status": BrandStatus.VERIFIED,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Brand(**values)


def create_sender(phone_number: str = "+14155550100", **overrides: Any) -> SenderNumber:
    """A sender in the pool of :func:`create_use_case`; a US long code unless overridden."""
    values: dict[str, Any] = {
        "use_case_id": USE_CASE_ID,
        "phone_number": phone_number,
        "number_type": NumberType.LONG_CODE,
        "created_at": T0,
    }
    values.update(overrides)
    return SenderNumber(**values)


class RecordingTopic:
    """A Faust topic's ``send`` in memory: every (key, value) sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, *, key: bytes, value: bytes, force: bool = False) -> None:
        self.sent.append((key, value))


class RecordsOf:
    """``record_by_sid`` as the timers read it (heads, then whole states), over records."""

    def __init__(self, *records: SmsRecord) -> None:
        self.states = {r.message_sid.encode(): LifecycleState(record=r, version=1) for r in records}

    def scan_heads(self) -> Iterator[tuple[bytes, RecordHead]]:
        for sid, state in self.states.items():
            r = state.record
            yield sid, RecordHead(status=r.status, updated_at=r.updated_at, send_at=r.send_at)

    def get(self, sid: bytes) -> LifecycleState | None:
        return self.states.get(sid)
