"""Paused routes: they take and store submissions and deliver none until resumed.

Revision ID: 0008_route_pauses
Revises: 0007_incident_history
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_route_pauses"
down_revision = "0007_incident_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_pauses",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("paused_at", sa.Float, nullable=False),
        sa.Column("paused_by", sa.String(128)),
    )


def downgrade() -> None:
    op.drop_table("route_pauses")
