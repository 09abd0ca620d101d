"""The rules of sending later, as pure functions: ``send_at``'s form and window.

``send_at`` is an RFC 3339 date-time with a UTC offset, between :data:`MIN_AHEAD` and
:data:`MAX_AHEAD` after the request (Twilio's own limits for ``ScheduleType=fixed``). It is
kept and compared in UTC, so two spellings of one instant are the same request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

MIN_AHEAD = timedelta(minutes=15)
MAX_AHEAD = timedelta(days=35)
WINDOW = "between 15 minutes and 35 days from now"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def parse_send_at(text: str) -> datetime:
    """``text`` as an aware datetime in UTC; ValueError unless it is RFC 3339 with an offset."""
    if not _RFC3339.fullmatch(text):
        raise ValueError(
            "send_at must be an RFC 3339 date-time with a UTC offset, such as 2026-12-24T09:00:00Z"
        )
    date, time = text[:10], text[11:]
    fraction = re.search(r"\.(\d+)", time)
    if fraction is not None:  # Python reads at most microseconds
        time = time.replace(fraction.group(0), "." + fraction.group(1)[:6].ljust(6, "0"))
    return datetime.fromisoformat(f"{date}T{time.upper()}").astimezone(UTC)


def window_problem(send_at: datetime, now: datetime) -> str | None:
    """Why ``send_at`` cannot be scheduled at ``now``, or None when it is in the window."""
    ahead = send_at - now
    if ahead < MIN_AHEAD or ahead > MAX_AHEAD:
        return f"send_at must be {WINDOW} ({send_at.isoformat()} is not)."
    return None
