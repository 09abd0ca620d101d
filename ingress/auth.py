"""Bearer API keys: ``SMSLANE_API_KEYS`` for /v1/sms*, ``SMSLANE_ADMIN_API_KEYS`` for admin.

Pure checks over the ``Authorization`` header and the settings; the route dependencies that
call them are ``ingress.deps.ApiKeyDep`` and ``ingress.deps.AdminKeyDep``.
"""

from __future__ import annotations

import hashlib
import hmac

from schemas.errors import Forbidden, Unauthorized
from schemas.settings import Settings


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 for anything else."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


def _matches(token: str, keys: tuple[str, ...]) -> bool:
    # Compare against every key (no early exit) in constant time per key.
    found = False
    for key in keys:
        found |= hmac.compare_digest(token.encode(), key.encode())
    return found


def key_id(token: str) -> str:
    """A stable, non-secret id of an API key (for idempotency scoping and logs)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def api_key_id(token: str, settings: Settings) -> str:
    """The id of a key accepted on /v1/sms* (an API key or an admin key); 401 otherwise."""
    if _matches(token, settings.api_keys) or _matches(token, settings.admin_api_keys):
        return key_id(token)
    raise Unauthorized("The API key is not valid.")


def admin_key_id(token: str, settings: Settings) -> str:
    """The id of an admin key; 401 for an unknown key, 403 for a non-admin key."""
    if _matches(token, settings.admin_api_keys):
        return key_id(token)
    if _matches(token, settings.api_keys):
        raise Forbidden("This API key may not use admin routes; use an admin key.")
    raise Unauthorized("The API key is not valid.")
