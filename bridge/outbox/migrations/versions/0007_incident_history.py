"""Incident history: every notification of an alert group, and what staff's labels said.

Revision ID: 0007_incident_history
Revises: 0006_attachments
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_incident_history"
down_revision = "0006_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("muted", sa.Boolean))
    op.add_column("incidents", sa.Column("snoozed_until", sa.Float))
    op.add_column("incidents", sa.Column("snooze_label", sa.String(64)))
    op.add_column("incidents", sa.Column("labels", sa.Text))
    op.add_column("incidents", sa.Column("resolved_at", sa.Float))
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("submission_id", sa.String(40)),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_incident_events_group", "incident_events", ["route", "key"])
    op.create_index("ix_incident_events_received", "incident_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_incident_events_received", "incident_events")
    op.drop_index("ix_incident_events_group", "incident_events")
    op.drop_table("incident_events")
    for column in ("resolved_at", "labels", "snooze_label", "snoozed_until", "muted"):
        op.drop_column("incidents", column)
