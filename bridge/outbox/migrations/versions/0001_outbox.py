"""The outbox: submissions and delivery attempts.

Revision ID: 0001_outbox
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_outbox"
down_revision = None
branch_labels = None
depends_on = None

STATES = ("pending", "in_flight", "unknown", "delivered", "dead", "suppressed")


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("dedup_key", sa.String(512)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_token", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("claimed_from", sa.String(16)),
        sa.Column("sent_at", sa.Float),
        sa.Column("ticket_id", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("meta", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("delivered_at", sa.Float),
        sa.UniqueConstraint("route", "dedup_key", name="uq_submissions_route_dedup"),
        sa.CheckConstraint(f"state IN {STATES!r}", name="ck_submissions_state"),
    )
    op.create_index("ix_submissions_due", "submissions", ["state", "next_attempt_at"])
    op.create_index("ix_submissions_lease", "submissions", ["state", "lease_expires_at"])
    op.create_index("ix_submissions_route_state", "submissions", ["route", "state"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "submission_id",
            sa.String(40),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(128)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("ticket_id", sa.String(64)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_attempts_submission", "attempts", ["submission_id"])


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("submissions")
