"""sms_records: send_at, validity_period, client_reference (indexed), canceled_at, and the
statuses scheduled and canceled.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.tables import UtcDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUSES = "'pending', 'sent', 'delivered', 'failed', 'undelivered'"
_NEW_STATUSES = f"'scheduled', {_OLD_STATUSES}, 'canceled'"


def upgrade() -> None:
    # Batch mode: SQLite can neither add a constraint nor drop one in place (it copies).
    with op.batch_alter_table("sms_records") as batch:
        batch.add_column(sa.Column("send_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("validity_period", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("client_reference", sa.String(128), nullable=True))
        batch.add_column(sa.Column("canceled_at", UtcDateTime(), nullable=True))
        batch.drop_constraint("ck_sms_records_status", type_="check")
        batch.create_check_constraint("ck_sms_records_status", f"status IN ({_NEW_STATUSES})")
    op.create_index(
        "ix_sms_records_client_reference_created",
        "sms_records",
        ["client_reference", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_sms_records_client_reference_created", "sms_records")
    with op.batch_alter_table("sms_records") as batch:
        batch.drop_constraint("ck_sms_records_status", type_="check")
        batch.create_check_constraint("ck_sms_records_status", f"status IN ({_OLD_STATUSES})")
        batch.drop_column("canceled_at")
        batch.drop_column("client_reference")
        batch.drop_column("validity_period")
        batch.drop_column("send_at")
