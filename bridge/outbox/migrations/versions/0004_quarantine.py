"""Quarantine: submissions held back as likely spam until released or discarded.

Revision ID: 0004_quarantine
Revises: 0003_message_answers
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_quarantine"
down_revision = "0003_message_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.String(512)),
        sa.Column("meta", sa.Text),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_quarantine_expires", "quarantine", ["expires_at"])
    op.create_index("ix_quarantine_route", "quarantine", ["route", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_route", "quarantine")
    op.drop_index("ix_quarantine_expires", "quarantine")
    op.drop_table("quarantine")
