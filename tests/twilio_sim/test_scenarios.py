"""Each scenario's callbacks, in sending order, and the status the message ends in."""

from __future__ import annotations

import pytest

from twilio_sim import Scenario
from twilio_sim.scenarios import plan_for


def statuses(scenario: Scenario) -> list[str]:
    plan = plan_for(scenario, undelivered_code=30003, failed_code=30007)
    return [step.status for step in plan.steps]


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (Scenario.DELIVERED, ["queued", "sent", "delivered"]),
        (Scenario.SENT_ONLY, ["queued", "sent"]),
        (Scenario.UNDELIVERED, ["queued", "sent", "undelivered"]),
        (Scenario.FAILED, ["queued", "failed"]),
        (Scenario.DUPLICATES, ["queued", "queued", "sent", "sent", "delivered", "delivered"]),
        (Scenario.OUT_OF_ORDER, ["queued", "delivered", "sent"]),
        (Scenario.EARLY, ["queued", "sent", "delivered"]),
        (Scenario.NONE, []),
    ],
)
def test_callback_order(scenario: Scenario, expected: list[str]) -> None:
    assert statuses(scenario) == expected


def test_error_codes_only_on_failed_and_undelivered() -> None:
    undelivered = plan_for(Scenario.UNDELIVERED, undelivered_code=30005, failed_code=30007)
    failed = plan_for(Scenario.FAILED, undelivered_code=30005, failed_code=30008)
    assert [s.error_code for s in undelivered.steps] == [None, None, 30005]
    assert [s.error_code for s in failed.steps] == [None, 30008]
    assert (undelivered.final_status, undelivered.final_error_code) == ("undelivered", 30005)
    assert (failed.final_status, failed.final_error_code) == ("failed", 30008)


def test_out_of_order_still_ends_delivered_and_only_early_is_early() -> None:
    assert plan_for(Scenario.OUT_OF_ORDER, undelivered_code=1, failed_code=2).final_status == (
        "delivered"
    )
    assert [s for s in Scenario if plan_for(s, undelivered_code=1, failed_code=2).early] == [
        Scenario.EARLY
    ]
