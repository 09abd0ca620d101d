"""API keys made by the admin API: their form, their hash, and the caller a key stands for.

A key is ``sl_<role>_<secret>``: a prefix that says what it is (so a leaked key is
recognisable in a log or a repository scan) and 32 random bytes from :mod:`secrets` in
URL-safe base64. Only the SHA-256 of the whole key is stored. A plain hash, not a slow
password hash, is enough: with 256 random bits a guess is hopeless however fast the hash,
and a key is checked on every request. Looking the hash up in a dict leaks at most the
timing of a hash comparison, which tells nothing about the key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal

from feeds.config import ConfigView
from ingress.auth import Caller
from schemas.config import ApiKey, ApiKeyRole
from schemas.errors import ServiceUnavailable, Unauthorized

PREFIX = "sl_"
#: A key the ingress made: ``sl_sms_`` or ``sl_admin_``, then the secret (43 characters).
_FORM = re.compile(r"^sl_(sms|admin)_[A-Za-z0-9_-]{43}$")
SECRET_BYTES = 32
#: A key from the config topic is accepted only while the view was confirmed complete this
#: recently: with the feed's ~1 s cycle a revocation is in force everywhere within 5 s.
FRESHNESS_S = 4.0


def new_key(role: ApiKeyRole) -> str:
    """A new key for ``role``: ``sl_sms_…`` or ``sl_admin_…``, 256 random bits."""
    return f"{PREFIX}{role.value}_{secrets.token_urlsafe(SECRET_BYTES)}"


def looks_like_key(token: str) -> bool:
    """Whether ``token`` has the form of a key this API makes (nothing about its validity)."""
    return _FORM.match(token) is not None


def key_sha256(token: str) -> str:
    """The stored form of a key: the SHA-256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def caller_of(key: ApiKey) -> Caller:
    """The caller a stored key stands for; its id is the key's id (Idempotency-Key scope)."""
    scope = None if key.use_case_ids is None else frozenset(key.use_case_ids)
    role: Literal["sms", "admin"] = "admin" if key.role is ApiKeyRole.ADMIN else "sms"
    return Caller(str(key.id), role, scope)


def stored_caller(token: str, view: ConfigView) -> Caller:
    """The caller of a key made through the admin API.

    401 for a token not of that form or not (any more) a key; 503 when this process cannot
    confirm that its configuration is current (it might have missed a revocation).
    """
    if not looks_like_key(token):
        raise Unauthorized("The API key is not valid.")
    if not view.confirmed_within(FRESHNESS_S):
        raise ServiceUnavailable(
            "This server cannot confirm the API key against current configuration (Kafka "
            "does not answer); retry in a moment.",
            retry_after=1,
        )
    key = view.api_keys.by_hash(key_sha256(token))
    if key is None:
        raise Unauthorized("The API key is not valid.")
    return caller_of(key)
