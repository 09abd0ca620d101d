"""The ``Smslane-Signature`` header of a webhook delivery, as Stripe signs its webhooks.

``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``: each ``v1`` is HMAC-SHA256 over
``"{t}.{raw body}"`` with one secret in force (the whole ``whsec_...`` string, UTF-8, as the
key); during a rotation both secrets sign. A receiver accepts the delivery when one ``v1``
matches one of its secrets (constant-time comparison) and ``t`` is recent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Smslane-Signature"
#: How far ``t`` may be from the receiver's clock by default (seconds).
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed by ``secret``."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value: ``t=`` then one ``v1=`` per secret in force."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def verify(
    header: str, body: bytes, secret: str, *, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance_s`` of
    ``now`` (what a receiver checks)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
