"""Policy changes reaching scheduled messages: the rule alone, and the timer's steps over a
plain table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import pytest

from schemas.config import Brand, BrandStatus, UseCase
from schemas.events import CancelRequest
from schemas.records import SmsRecord, SmsStatus
from streams.policy.agent import RESCAN_EVERY_S, PolicyCancels
from streams.policy.decision import cancel_reason
from tests.streams.factories import T0, RecordsOf, create_brand, create_record, create_use_case

USE_CASE = create_use_case()
TO = "+14155552671"


@dataclass
class Config:
    use_cases: dict[UUID, UseCase] = field(default_factory=lambda: {USE_CASE.id: USE_CASE})
    brands: dict[str, Brand] = field(
        default_factory=lambda: {USE_CASE.brand_id: create_brand(brand_id=USE_CASE.brand_id)}
    )
    opt_outs: set[tuple[UUID, str]] = field(default_factory=set)
    applied_offset: int = 0

    def opted_out(self, use_case_id: UUID, number: str) -> bool:
        return (use_case_id, number) in self.opt_outs


def scheduled(**overrides: object) -> SmsRecord:
    values: dict[str, object] = {
        "use_case_id": USE_CASE.id, "to_number": TO, "status": SmsStatus.SCHEDULED,
        "send_at": T0 + timedelta(days=1), **overrides,
    }  # fmt: skip
    return create_record(**values)


def test_an_allowed_message_stays() -> None:
    assert cancel_reason(scheduled(), Config()) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.opt_outs.add((USE_CASE.id, TO)), "destination_opted_out"),
        (lambda c: c.use_cases.update({USE_CASE.id: USE_CASE.model_copy(
            update={"active": False})}), "use_case_inactive"),
        (lambda c: c.use_cases.update({USE_CASE.id: USE_CASE.model_copy(
            update={"deleted": True})}), "use_case_deleted"),
        (lambda c: c.use_cases.clear(), "use_case_deleted"),
        (lambda c: c.brands.update({USE_CASE.brand_id: create_brand(
            brand_id=USE_CASE.brand_id, status=BrandStatus.SUSPENDED)}), "brand_suspended"),
    ],
)  # fmt: skip
def test_each_policy_change_cancels(change: object, reason: str) -> None:
    config = Config()
    change(config)  # type: ignore[operator]
    assert cancel_reason(scheduled(), config) == reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_timer_orders_one_cancel_per_disallowed_scheduled_message() -> None:
    config, clock = Config(), Clock()
    opted_out = scheduled(message_sid="SM1")
    records = RecordsOf(opted_out, scheduled(message_sid="SM2", to_number="+14155550000"),
                      create_record(message_sid="SM3", to_number=TO))  # fmt: skip
    orders: list[CancelRequest] = []

    async def order(cancel: CancelRequest) -> None:
        orders.append(cancel)

    policy = PolicyCancels(config, records, order, clock=clock)
    assert await policy.tick() == 0
    config.opt_outs.add((USE_CASE.id, TO))
    assert await policy.tick() == 0  # the configuration has not moved: no look
    config.applied_offset += 1
    assert await policy.tick() == 1
    assert [(o.record, o.reason, o.reply_topic) for o in orders] == [
        (opted_out, "destination_opted_out", "")
    ]
    clock.now += RESCAN_EVERY_S
    assert await policy.tick() == 1  # the cancel did not land: ordered again a minute later
