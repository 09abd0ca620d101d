"""Bearer API keys and who they stand for (:class:`Caller`).

The bootstrap keys of ``SMSLANE_API_KEYS`` (/v1/sms*) and ``SMSLANE_ADMIN_API_KEYS`` (admin
too) have every use case; keys made through the admin API are checked by
``ingress.keys.stored_caller``. Pure checks over the ``Authorization`` header and the
settings; the route dependencies that call them are ``ingress.deps.ApiKeyDep`` and
``ingress.deps.AdminKeyDep``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's stable id, its role, and the use cases it may reach.

    ``use_case_ids`` is ``None`` for a key with every use case (the bootstrap keys of
    ``SMSLANE_API_KEYS`` / ``SMSLANE_ADMIN_API_KEYS``, admin keys, and managed keys made
    with ``use_case_ids: null``). ``key_id`` is a managed key's id, or a hash prefix of a
    bootstrap key.
    """

    key_id: str
    role: Literal["sms", "admin"]
    use_case_ids: frozenset[UUID] | None = None

    def may_use(self, use_case_id: UUID) -> bool:
        """Whether this key sends, reads and lists through ``use_case_id``."""
        return self.use_case_ids is None or use_case_id in self.use_case_ids


def key_id(token: str) -> str:
    """A stable, non-secret id of an API key (for idempotency scoping and logs)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def bootstrap_caller(token: str, settings: Settings) -> Caller | None:
    """The caller of a key of ``SMSLANE_ADMIN_API_KEYS`` / ``SMSLANE_API_KEYS`` (every use
    case), or None for any other token."""
    if _matches(token, settings.admin_api_keys):
        return Caller(key_id(token), "admin")
    if _matches(token, settings.api_keys):
        return Caller(key_id(token), "sms")
    return None


def require_admin(caller: Caller) -> Caller:
    """``caller`` if it holds an admin key; 403 otherwise."""
    if caller.role != "admin":
        raise Forbidden("This API key may not use admin routes; use an admin key.")
    return caller
