"""Heartbeats, the storm guard's windows and held-back groups, captured payloads.

Revision ID: 0009_alert_operations
Revises: 0008_route_pauses
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_alert_operations"
down_revision = "0008_route_pauses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("silent_since", sa.Float),
        sa.Column("silent_submission_id", sa.String(40)),
    )
    op.create_table(
        "storm_groups",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "storm_windows",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("new_groups", sa.Integer, nullable=False),
        sa.Column("summary_id", sa.String(40)),
    )
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
    )
    op.create_index("ix_captures_route", "captures", ["route", "id"])


def downgrade() -> None:
    op.drop_index("ix_captures_route", "captures")
    for table in ("captures", "storm_windows", "storm_groups", "heartbeats"):
        op.drop_table(table)
