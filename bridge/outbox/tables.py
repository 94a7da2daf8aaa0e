"""The outbox schema: one SQL schema for SQLite and PostgreSQL (SQLAlchemy Core).

Times are stored as UNIX seconds (float): the same comparisons on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

from .records import STATES

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
    sa.Column("scrubbed_at", sa.Float),  # personal content removed (retention, erasure)
    # An update of an alert group's ticket: the submission whose create made that ticket
    # (NULL for a create). The update sends the draft's subject, description, priority
    # and custom fields to the ticket once it exists.
    sa.Column("target", sa.String(40)),
    sa.UniqueConstraint("route", "dedup_key", name="uq_submissions_route_dedup"),
    sa.CheckConstraint(f"state IN {STATES!r}", name="ck_submissions_state"),
)
sa.Index("ix_submissions_due", submissions.c.state, submissions.c.next_attempt_at)
sa.Index("ix_submissions_lease", submissions.c.state, submissions.c.lease_expires_at)
sa.Index("ix_submissions_route_state", submissions.c.route, submissions.c.state)
# Only updates have a target: creates add nothing to this index.
sa.Index(
    "ix_submissions_target",
    submissions.c.target,
    sqlite_where=submissions.c.target.isnot(None),
    postgresql_where=submissions.c.target.isnot(None),
)

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
    # What staff said through the ticket's labels, as last read with the list API.
    sa.Column("muted", sa.Boolean),  # the wontfix label: no new ticket for this group
    sa.Column("snoozed_until", sa.Float),  # a snooze label: no new ticket before then
    sa.Column("snooze_label", sa.String(64)),  # the label that set it (seen again: not reset)
    sa.Column("labels", sa.Text),  # JSON: the group's labels, from its last notification
    sa.Column("resolved_at", sa.Float),  # the last resolved notification, if after the firing
    # What the bridge keeps its ticket saying (routes with ``update:``), this generation:
    sa.Column("occurrences", sa.Integer),  # firing notifications
    sa.Column("first_seen", sa.Float),
    sa.Column("last_seen", sa.Float),
    sa.Column("state", sa.String(16)),  # firing | resolved
    sa.Column("priority", sa.String(16)),  # the ticket's priority as the bridge last set it
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

#: Submissions held back as likely spam: no ticket until an operator releases one (it then
#: moves into ``submissions`` as pending, under the same id), deleted when discarded or
#: once ``expires_at`` has passed.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("draft", sa.Text, nullable=False),
    sa.Column("dedup_key", sa.String(512)),
    sa.Column("meta", sa.Text),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of what matched
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
sa.Index("ix_quarantine_expires", quarantine.c.expires_at)
sa.Index("ix_quarantine_route", quarantine.c.route, quarantine.c.created_at)

#: The files of a submission (in ``submissions`` or ``quarantine``), kept by the file store
#: under ``digest``; committed in the same transaction as the submission itself.
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("submission_id", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # when its link stops working
)
sa.Index("ix_attachments_digest", attachments.c.digest)

#: What happened to each alert group: every notification (a new ticket, a repeat, a
#: resolve, one held back by staff's labels), for its incident page.
incident_events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # firing | resolved
    sa.Column(
        "outcome", sa.String(16), nullable=False
    ),  # ticket | repeat | resolved | muted | snoozed
    sa.Column("submission_id", sa.String(40)),
    sa.Column("received_at", sa.Float, nullable=False),
)
sa.Index("ix_incident_events_group", incident_events.c.route, incident_events.c.key)
sa.Index("ix_incident_events_received", incident_events.c.received_at)

#: Routes an operator paused: they keep taking and storing submissions, and none of
#: theirs is delivered until the route is resumed.
route_pauses = sa.Table(
    "route_pauses",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("paused_at", sa.Float, nullable=False),
    sa.Column("paused_by", sa.String(128)),
)

#: Heartbeats (dead man's switches): when each route last heard its heartbeat, and the
#: silence ticket raised since (one, whatever the number of delivery processes).
heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("silent_since", sa.Float),  # set by the one process that raised the ticket
    sa.Column("silent_submission_id", sa.String(40)),
)

#: Alert groups a storm guard held back: one summary ticket per route and window lists them.
storm_groups = sa.Table(
    "storm_groups",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("window", sa.BigInteger, primary_key=True),  # window start, UNIX seconds
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
)

#: New alert groups per route and window (the storm guard's count, shared by instances).
storm_windows = sa.Table(
    "storm_windows",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("window", sa.BigInteger, primary_key=True),
    sa.Column("new_groups", sa.Integer, nullable=False),
    sa.Column("summary_id", sa.String(40)),  # the summary ticket's submission, once made
)

#: The last raw payloads of a route (``capture: N``), secrets removed, for the console.
captures = sa.Table(
    "captures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON, auth headers removed
    sa.Column("body", sa.Text, nullable=False),  # secrets replaced; cut at 64 KiB
    sa.Column("truncated", sa.Boolean, nullable=False),
)
sa.Index("ix_captures_route", captures.c.route, captures.c.id)

#: Console sign-ins: a session cookie names one of these; logout deletes it, so a copied
#: cookie stops working.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: Keys the bridge made for itself (the signing key when ``server.secret_key`` is unset).
keys = sa.Table(
    "keys",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

#: The mirror: the tickets the bridge made, as the list API last showed them
#: (outbox/mirror.py); each row names the submission that made its ticket.
mirror_tickets = sa.Table(
    "mirror_tickets",
    metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("submission_id", sa.String(40), nullable=False),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requester", sa.String(255), nullable=False),  # lower case
    sa.Column("inbox", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("modified_at", sa.Float, nullable=False),
    sa.Column("first_reply_at", sa.Float),  # the first public staff reply
    sa.Column("data", sa.Text, nullable=False),  # the ticket (models.Ticket.to_dict)
    sa.Column("synced_at", sa.Float, nullable=False),
)
sa.Index("ix_mirror_tickets_requester", mirror_tickets.c.requester, mirror_tickets.c.created_at)
sa.Index("ix_mirror_tickets_inbox", mirror_tickets.c.inbox, mirror_tickets.c.created_at)

#: Where the mirror's sync stands: one row, taken in turn by one process at a time.
mirror_sync = sa.Table(
    "mirror_sync",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("cursor", sa.Float),  # every change before this is in the mirror
    sa.Column("initial_from", sa.Float),  # the first sync's next window; NULL once done
    sa.Column("initial_page", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_poll_at", sa.Float),
    sa.Column("owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("reply_times", sa.Text),  # JSON: per inbox, the median first reply, replies
)
