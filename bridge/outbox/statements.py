"""The outbox's statements, built once and bound at each call."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..attachments import Attachment
from ..proprofs.models import TicketDraft
from .records import Submission
from .tables import attachments as files_table
from .tables import attempts, route_pauses, submissions

s = submissions
# The hot insert, as driver SQL: no statement is built or compiled per submission.
ENQUEUE_COLUMNS = (
    "id",
    "route",
    "kind",
    "draft",
    "dedup_key",
    "state",
    "attempts",
    "next_attempt_at",
    "lease_token",
    "meta",
    "created_at",
    "updated_at",
)


@functools.lru_cache(maxsize=64)
def enqueue_rows_sql(mark: str, count: int) -> str:
    """The insert of ``count`` submission rows (made once per batch size)."""
    values = f"({', '.join([mark] * len(ENQUEUE_COLUMNS))})"
    return (
        f"INSERT INTO {s.name} ({', '.join(ENQUEUE_COLUMNS)}) "
        f"VALUES {', '.join([values] * count)} ON CONFLICT DO NOTHING"
    )


def due_first(
    limit: int,
    now: sa.ColumnElement[float] | float,
    running: sa.ColumnElement[bool],
    *,
    lock: bool = False,
) -> sa.Select[Any]:
    """The ids of the ``limit`` submissions due first: one index walk per state, each
    stopping at ``limit``, then the earliest of those (one condition over all states made
    the database sort every due row). ``lock`` (PostgreSQL): each walk is a CTE that locks
    what it reads and skips rows another claim holds (``FOR UPDATE SKIP LOCKED``).
    """
    due_in = (
        sa.and_(s.c.state == "pending", s.c.next_attempt_at <= now),
        sa.and_(s.c.state == "unknown", s.c.next_attempt_at <= now),
        sa.and_(s.c.state == "in_flight", s.c.lease_expires_at < now),  # a lease lost
    )
    walks = []
    for n, condition in enumerate(due_in):
        walk = (
            sa.select(s.c.id, s.c.next_attempt_at)
            .where(condition, running)
            .order_by(s.c.next_attempt_at)
            .limit(limit)
        )
        walks.append(
            walk.with_for_update(skip_locked=True).cte(f"due_{n}") if lock else walk.subquery()
        )
    due = sa.union_all(*(sa.select(walk) for walk in walks)).subquery()
    return sa.select(due.c.id).order_by(due.c.next_attempt_at).limit(limit)


@functools.lru_cache(maxsize=64)
def claim_statement(sqlite: bool, limit: int) -> sa.Update:
    """The claim of up to ``limit`` due submissions, built once per size; the time, the
    owner and the lease's end are bound at each call (``now``, ``owner``, ``expires``).
    Building it and working out its cache key anew for every claim had cost the delivery
    worker more CPU than the claim's own work in the database."""
    now: sa.ColumnElement[float] = sa.bindparam("now", type_=sa.Float)
    # A paused route's submissions wait where they are.
    running = s.c.route.not_in(sa.select(route_pauses.c.route))
    pick = due_first(limit, now, running, lock=not sqlite)
    sending = s.c.state == "pending"
    return (
        s.update()
        .where(s.c.id.in_(pick.scalar_subquery()))
        .values(
            state="in_flight",
            claimed_from=s.c.state,
            lease_owner=sa.bindparam("owner", type_=sa.String),
            lease_token=s.c.lease_token + 1,
            lease_expires_at=sa.bindparam("expires", type_=sa.Float),
            attempts=sa.case((sending, s.c.attempts + 1), else_=s.c.attempts),
            sent_at=sa.case((sending, now), else_=s.c.sent_at),
            updated_at=now,
        )
        .returning(*s.c)
    )


@functools.lru_cache(maxsize=16)
def finish_statement(columns: tuple[str, ...]) -> sa.Update:
    """An outcome's update, fenced by the claim's lease token, built once per set of
    columns it sets (one per kind of outcome): ``b_id`` and ``b_token`` pick the row, and
    each column ``c`` takes ``v_c``. The lease is always let go."""
    changed = ("lease_owner", "lease_expires_at", "updated_at", *columns)
    return (
        s.update()
        .where(
            s.c.id == sa.bindparam("b_id"),
            s.c.lease_token == sa.bindparam("b_token"),
            s.c.state == "in_flight",
        )
        .values({name: sa.bindparam(f"v_{name}", type_=s.c[name].type) for name in changed})
    )


def let_go(
    claim: Submission, values: Mapping[str, Any], now: float
) -> tuple[sa.Update, dict[str, Any]]:
    """The update that lets ``claim``'s lease go and sets ``values``, with its parameters:
    it changes the row only while this claim still holds the lease (fencing)."""
    changes = {
        "b_id": claim.id,
        "b_token": claim.lease_token,
        "v_lease_owner": None,
        "v_lease_expires_at": None,
        "v_updated_at": now,
        **{f"v_{name}": value for name, value in values.items()},
    }
    return finish_statement(tuple(values)), changes


#: One attempt's row (its columns are the parameters given).
RECORD_ATTEMPT = attempts.insert()


def attachment_row(attachment: Attachment) -> dict[str, Any]:
    """An attachment as its row's values."""
    return {k: getattr(attachment, k) for k in Attachment.__dataclass_fields__}


def drop_attachments(conn: Connection, ids: Any) -> set[str]:
    """Delete the attachment rows of the submissions ``ids`` (a list or a subquery); the
    digests they named."""
    where = files_table.c.submission_id.in_(ids)
    digests = set(conn.execute(sa.select(files_table.c.digest).where(where)).scalars())
    if digests:
        conn.execute(files_table.delete().where(where))
    return digests


def insert_made(
    conn: Connection, sid: str, route: str, draft: TicketDraft, key: str, now: float
) -> None:
    """A ticket the bridge itself raises (silence, storm summary), as a submission."""
    conn.execute(
        s.insert().values(
            id=sid,
            route=route,
            kind="hook",
            draft=json.dumps(draft.to_dict()),
            dedup_key=key,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            lease_token=0,
            meta=json.dumps({"made_by": "bridge"}),
            created_at=now,
            updated_at=now,
        )
    )
