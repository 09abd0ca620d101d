"""How long the lifecycle agent keeps what it keeps: pure rules over plain values.

Early callbacks are held ``SMSLANE_EARLY_CALLBACK_HOLD_SECONDS`` for their message to be
recorded (at most ``SMSLANE_EARLY_CALLBACK_MAX_HELD`` sids at once); terminal records stay
``SMSLANE_RECORD_RETENTION_DAYS`` after their last change, unfinished ones
``SMSLANE_STALE_RECORD_DAYS``. The timers that order the deletions run every fifth of the hold
(1 to 30 s) and every 24th of the shorter keep (1 s to 1 h).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.records import SmsStatus, quiet_since
from schemas.settings import Settings
from streams.lifecycle.tables import Held


@dataclass(frozen=True)
class Housekeeping:
    """How long callbacks are held and records kept: the rules, and the timers' pace."""

    hold_for: timedelta
    max_held: int
    retention: timedelta
    stale_after: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Housekeeping:
        return cls(
            hold_for=timedelta(seconds=settings.early_callback_hold_seconds),
            max_held=settings.early_callback_max_held,
            retention=settings.record_retention,
            stale_after=settings.stale_record_after,
        )

    def evictable(
        self,
        status: SmsStatus,
        updated_at: datetime,
        now: datetime,
        *,
        send_at: datetime | None = None,
    ) -> bool:
        """Terminal records go after the retention; unfinished ones once they went stale
        (a carrier that never sends a delivery receipt must not keep them here forever),
        counted from ``send_at`` when that is later: a message scheduled weeks ahead is not
        stale while it waits."""
        if status.terminal:
            return updated_at + self.retention <= now
        return quiet_since(updated_at, send_at) + self.stale_after <= now

    def expired(self, held: Held, now: datetime) -> bool:
        """The hold of these callbacks is over: their message is not coming."""
        return held.since + self.hold_for <= now

    @property
    def expire_every_s(self) -> float:
        return max(1.0, min(30.0, self.hold_for.total_seconds() / 5))

    @property
    def evict_every_s(self) -> float:
        return max(1.0, min(3600.0, min(self.retention, self.stale_after).total_seconds() / 24))
