"""The status callbacks each scenario produces, in the order they are sent. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from twilio_sim.config import Scenario


@dataclass(frozen=True, slots=True)
class Step:
    """One status callback: the ``MessageStatus`` and, for failed/undelivered, ``ErrorCode``."""

    status: str
    error_code: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A scenario made concrete for one message."""

    steps: tuple[Step, ...]
    """Callbacks in sending order."""
    final_status: str
    """The status the Message resource ends in (whatever order the callbacks arrive in)."""
    final_error_code: int | None
    """The resource's ``error_code`` once final."""
    early: bool = False
    """Whether the first callback must complete before the create call answers."""


_QUEUED = Step("queued")
_SENT = Step("sent")
_DELIVERED = Step("delivered")


def plan_for(scenario: Scenario, *, undelivered_code: int, failed_code: int) -> Plan:
    """The callbacks of ``scenario`` (Twilio sends none for the initial ``accepted``)."""
    delivered = (_QUEUED, _SENT, _DELIVERED)
    if scenario is Scenario.DELIVERED:
        return Plan(delivered, "delivered", None)
    if scenario is Scenario.SENT_ONLY:
        return Plan((_QUEUED, _SENT), "sent", None)
    if scenario is Scenario.UNDELIVERED:
        steps = (_QUEUED, _SENT, Step("undelivered", undelivered_code))
        return Plan(steps, "undelivered", undelivered_code)
    if scenario is Scenario.FAILED:
        return Plan((_QUEUED, Step("failed", failed_code)), "failed", failed_code)
    if scenario is Scenario.DUPLICATES:
        return Plan(tuple(s for s in delivered for _ in range(2)), "delivered", None)
    if scenario is Scenario.OUT_OF_ORDER:
        return Plan((_QUEUED, _DELIVERED, _SENT), "delivered", None)
    if scenario is Scenario.EARLY:
        return Plan(delivered, "delivered", None, early=True)
    return Plan((), "delivered", None)
