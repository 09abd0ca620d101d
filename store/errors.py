"""The two errors callers of the store handle: the store is down, or a cursor is malformed;
and how a database error is told apart: the server's state (retry) or the row's data (skip).

PostgreSQL names every error with a SQLSTATE; its class (the first two characters) says
whose fault it is. A read-only transaction (25006, a standby after a failover), a deadlock
(40P01), a serialization failure (40001), a lock timeout (55P03), too many connections
(53300), a shutdown (57P01-57P03) or a lost connection (08) is about the server: the same
write succeeds later. Only data and constraint errors (22, 23) are about the row.
"""

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


#: asyncpg errors that mean "the connection is gone", not "bad query" (InterfaceError has no
#: SQLSTATE).
_ASYNCPG_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
)

#: SQLSTATE classes (the first two characters) about the server's state, not the statement:
#: 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
#: 53 insufficient resources (too many connections, disk full), 57 operator intervention
#: (admin or crash shutdown, cannot connect now, query cancelled), 58 system error (I/O).
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
#: Single SQLSTATEs of that kind in other classes: read-only transaction (a standby after a
#: failover, or ``default_transaction_read_only``), idle-in-transaction and transaction
#: timeouts (the server ended the session), lock not available (``lock_timeout``).
UNAVAILABLE_SQLSTATES = frozenset({"25006", "25P03", "25P04", "55P03"})
#: SQLSTATE classes about the values written: 22 data exception, 23 integrity violation.
ROW_SQLSTATE_CLASSES = frozenset({"22", "23"})


def sqlstate_is_unavailable(code: str) -> bool:
    """Whether SQLSTATE ``code`` says the server cannot take the work now (retry it)."""
    return code[:2] in UNAVAILABLE_SQLSTATE_CLASSES or code in UNAVAILABLE_SQLSTATES


def sqlstate_is_row_error(code: str) -> bool:
    """Whether SQLSTATE ``code`` is about the row's values (retrying cannot help)."""
    return code[:2] in ROW_SQLSTATE_CLASSES


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the driver error SQLAlchemy wrapped (if any), and what each was raised from."""
    chain = [exc]
    if isinstance(exc, sa_exc.DBAPIError) and isinstance(exc.orig, BaseException):
        chain.append(exc.orig)
    return [*chain, *(e.__cause__ for e in chain if e.__cause__ is not None)]


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind ``exc`` (asyncpg's errors and SQLAlchemy's wrappers of
    them carry one), or ``None``."""
    for error in _chain(exc):
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is down, busy or not writable now (retry later), as
    opposed to a bug or bad data."""
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
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return sqlstate_is_unavailable(code)
    return any(isinstance(error, _ASYNCPG_UNAVAILABLE) for error in _chain(exc))


def is_row_error(exc: BaseException) -> bool:
    """Whether the database refused ``exc``'s statement for the values it writes (a data or
    constraint error): the only refusal after which a writer may skip the row."""
    code = sqlstate(exc)
    if code is not None:
        return sqlstate_is_row_error(code)
    return isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError)


def driver_message(exc: BaseException) -> str:
    """``exc`` for a log line: the driver's own message, without what SQLAlchemy adds to it
    (the statement and every row's values: message bodies, phone numbers)."""
    orig = getattr(exc, "orig", None) if isinstance(exc, sa_exc.StatementError) else None
    shown = orig if isinstance(orig, BaseException) else exc
    if isinstance(shown, sa_exc.StatementError):  # no driver error under it: name it only
        return type(shown).__name__
    return f"{type(shown).__name__}: {shown}"


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
            log.warning("record store unavailable: %s", driver_message(exc))
            raise StoreUnavailable() from exc
        raise
