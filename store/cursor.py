"""Opaque keyset cursors: where a newest-first listing stopped, as ``(created_at, id)``."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from uuid import UUID

from store.errors import InvalidCursor

_VERSION = "1"
_MAX_LENGTH = 128


def encode_cursor(created_at: datetime, record_id: UUID) -> str:
    """The cursor after the row ``(created_at, record_id)``: urlsafe base64, no padding."""
    stamp = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    raw = f"{_VERSION}|{stamp}|{record_id.hex}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The ``(created_at, id)`` of a cursor from :func:`encode_cursor`.

    Raises :class:`InvalidCursor` for anything else.
    """
    if not cursor or len(cursor) > _MAX_LENGTH:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, stamp, hex_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        record_id = UUID(hex=hex_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor() from exc
    if version != _VERSION or created_at.tzinfo is None:
        raise InvalidCursor()
    return created_at.astimezone(UTC), record_id
