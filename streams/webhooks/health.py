"""Which endpoints have failed long enough to be disabled (pure).

An endpoint is *failing* from its first failed attempt after its last success; once it has
been failing for ``disable_after`` (72 h), with no success in between, the worker disables it.
The watch lives in the worker's memory: a restart starts it again, so a restart can only
delay a disabling, never make one early.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta


class FailureWatch:
    """Notes each attempt's result per endpoint; says when one is to be disabled."""

    def __init__(self, disable_after: timedelta) -> None:
        self._after = disable_after
        self._failing_since: dict[uuid.UUID, datetime] = {}

    def note(self, endpoint_id: uuid.UUID, ok: bool, at: datetime) -> bool:
        """Record an attempt; True when the endpoint has now failed for ``disable_after``
        (said once: the watch then starts again for it)."""
        if ok:
            self._failing_since.pop(endpoint_id, None)
            return False
        since = self._failing_since.setdefault(endpoint_id, at)
        if at - since < self._after:
            return False
        del self._failing_since[endpoint_id]
        return True
