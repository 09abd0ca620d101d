"""Which database errors mean "retry later" and which mean "this row is refused".

Only a refusal of the row's own values may make the sink skip it; an error about the
server's state (read-only after a failover, deadlock, shutdown, lost connection) must hold
the batch until the same write succeeds.
"""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from store.errors import (
    driver_message,
    is_row_error,
    is_unavailable,
    sqlstate,
    sqlstate_is_row_error,
    sqlstate_is_unavailable,
)

pg = asyncpg.exceptions

SERVER_STATE = {
    "25006": "read_only_sql_transaction",
    "40001": "serialization_failure",
    "40P01": "deadlock_detected",
    "55P03": "lock_not_available",
    "53300": "too_many_connections",
    "53100": "disk_full",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "57014": "query_canceled",
    "08006": "connection_failure",
    "08001": "sqlclient_unable_to_establish_sqlconnection",
    "25P03": "idle_in_transaction_session_timeout",
    "58030": "io_error",
}
ROW = {
    "22001": "string_data_right_truncation",
    "22P02": "invalid_text_representation",
    "23505": "unique_violation",
    "23514": "check_violation",
    "23502": "not_null_violation",
}
NEITHER = {
    "42703": "undefined_column",
    "42P01": "undefined_table",
    "42501": "insufficient_privilege",
    "25P02": "in_failed_sql_transaction",
    "XX000": "internal_error",
}


@pytest.mark.parametrize("code", SERVER_STATE)
def test_server_state_sqlstates_are_unavailable(code: str) -> None:
    assert sqlstate_is_unavailable(code) and not sqlstate_is_row_error(code)


@pytest.mark.parametrize("code", ROW)
def test_data_and_constraint_sqlstates_are_row_errors(code: str) -> None:
    assert sqlstate_is_row_error(code) and not sqlstate_is_unavailable(code)


@pytest.mark.parametrize("code", NEITHER)
def test_other_sqlstates_are_neither(code: str) -> None:
    assert not sqlstate_is_row_error(code) and not sqlstate_is_unavailable(code)


def wrapped(error: Exception) -> sa_exc.DBAPIError:
    """``error`` as SQLAlchemy's asyncpg dialect raises it: translated to the adapted DBAPI
    class (raised from the asyncpg error), then wrapped in a ``sqlalchemy.exc`` class."""
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]
    translate = getattr(dbapi, "_asyncpg_error_translate", {})
    adapted_class = next((translate[c] for c in type(error).__mro__ if c in translate), dbapi.Error)
    adapted = adapted_class(f"{type(error)}: {error}")
    adapted.pgcode = adapted.sqlstate = getattr(error, "sqlstate", None)
    adapted.__cause__ = error
    result = sa_exc.DBAPIError.instance("INSERT INTO sms_records ...", {}, adapted, dbapi.Error)
    assert isinstance(result, sa_exc.DBAPIError)
    return result


@pytest.mark.parametrize(
    "error",
    [
        pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        pg.DeadlockDetectedError("deadlock detected"),
        pg.SerializationError("could not serialize access due to concurrent update"),
        pg.LockNotAvailableError("canceling statement due to lock timeout"),
        pg.TooManyConnectionsError("sorry, too many clients already"),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.CrashShutdownError("terminating connection because of crash of another process"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.ConnectionFailureError("connection failure"),
    ],
    ids=type,
)
def test_asyncpg_server_state_errors_are_unavailable_raw_and_wrapped(error: Exception) -> None:
    for exc in (error, wrapped(error)):
        assert sqlstate(exc) == error.sqlstate  # type: ignore[attr-defined]
        assert is_unavailable(exc), exc
        assert not is_row_error(exc), exc


@pytest.mark.parametrize(
    "error",
    [
        pg.StringDataRightTruncationError("value too long for type character varying(32)"),
        pg.UniqueViolationError("duplicate key value violates unique constraint"),
        pg.CheckViolationError('violates check constraint "ck_sms_records_status"'),
        pg.InvalidTextRepresentationError("invalid input syntax for type uuid"),
    ],
    ids=type,
)
def test_asyncpg_data_errors_are_row_errors(error: Exception) -> None:
    for exc in (error, wrapped(error)):
        assert is_row_error(exc), exc
        assert not is_unavailable(exc), exc


def test_a_bug_is_neither_so_the_sink_holds_the_batch_without_calling_it_unavailable() -> None:
    exc = wrapped(pg.UndefinedColumnError('column "body" does not exist'))
    assert not is_row_error(exc)
    assert not is_unavailable(exc)  # the ingress answers 500 for it, not 503


def test_sqlite_errors_by_their_class() -> None:
    locked = sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    read_only = sa_exc.OperationalError(
        "INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")
    )
    constraint = sa_exc.IntegrityError(
        "INSERT", {}, sqlite3.IntegrityError("CHECK constraint failed: ck_sms_records_status")
    )
    assert is_unavailable(locked) and not is_row_error(locked)
    assert is_unavailable(read_only) and not is_row_error(read_only)
    assert is_row_error(constraint) and not is_unavailable(constraint)


def test_a_lost_connection_without_sqlstate_is_unavailable() -> None:
    assert is_unavailable(pg.InterfaceError("connection is closed"))
    assert is_unavailable(ConnectionResetError("reset by peer"))
    assert sqlstate(ConnectionResetError()) is None


def test_a_logged_database_error_shows_the_driver_message_not_the_rows() -> None:
    """SQLAlchemy's text of an error lists the statement's parameters (message bodies, phone
    numbers); a log line gets the driver's message only."""
    body, phone = "Your code is 913 402", "+14155550199"

    class DriverError(Exception):
        pass

    wrapped = sa_exc.DBAPIError(
        "INSERT INTO sms_inbound (body, from_number) VALUES ($1, $2)",
        (body, phone),
        DriverError("value too long for type character varying(64)"),
    )
    assert body in str(wrapped) and phone in str(wrapped)  # what the old lines logged
    shown = driver_message(wrapped)
    assert shown == "DriverError: value too long for type character varying(64)"
    bare = sa_exc.StatementError("no driver error", "SELECT $1", (body,), None)
    assert driver_message(bare) == "StatementError"
    assert driver_message(ValueError("plain")) == "ValueError: plain"
