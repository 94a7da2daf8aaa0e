"""Alert incidents: each alert group's current ticket, its notifications, staff's labels."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..proprofs.models import TicketDraft
from .records import (
    EnqueueResult,
    Incident,
    IncidentEvent,
    StoreUnavailable,
    Submission,
)
from .tables import incident_events, incidents, submissions

if TYPE_CHECKING:
    from .database import Database

s = submissions


class IncidentStore:
    """One row per alert group (route, key) and one per notification of it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, route: str, key: str) -> Incident | None:
        """The incident of an alert group, with its current submission."""
        with self.db.read() as conn:
            row = (
                conn.execute(
                    _incident_query().where(incidents.c.route == route, incidents.c.key == key)
                )
                .mappings()
                .first()
            )
        return _incident_from(row) if row is not None else None

    def list(
        self, *, route: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[Incident]:
        """Alert groups, the most recently active first."""
        query = _incident_query().order_by(incidents.c.updated_at.desc(), incidents.c.key)
        if route:
            query = query.where(incidents.c.route == route)
        with self.db.read() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
        return [_incident_from(r) for r in rows]

    def open(
        self,
        route: str,
        kind: str,
        key: str,
        generation: int,
        draft: TicketDraft,
        *,
        submission_id: str,
        meta: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> EnqueueResult:
        """Start generation ``generation`` of an incident and enqueue its ticket, atomically.

        Two replicas racing for the same generation meet a primary key or the
        submissions' unique dedup key: one stores, the other gets ``duplicate``.
        """
        now = time.time() if now is None else now
        row = {
            "id": submission_id,
            "route": route,
            "kind": kind,
            "draft": json.dumps(draft.to_dict()),
            "dedup_key": f"{key}#{generation}",
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_token": 0,
            "meta": json.dumps(dict(meta or {})),
            "created_at": now,
            "updated_at": now,
        }
        tracked = _fresh(draft, now)
        try:
            with self.db.write() as conn:
                if generation == 1:
                    conn.execute(
                        incidents.insert().values(
                            route=route,
                            key=key,
                            generation=1,
                            submission_id=submission_id,
                            ticket_open=None,
                            checked_at=None,
                            created_at=now,
                            updated_at=now,
                            **tracked,
                        )
                    )
                else:
                    moved = conn.execute(
                        incidents.update()
                        .where(
                            incidents.c.route == route,
                            incidents.c.key == key,
                            incidents.c.generation == generation - 1,
                        )
                        .values(
                            generation=generation,
                            submission_id=submission_id,
                            ticket_open=None,
                            checked_at=None,
                            updated_at=now,
                            resolved_at=None,
                            **tracked,
                        )
                    )
                    if moved.rowcount != 1:
                        raise _Lost()
                conn.execute(s.insert().values(**row))
            return EnqueueResult(submission_id, False, "pending")
        except (IntegrityError, _Lost):
            current = self.get(route, key)
            if current is None:
                raise StoreUnavailable("the incident changed while opening it") from None
            sub = current.submission
            return EnqueueResult(sub.id, True, sub.state, sub.ticket_id)

    def record(
        self,
        route: str,
        key: str,
        generation: int,
        status: str,
        outcome: str,
        *,
        submission_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> None:
        """Note one notification of an alert group (its incident page lists them)."""
        now = time.time() if now is None else now
        with self.db.write() as conn:
            record_event(conn, route, key, generation, status, outcome, submission_id, labels, now)

    def record_check(
        self,
        route: str,
        key: str,
        generation: int,
        is_open: bool,
        *,
        muted: bool = False,
        snooze: tuple[str, float] | None = None,
        now: float | None = None,
    ) -> None:
        """Cache what the list API said about the incident's ticket: open or not, and what
        staff's labels on it say (``muted``; ``snooze`` as the label and its end). A snooze
        label already seen keeps the end it was given when first seen."""
        now = time.time() if now is None else now
        i = incidents
        values: dict[str, Any] = {
            "ticket_open": is_open,
            "checked_at": now,
            "updated_at": now,
            "muted": muted,
        }
        if snooze is None:
            values.update(snooze_label=None, snoozed_until=None)
        else:
            label, until = snooze
            values["snooze_label"] = label
            values["snoozed_until"] = sa.case(
                (i.c.snooze_label == label, sa.func.coalesce(i.c.snoozed_until, until)),
                else_=until,
            )
        with self.db.write() as conn:
            conn.execute(
                i.update()
                .where(i.c.route == route, i.c.key == key, i.c.generation == generation)
                .values(**values)
            )

    def events(self, route: str, key: str, *, limit: int = 500) -> Sequence[IncidentEvent]:
        """The group's notifications, oldest first (the last ``limit``), with the tickets
        they became."""
        e = incident_events
        query = (
            sa.select(e, s.c.ticket_id, s.c.state)
            .select_from(e.outerjoin(s, s.c.id == e.c.submission_id))
            .where(e.c.route == route, e.c.key == key)
            .order_by(e.c.received_at.desc(), e.c.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            IncidentEvent(
                generation=r["generation"],
                status=r["status"],
                outcome=r["outcome"],
                submission_id=r["submission_id"],
                received_at=r["received_at"],
                ticket_id=r["ticket_id"],
                state=r["state"],
            )
            for r in reversed(rows)
        ]

    def trim_events(self, *, older_than: float, now: float | None = None) -> int:
        """Forget notifications older than ``older_than`` seconds; how many."""
        cutoff = (time.time() if now is None else now) - older_than
        with self.db.write() as conn:
            result = conn.execute(
                incident_events.delete().where(incident_events.c.received_at < cutoff)
            )
        return int(result.rowcount)


def record_event(
    conn: Connection,
    route: str,
    key: str,
    generation: int,
    status: str,
    outcome: str,
    submission_id: str | None,
    labels: Mapping[str, str] | None,
    now: float,
) -> None:
    """One notification's line of the incident's history, in the caller's transaction."""
    conn.execute(
        incident_events.insert().values(
            route=route,
            key=key,
            generation=generation,
            status=status,
            outcome=outcome,
            submission_id=submission_id,
            received_at=now,
        )
    )
    values: dict[str, Any] = {"resolved_at": now if status == "resolved" else None}
    if labels:
        values["labels"] = json.dumps(dict(labels))
    conn.execute(
        incidents.update()
        .where(incidents.c.route == route, incidents.c.key == key)
        .values(**values)
    )


def _fresh(draft: TicketDraft, now: float) -> dict[str, Any]:
    """What a new generation's ticket says: one firing, seen now."""
    return {
        "occurrences": 1,
        "first_seen": now,
        "last_seen": now,
        "state": "firing",
        "priority": draft.priority,
    }


def _incident_query() -> sa.Select[Any]:
    i = incidents
    return sa.select(
        i.c.generation,
        i.c.ticket_open,
        i.c.checked_at,
        i.c.muted,
        i.c.snoozed_until,
        i.c.snooze_label,
        i.c.labels,
        i.c.resolved_at,
        i.c.created_at.label("incident_created_at"),
        i.c.route.label("incident_route"),
        i.c.key.label("incident_key"),
        s,
    ).join(s, s.c.id == i.c.submission_id)


def _incident_from(row: Any) -> Incident:
    return Incident(
        row["incident_route"],
        row["incident_key"],
        row["generation"],
        Submission.from_row(row),
        row["ticket_open"],
        row["checked_at"],
        created_at=row["incident_created_at"],
        muted=bool(row["muted"]),
        snoozed_until=row["snoozed_until"],
        snooze_label=row["snooze_label"],
        labels=json.loads(row["labels"]) if row["labels"] else {},
        resolved_at=row["resolved_at"],
    )


class _Lost(Exception):
    """Another replica opened this incident generation first."""
