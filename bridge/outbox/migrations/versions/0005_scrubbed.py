"""When a submission's personal content was removed (retention, erasure).

Revision ID: 0005_scrubbed
Revises: 0004_quarantine
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_scrubbed"
down_revision = "0004_quarantine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy): SQLite would otherwise drop and rebuild the
    # table, and with foreign keys on that deletes every attempt along with it.
    op.add_column("submissions", sa.Column("scrubbed_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("scrubbed_at")
