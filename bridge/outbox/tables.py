"""The outbox schema: one SQL schema for SQLite and PostgreSQL (SQLAlchemy Core).

Times are stored as UNIX seconds (float): the same comparisons on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

#: pending → in_flight → delivered; in_flight → unknown → delivered | pending; → dead; suppressed.
STATES = ("pending", "in_flight", "unknown", "delivered", "dead", "suppressed")

metadata = sa.MetaData()

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # also the ticket's reference (ref)
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("draft", sa.Text, nullable=False),  # TicketDraft as JSON
    sa.Column("dedup_key", sa.String(512)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_token", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("claimed_from", sa.String(16)),  # the state a claim took it from
    sa.Column("sent_at", sa.Float),  # when the last create was sent (reconcile window)
    sa.Column("ticket_id", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("meta", sa.Text),  # JSON: request id and the like (never secrets)
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.UniqueConstraint("route", "dedup_key", name="uq_submissions_route_dedup"),
    sa.CheckConstraint(f"state IN {STATES!r}", name="ck_submissions_state"),
)
sa.Index("ix_submissions_due", submissions.c.state, submissions.c.next_attempt_at)
sa.Index("ix_submissions_lease", submissions.c.state, submissions.c.lease_expires_at)
sa.Index("ix_submissions_route_state", submissions.c.route, submissions.c.state)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "submission_id",
        sa.String(40),
        sa.ForeignKey("submissions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # create | reconcile
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(128)),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("ticket_id", sa.String(64)),
    sa.Column("error", sa.Text),
)
sa.Index("ix_attempts_submission", attempts.c.submission_id)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),  # the route-namespaced dedup key
    sa.Column("generation", sa.Integer, nullable=False),  # bumped when a closed one fires again
    sa.Column("submission_id", sa.String(40), nullable=False),
    sa.Column("ticket_open", sa.Boolean),  # last answer of the list API, cached
    sa.Column("checked_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

seen_messages = sa.Table(
    "seen_messages",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("answer", sa.Text),  # JSON of the 2xx it was given; NULL while in progress
)
sa.Index("ix_seen_messages_seen_at", seen_messages.c.seen_at)
