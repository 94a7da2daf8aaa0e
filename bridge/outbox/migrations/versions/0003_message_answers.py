"""Seen webhook ids keep the answer they were given (Standard Webhooks idempotency).

Revision ID: 0003_message_answers
Revises: 0002_incidents
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_message_answers"
down_revision = "0002_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seen_messages") as batch:
        batch.add_column(sa.Column("answer", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("seen_messages") as batch:
        batch.drop_column("answer")
