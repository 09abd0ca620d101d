"""The lifecycle's housekeeping rules: pure, from the settings."""

from __future__ import annotations

from datetime import timedelta

from schemas.records import SmsStatus
from schemas.settings import Settings
from streams.lifecycle.housekeeping import Housekeeping
from streams.lifecycle.tables import Held
from tests.streams.factories import T0

RULES = Housekeeping(
    hold_for=timedelta(seconds=300),
    max_held=2,
    retention=timedelta(days=7),
    stale_after=timedelta(days=14),
)


def test_housekeeping_follows_the_settings() -> None:
    rules = Housekeeping.from_settings(
        Settings(early_callback_hold_seconds=2, record_retention_days=7, stale_record_days=14)
    )
    assert rules.hold_for == timedelta(seconds=2) and rules.max_held == 10_000
    assert (rules.expire_every_s, rules.evict_every_s) == (1.0, 3600.0)
    assert (RULES.expire_every_s, RULES.evict_every_s) == (30.0, 3600.0)
    held = Held(since=T0, callbacks=())
    assert not RULES.expired(held, T0 + timedelta(seconds=299))
    assert RULES.expired(held, T0 + timedelta(seconds=300))
    assert RULES.evictable(SmsStatus.FAILED, T0, T0 + timedelta(days=7))
    assert not RULES.evictable(SmsStatus.FAILED, T0, T0 + timedelta(days=7, seconds=-1))
    assert not RULES.evictable(SmsStatus.SENT, T0, T0 + timedelta(days=13))
    assert RULES.evictable(SmsStatus.SENT, T0, T0 + timedelta(days=14))
