"""The mirror of the bridge's tickets, and where its sync stands.

Revision ID: 0012_mirror
Revises: 0011_ticket_updates
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_mirror"
down_revision = "0011_ticket_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirror_tickets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("submission_id", sa.String(40), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(255), nullable=False),
        sa.Column("inbox", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("modified_at", sa.Float, nullable=False),
        sa.Column("first_reply_at", sa.Float),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("synced_at", sa.Float, nullable=False),
    )
    op.create_index("ix_mirror_tickets_requester", "mirror_tickets", ["requester", "created_at"])
    op.create_index("ix_mirror_tickets_inbox", "mirror_tickets", ["inbox", "created_at"])
    op.create_table(
        "mirror_sync",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("cursor", sa.Float),
        sa.Column("initial_from", sa.Float),
        sa.Column("initial_page", sa.Integer, nullable=False, server_default="1"),
        sa.Column("last_poll_at", sa.Float),
        sa.Column("owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("reply_times", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("mirror_sync")
    op.drop_index("ix_mirror_tickets_inbox", "mirror_tickets")
    op.drop_index("ix_mirror_tickets_requester", "mirror_tickets")
    op.drop_table("mirror_tickets")
