"""Create sms_records: one row per SMS, the latest version the sink has seen.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.tables import UtcDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_records",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("use_case_id", sa.Uuid(), nullable=False),
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=True),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("num_segments", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handed_off_at", UtcDateTime(), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("errored_at", UtcDateTime(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("sink_updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'delivered', 'failed', 'undelivered')",
            name="ck_sms_records_status",
        ),
    )
    # Newest-first listing: every filter, then (created_at, id) for the keyset.
    op.create_index("ix_sms_records_created", "sms_records", ["created_at", "id"])
    op.create_index(
        "ix_sms_records_use_case_created", "sms_records", ["use_case_id", "created_at", "id"]
    )
    op.create_index("ix_sms_records_status_created", "sms_records", ["status", "created_at", "id"])
    op.create_index(
        "ix_sms_records_to_number_created", "sms_records", ["to_number", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("sms_records")
