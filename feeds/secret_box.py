"""Authenticated encryption of stored secrets (Twilio auth tokens) with ``SMSLANE_SECRET_KEYS``.

Each key is a Fernet key (32 random bytes, URL-safe base64: :func:`new_key`). A
:class:`SecretBox` seals with the first key and opens with any of them (``MultiFernet``), so a
new key is put first, every secret is sealed again (``smslane secrets rotate``), and only then
is the old key removed. A sealed value is Fernet's token text: AES-128-CBC with an HMAC-SHA256
over it, so a changed or truncated value is refused, never decrypted to something else.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

#: The environment variable the keys come from (named in every error about them).
VARIABLE = "SMSLANE_SECRET_KEYS"


class Undecryptable(Exception):
    """A sealed value that none of the configured keys opens (or that is not a token)."""


def new_key() -> str:
    """A fresh key in the form ``SMSLANE_SECRET_KEYS`` takes."""
    return Fernet.generate_key().decode()


def check_key(key: str) -> None:
    """Raise ValueError (its text without the key) unless ``key`` is a valid key."""
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise ValueError(
            "each key must be 32 bytes in URL-safe base64 (44 characters; make one with "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`)"
        ) from None


class SecretBox:
    """Seals with the first of ``keys``, opens with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError(f"{VARIABLE} holds no key")
        for key in keys:
            check_key(key)
        self._newest = Fernet(keys[0].encode())
        self._all = MultiFernet([Fernet(key.encode()) for key in keys])

    def seal(self, secret: str) -> str:
        """``secret`` encrypted and authenticated with the newest key."""
        return self._all.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret inside ``sealed``; :class:`Undecryptable` if no key opens it."""
        try:
            return self._all.decrypt(sealed.encode()).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise Undecryptable("no configured key decrypts this value") from exc

    def is_newest(self, sealed: str) -> bool:
        """True when ``sealed`` was sealed with the newest (first) key."""
        try:
            self._newest.decrypt(sealed.encode())
        except (InvalidToken, UnicodeError):
            return False
        return True
