"""Create sms_inbound: one row per inbound SMS (``sms.inbound``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.tables import UtcDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("account_sid", sa.String(64), nullable=False),
        sa.Column("messaging_service_sid", sa.String(64), nullable=True),
        sa.Column("use_case_id", sa.Uuid(), nullable=True),
        sa.Column("from_number", sa.String(64), nullable=False),
        sa.Column("to_number", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(64), nullable=True),
        sa.Column("keyword_action", sa.String(16), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("sink_written_at", UtcDateTime(), nullable=False),
    )
    # Newest-first listing: every filter, then (received_at, id) for the keyset.
    op.create_index("ix_sms_inbound_received", "sms_inbound", ["received_at", "id"])
    op.create_index(
        "ix_sms_inbound_use_case_received", "sms_inbound", ["use_case_id", "received_at", "id"]
    )
    op.create_index(
        "ix_sms_inbound_from_received", "sms_inbound", ["from_number", "received_at", "id"]
    )


def downgrade() -> None:
    op.drop_table("sms_inbound")
