"""The mirror's cost in list calls: a first sync of 10,000 tickets the bridge made, then
polls at rest and polls under 100 changes an hour, counted by the emulator itself
(``GET /_emulator/stats``).

The emulator (its own process) holds the tickets, each with the reference of a delivered
submission in a SQLite store; the mirror's loop runs here against both. An hour of polls
at the configured ``every`` is run faster: each poll is made in turn, as the loop would
make it, and the changes an hour brings are spread over the polls an hour holds. The
baseline, in the same run, is what reading the account whole once costs (the first
sync's calls): what each poll would cost without a cursor.

Run: ``.venv/bin/python bench/mirror.py [--tickets 10000] [--every 30]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ACCOUNT_EMAIL, TOKEN, emulator_process
from bridge.mapping import footer
from bridge.outbox.mirror import Mirror
from bridge.outbox.records import new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.outbox.tables import submissions
from bridge.proprofs.client import ProProfsClient

HOUR = 3600.0


def seed(emulator: str, store: SubmissionStore, count: int) -> None:
    """``count`` tickets made a day ago, each the ticket of a delivered submission."""
    then = time.time() - 86400
    created = datetime.fromtimestamp(then + 60, UTC).isoformat()
    for start in range(0, count, 1000):
        sids = [new_submission_id(then) for _ in range(min(1000, count - start))]
        tickets = [
            {
                "email": f"person{n % 97}@example.com",
                "subject": f"Question {start + n}",
                "description": f"Question {start + n}" + footer(sid),
                "created": created,
            }
            for n, sid in enumerate(sids)
        ]
        answer = requests.post(
            f"{emulator}/_emulator/tickets", json={"tickets": tickets}, timeout=120
        )
        answer.raise_for_status()
        rows = [
            {
                "id": sid,
                "route": "contact",
                "kind": "form",
                "draft": '{"email": "p@example.com", "subject": "q"}',
                "state": "delivered",
                "attempts": 1,
                "next_attempt_at": then,
                "lease_token": 1,
                "ticket_id": str(ticket_id),
                "meta": "{}",
                "created_at": then,
                "updated_at": then,
                "delivered_at": then,
            }
            for sid, ticket_id in zip(sids, answer.json()["ticket_ids"], strict=True)
        ]
        with store.db.write() as conn:
            conn.execute(submissions.insert(), rows)


def calls(emulator: str) -> int:
    stats = requests.get(f"{emulator}/_emulator/stats", timeout=10).json()
    return int(stats["calls"].get("list/ticket/", 0))


def an_hour(
    mirror: Mirror, emulator: str, tickets: list[str], changes: int, every: float, speed: float
) -> tuple[int, int]:
    """The polls of an hour at ``every``, ``speed`` times faster, with ``changes`` staff
    changes spread over them: (list calls, polls)."""
    polls = int(HOUR // every)
    before = calls(emulator)
    changed = 0
    for n in range(polls):
        due = (n + 1) * changes // polls
        while changed < due:  # a staff reply to one of the tickets
            ticket_id = tickets[(changed * 7919) % len(tickets)]
            requests.post(
                f"{emulator}/_emulator/tickets/{ticket_id}/reply",
                json={"text": f"Reply {changed}"},
                timeout=10,
            ).raise_for_status()
            changed += 1
        mirror.poll(force=True)
        time.sleep(every / speed)
    return calls(emulator) - before, polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--budget", type=int, default=20, help="max_calls_per_minute")
    parser.add_argument("--speed", type=float, default=60.0, help="how much faster than real")
    args = parser.parse_args()
    count = max(100, min(args.tickets, 50_000))
    every = max(5.0, min(args.every, 600.0))
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as emulator:
        store = SubmissionStore(f"sqlite:///{Path(tmp) / 'mirror.db'}")
        store.upgrade()
        seed(emulator, store, count)
        client = ProProfsClient(emulator + "/app/api/v1/", ACCOUNT_EMAIL, TOKEN, read_timeout=60)
        # The first sync, without the budget (how long it takes with it is computed).
        mirror = Mirror(store, client, every=every, max_calls_per_minute=10**6)
        before = calls(emulator)
        started = time.perf_counter()
        while mirror.poll(force=True):
            if store.mirror.state().initial_from is None:
                break
        first_seconds = time.perf_counter() - started
        first_calls = calls(emulator) - before
        kept = store.mirror.count()
        with store.db.read() as conn:
            column = submissions.select().with_only_columns(submissions.c.ticket_id)
            tickets = [str(t) for (t,) in conn.execute(column.limit(2000))]
        # An hour of polls, each `every` apart, run `speed` times faster: the poll's look
        # back (its overlap for clocks and the list's lag) shrinks by as much.
        mirror.overlap /= args.speed
        mirror.calls.clear()
        mirror.budget = int(args.budget * args.speed)  # a minute lasts 1/speed as long
        rest_calls, polls = an_hour(mirror, emulator, tickets, 0, every, args.speed)
        busy_calls, _ = an_hour(mirror, emulator, tickets, 100, every, args.speed)
        replied = sum(
            1
            for t in store.mirror.of_requester("person0@example.com", limit=10**6)
            if t.first_reply_at is not None
        )
        client.close()
        store.dispose()
    budget_minutes = first_calls / args.budget
    print(
        f"mirror: {count:,} tickets the bridge made; every {every:g} s; budget "
        f"{args.budget} list calls a minute"
    )
    print(
        f"  first sync: {first_calls} list calls (25 a page), {first_seconds:.1f} s without "
        f"the budget, {budget_minutes:.0f} min with it; {kept:,} tickets kept"
    )
    print(
        f"  an hour at rest: {rest_calls} calls in {polls} polls "
        f"({rest_calls / polls:.2f} a poll); reading the account whole each poll: "
        f"{first_calls * polls:,} (ratio {rest_calls / (first_calls * polls):.4f})"
    )
    print(
        f"  an hour with 100 changes: {busy_calls} calls in {polls} polls "
        f"({busy_calls / polls:.2f} a poll; ratio to at rest {busy_calls / rest_calls:.2f})"
    )
    print(f"  replies the mirror saw for one requester: {replied}")
    if kept != count or rest_calls != polls:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
