"""The two errors callers of the store handle: the store is down, or a cursor is malformed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

from schemas.errors import InvalidRequest, ServiceUnavailable

log = logging.getLogger(__name__)


class StoreUnavailable(ServiceUnavailable):
    """The database cannot be reached or cannot take the write now (503; retry later).

    The original driver error is the ``__cause__``.
    """

    default_detail = "The record store is unavailable; retry later."


class InvalidCursor(InvalidRequest, ValueError):
    """``cursor`` is not one this API handed out (422, naming ``cursor``)."""

    default_detail = "cursor: not a cursor returned by this API; start again without it."


#: asyncpg errors that mean "the server is not there or not taking work", not "bad query".
_ASYNCPG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is down or busy (as opposed to a bug or bad data)."""
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError
        | OSError
        | TimeoutError,
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return isinstance(exc.orig, _ASYNCPG_UNAVAILABLE) or isinstance(cause, _ASYNCPG_UNAVAILABLE)
    return isinstance(exc, _ASYNCPG_UNAVAILABLE)


@contextmanager
def unavailable_as_store_error() -> Iterator[None]:
    """Re-raise database-down errors as :class:`StoreUnavailable`; let the others through."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            # The driver's text (SQL, parameters, hosts) is for logs, never for clients.
            log.warning("record store unavailable: %s", exc)
            raise StoreUnavailable() from exc
        raise
