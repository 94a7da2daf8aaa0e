"""Alert incidents (one open ticket per alert group) and seen webhook ids (replay guard).

Revision ID: 0002_incidents
Revises: 0001_outbox
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_incidents"
down_revision = "0001_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("submission_id", sa.String(40), nullable=False),
        sa.Column("ticket_open", sa.Boolean),
        sa.Column("checked_at", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "seen_messages",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("message_id", sa.String(255), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_seen_messages_seen_at", "seen_messages", ["seen_at"])


def downgrade() -> None:
    op.drop_table("seen_messages")
    op.drop_table("incidents")
