"""Bearer API keys: ``SMSLANE_API_KEYS`` for /v1/sms*, ``SMSLANE_ADMIN_API_KEYS`` for admin."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from schemas.errors import Forbidden, Unauthorized


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
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


async def require_api_key(request: Request) -> str:
    """FastAPI dependency for /v1/sms*: the caller's key id; admin keys are accepted too.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in its
    thread pool, a thread hop per request.
    """
    settings = request.app.state.settings
    token = _bearer(request)
    if _matches(token, settings.api_keys) or _matches(token, settings.admin_api_keys):
        return key_id(token)
    raise Unauthorized("The API key is not valid.")


async def require_admin_key(request: Request) -> str:
    """FastAPI dependency for /v1/admin/*: 401 for an unknown key, 403 for a non-admin key."""
    settings = request.app.state.settings
    token = _bearer(request)
    if _matches(token, settings.admin_api_keys):
        return key_id(token)
    if _matches(token, settings.api_keys):
        raise Forbidden("This API key may not use admin routes; use an admin key.")
    raise Unauthorized("The API key is not valid.")
