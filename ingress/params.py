"""Typed request values the routes share, each refusing what its OpenAPI schema refuses.

Pydantic's lax mode reads more than the document promises (``0.5`` as a date-time, ``0`` as
``false``: body booleans are ``StrictBool`` for that); these types make what a route accepts
what its document says, and the document say what the route refuses.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """Refuse a Unix time (pydantic would read ``0.5`` as 1970-01-01T00:00:00.5Z)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-26T10:00:00Z")
    return value


#: A date-time in ISO 8601 (``format: date-time``); a naive one is taken as UTC.
Timestamp = Annotated[datetime, BeforeValidator(_not_a_number)]

#: An ISO 3166 alpha-2 region code, stored upper-case (``us`` is ``US``).
Region = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", examples=["US"]), AfterValidator(str.upper)]

#: The answer to a ``cursor`` of the right form that the store cannot read.
UNKNOWN_CURSOR = "Invalid request: cursor: not a cursor this API returned."

#: The ``cursor`` of a listing: ``next_cursor`` of the page before, as it was answered.
CursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`next_cursor` of the previous page; leave it out for the first page.",
    ),
]


def _plus_restored(number: str | None) -> str | None:
    """An unencoded ``+`` in a query string reads as a space: ``" 1415…"`` is ``"+1415…"``."""
    return "+" + number[1:] if number is not None and number.startswith(" ") else number


#: An E.164 number in a query string, its ``+`` raw, as ``%2B``, or read as a space.
PhoneQuery = Annotated[
    str | None, Query(pattern=r"^[+ ][1-9][0-9]{1,14}$"), AfterValidator(_plus_restored)
]
