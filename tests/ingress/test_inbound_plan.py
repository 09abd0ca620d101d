"""Which use cases an inbound message concerns, and which one owns it (``ingress.inbound``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ingress.inbound import owning_use_case, use_cases_for
from schemas.config import A2pCampaignStatus, NumberType, SenderNumber, UseCase
from tests.feeds.test_config_opt_outs import View

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def use_case(service: str, *, deleted: bool = False, minute: int = 0) -> UseCase:
    stamp = NOW.replace(minute=minute)
    return UseCase(
        id=uuid.uuid4(), name="n", account_sid="AC1", messaging_service_sid=service,
        brand_id="b", a2p_campaign_status=A2pCampaignStatus.VERIFIED, permitted_regions=("US",),
        active=True, deleted=deleted, created_at=stamp, updated_at=stamp,
    )  # fmt: skip


def test_an_inbound_messages_use_cases_and_owner() -> None:
    feed = View()
    newer, older = use_case("MG1", minute=5), use_case("MG1", minute=1)
    gone, elsewhere = use_case("MG1", deleted=True), use_case("MG2")
    for case in (newer, older, gone, elsewhere):
        feed.put(case)
    pool = "+14155550100"
    feed.put(SenderNumber(use_case_id=newer.id, phone_number=pool,
                          number_type=NumberType.LONG_CODE, created_at=NOW))  # fmt: skip
    cases = use_cases_for(feed.view, "AC1", "MG1", pool)
    assert cases == [older, newer]  # oldest first, no deleted one, no other service
    assert owning_use_case(feed.view, cases, pool) == newer  # its pool holds To
    assert owning_use_case(feed.view, cases, "+14155550101") == older  # else the oldest
    assert use_cases_for(feed.view, "AC2", "MG1", pool) == []  # another subaccount
    # No Messaging Service in the form: the use cases whose pool holds To.
    assert use_cases_for(feed.view, "AC1", None, pool) == [newer]
