"""Attachments: the files of a submission, kept by the file store under their digest.

Revision ID: 0006_attachments
Revises: 0005_scrubbed
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_attachments"
down_revision = "0005_scrubbed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("submission_id", sa.String(40), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_attachments_digest", "attachments", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_attachments_digest", "attachments")
    op.drop_table("attachments")
