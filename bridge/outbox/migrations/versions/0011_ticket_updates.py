"""Updates of alert tickets: a submission's target, and what each incident's ticket says.

Revision ID: 0011_ticket_updates
Revises: 0010_access
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_ticket_updates"
down_revision = "0010_access"
branch_labels = None
depends_on = None

INCIDENT_COLUMNS = (
    ("occurrences", sa.Integer),
    ("first_seen", sa.Float),
    ("last_seen", sa.Float),
    ("state", lambda: sa.String(16)),
    ("priority", lambda: sa.String(16)),
)


def upgrade() -> None:
    # Nullable columns without a default: an O(1) change on both engines, whatever the
    # number of rows.
    op.add_column("submissions", sa.Column("target", sa.String(40)))
    op.create_index(
        "ix_submissions_target",
        "submissions",
        ["target"],
        sqlite_where=sa.text("target IS NOT NULL"),
        postgresql_where=sa.text("target IS NOT NULL"),
    )
    for name, kind in INCIDENT_COLUMNS:
        op.add_column("incidents", sa.Column(name, kind()))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        for name, _ in INCIDENT_COLUMNS:
            batch.drop_column(name)
    op.drop_index("ix_submissions_target", "submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("target")
