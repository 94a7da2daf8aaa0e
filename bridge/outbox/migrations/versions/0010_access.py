"""Console sessions (revoked on logout) and the generated signing key.

Revision ID: 0010_access
Revises: 0009_alert_operations
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_access"
down_revision = "0009_alert_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("keys")
    op.drop_table("console_sessions")
