"""The SQL shape of the store: the ``sms_records`` table and the types it needs.

The migrations under ``store/migrations/versions`` create this shape; this module is what the
queries use (and what ``alembic revision --autogenerate`` compares against).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from schemas.records import SmsRecord, SmsStatus, SmsStatusEvent


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every database.

    PostgreSQL stores ``timestamptz``. SQLite has no datetime type: values are stored as
    fixed-width ISO-8601 text in UTC (``2024-05-01T12:00:00.000000Z``), which sorts and
    compares in time order. A naive ``datetime`` is taken to be UTC; values always come back
    aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(27))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=UTC)
        assert isinstance(value, datetime)
        return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


metadata = MetaData()

_STATUSES = ", ".join(f"'{status.value}'" for status in SmsStatus)

sms_records = Table(
    "sms_records",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("use_case_id", Uuid(), nullable=False),
    Column("message_sid", String(64), nullable=False),
    Column("from_number", String(32)),
    Column("to_number", String(32), nullable=False),
    Column("body", Text(), nullable=False),
    Column("num_segments", Integer()),
    Column("status", String(16), nullable=False),
    Column("handed_off_at", UtcDateTime()),
    Column("delivered_at", UtcDateTime()),
    Column("errored_at", UtcDateTime()),
    Column("error_code", Integer()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("send_at", UtcDateTime()),
    Column("validity_period", Integer()),
    Column("client_reference", String(128)),
    Column("canceled_at", UtcDateTime()),
    Column("version", BigInteger(), nullable=False),
    Column("sink_updated_at", UtcDateTime(), nullable=False),
    CheckConstraint(f"status IN ({_STATUSES})", name="ck_sms_records_status"),
    Index("ix_sms_records_created", "created_at", "id"),
    Index("ix_sms_records_use_case_created", "use_case_id", "created_at", "id"),
    Index("ix_sms_records_status_created", "status", "created_at", "id"),
    Index("ix_sms_records_to_number_created", "to_number", "created_at", "id"),
    Index("ix_sms_records_client_reference_created", "client_reference", "created_at", "id"),
)

#: The columns an upsert overwrites when it carries a newer version.
RECORD_FIELDS: tuple[str, ...] = tuple(SmsRecord.model_fields)
UPDATED_COLUMNS: tuple[str, ...] = (*(f for f in RECORD_FIELDS if f != "id"), "version")


def event_row(event: SmsStatusEvent, now: datetime) -> dict[str, Any]:
    """The ``sms_records`` row of an event, stamped with the sink's clock."""
    row = {name: getattr(event, name) for name in RECORD_FIELDS}
    row["status"] = event.status.value
    row["version"] = event.version
    row["sink_updated_at"] = now
    return row


def row_record(row: Any) -> SmsRecord:
    """The :class:`SmsRecord` of a row selected with every column."""
    mapping = row._mapping
    return SmsRecord.model_validate({name: mapping[name] for name in RECORD_FIELDS})


#: Inbound SMS (``sms.inbound``), one row per message; ``id`` is the topic value's id, so a
#: redelivered or retried message is the same row.
sms_inbound = Table(
    "sms_inbound",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("message_sid", String(64), nullable=False),
    Column("account_sid", String(64), nullable=False),
    Column("messaging_service_sid", String(64)),
    Column("use_case_id", Uuid()),
    Column("from_number", String(64), nullable=False),
    Column("to_number", String(64), nullable=False),
    Column("body", Text(), nullable=False),
    Column("keyword", String(64)),
    Column("keyword_action", String(16)),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("sink_written_at", UtcDateTime(), nullable=False),
    Index("ix_sms_inbound_received", "received_at", "id"),
    Index("ix_sms_inbound_use_case_received", "use_case_id", "received_at", "id"),
    Index("ix_sms_inbound_from_received", "from_number", "received_at", "id"),
)


#: Webhook deliveries (``sms.webhook-deliveries``), one row per endpoint and event: the last
#: change the worker published. Kept 7 days after their last change (the sink purges older).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("endpoint_id", Uuid(), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_status_code", Integer()),
    Column("last_error", Text()),
    Column("response_head", Text()),
    Column("next_attempt_at", UtcDateTime()),
    Column("delivered_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "event_id"),
    Index("ix_webhook_deliveries_updated", "updated_at"),
)
