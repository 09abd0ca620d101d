"""The API keys of the config topic, indexed by id and by the SHA-256 of the key.

A :class:`~schemas.config.ApiKey` record holds only the key's hash, so the index can answer
"which key is this?" for a presented bearer token by hashing it once and looking the hash
up; it never sees a key in clear. A tombstone on ``api_key:<id>`` removes the key: from then
on its hash is unknown and the key is refused.
"""

from __future__ import annotations

from uuid import UUID

from schemas.config import ApiKey


class ApiKeyIndex:
    """The live API keys, by id and by ``key_sha256``."""

    def __init__(self) -> None:
        self._by_id: dict[UUID, ApiKey] = {}
        self._by_hash: dict[str, ApiKey] = {}

    def put(self, key: ApiKey) -> None:
        """Add ``key`` (or replace the key with its id)."""
        self.remove(key.id)
        self._by_id[key.id] = key
        self._by_hash[key.key_sha256] = key

    def remove(self, key_id: UUID) -> None:
        """Forget the key ``key_id`` (revoked); nothing happens for an unknown id."""
        old = self._by_id.pop(key_id, None)
        if old is not None:
            self._by_hash.pop(old.key_sha256, None)

    def remove_named(self, rest: str) -> None:
        """Forget the key named by the ``<id>`` part of a tombstone's ``api_key:<id>``."""
        try:
            self.remove(UUID(rest))
        except ValueError:
            return

    def get(self, key_id: UUID) -> ApiKey | None:
        return self._by_id.get(key_id)

    def by_hash(self, key_sha256: str) -> ApiKey | None:
        """The key whose SHA-256 (hex) is ``key_sha256``, or None."""
        return self._by_hash.get(key_sha256)

    def all(self) -> list[ApiKey]:
        """Every live key, oldest first."""
        return sorted(self._by_id.values(), key=lambda k: (k.created_at, str(k.id)))

    def __len__(self) -> int:
        return len(self._by_id)
