"""Tickets the bridge made, for the mirror's tests: in the emulator with our references,
their submissions delivered in the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import requests

from bridge.mapping import footer
from bridge.outbox.records import Outcome, new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from bridge.proprofs.emulator import EmulatorServer


def made(
    store: SubmissionStore, emulator: EmulatorServer, count: int, age: float = 3600.0
) -> list[str]:
    """``count`` tickets the bridge made ``age`` seconds ago (their submissions delivered,
    their references in their descriptions): their ticket ids."""
    then = time.time() - age
    sids = [new_submission_id(then) for _ in range(count)]
    created = datetime.fromtimestamp(then + 1, UTC).isoformat()
    tickets = [
        {
            "email": f"person{n % 3}@example.com",
            "subject": f"Question {n}",
            "description": f"Hi {n}" + footer(sid),
            "created": created,
        }
        for n, sid in enumerate(sids)
    ]
    answer = requests.post(
        f"{emulator.url}/_emulator/tickets", json={"tickets": tickets}, timeout=10
    )
    answer.raise_for_status()
    ticket_ids = [str(i) for i in answer.json()["ticket_ids"]]
    for sid, ticket_id in zip(sids, ticket_ids, strict=True):
        draft = TicketDraft(email="p@example.com", subject="q", description=footer(sid))
        store.enqueue("contact", "form", draft, submission_id=sid, now=then)
        (claim,) = store.claim("w", 1, now=then)
        store.finish(claim, Outcome.delivered(ticket_id), kind="create", started_at=then, now=then)
    return ticket_ids


def sync(store: SubmissionStore, settings: Any) -> None:
    """One poll of the mirror, as the delivery process makes it."""
    from bridge.app import proprofs_client
    from bridge.outbox.mirror import Mirror

    with proprofs_client(settings) as client:
        Mirror(store, client).poll(force=True)
