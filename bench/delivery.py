"""Delivery throughput against a slow ProProfs, and the cost of a durable enqueue.

1. The emulator adds 100 ms to every call; a real ``bridge worker`` process with
   concurrency 8 delivers N submissions, on SQLite and on PostgreSQL (when reachable).
   Ideal = 8 / 0.1 s = 80 tickets/s; target measured/ideal >= 0.95. Printed beside it:
   the same ratio against the latency one create really takes through the bridge's client
   (the 100 ms plus the emulator's and the connection's own few milliseconds), measured
   against the same emulator in the same run.
2. Enqueue: stored submissions/s through ``SubmissionStore.enqueue`` on SQLite (WAL,
   synchronous=FULL), one writer, against a bare sqlite3 INSERT + COMMIT loop of the same
   row into the same table (same columns and indexes, same pragmas), in the same run,
   each after as many untimed writes first (steady state). Target >= 0.6.

Run: ``.venv/bin/python bench/delivery.py [--tickets N] [--engine sqlite|postgres|both]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import (
    ACCOUNT_EMAIL,
    ROOT,
    TOKEN,
    emulator_process,
    verdict,
    write_config,
)
from bridge.mapping import footer
from bridge.outbox.records import Submission, new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import ProProfsClient, TicketDraft

LATENCY_S = 0.1
CONCURRENCY = 8


def draft(sid: str, n: int) -> TicketDraft:
    return TicketDraft(
        email=f"user{n}@example.com",
        subject=f"Bench {n}",
        inbox="IB238-436",
        description=f"Body {n}" + footer(sid),
        priority="normal",
    )


def call_latency(emulator_url: str, calls: int = 20) -> float:
    """The median seconds of one create against this emulator, one call at a time, through
    the bridge's client: the upstream's latency as a client sees it (the configured delay
    plus the emulator's and the connection's own time)."""
    with ProProfsClient(emulator_url + "/app/api/v1/", ACCOUNT_EMAIL, TOKEN) as client:
        times = []
        for n in range(calls):
            started = time.perf_counter()
            client.create_ticket(draft("pb-" + "0" * 20, n))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def delivery(tickets: int, store_url: str, workdir: Path) -> tuple[float, float]:
    """Tickets/s delivered by a ``bridge worker``, and the upstream's measured latency."""
    with emulator_process("--latency-ms", str(int(LATENCY_S * 1000))) as emulator_url:
        latency = call_latency(emulator_url)
        config = workdir / "bridge.yaml"
        write_config(
            config,
            emulator_url,
            store_url,
            {"bench": {"kind": "hook", "ticket": {"email": "bench@example.com"}}},
            delivery={"concurrency": CONCURRENCY, "poll_interval": 0.05},
        )
        store = SubmissionStore(store_url)
        for n in range(tickets):
            sid = new_submission_id()
            store.enqueue("bench", "hook", draft(sid, n), submission_id=sid)
        worker = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "worker", "--config", str(config), "--until-idle"],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
        )
        worker.wait(timeout=600)
        rows = store.list(limit=tickets)
        store.dispose()
    return throughput(rows, tickets), latency


def throughput(rows: list[Submission], tickets: int) -> float:
    """Tickets/s from the first send to the last delivery; every one must be delivered."""
    delivered = [r for r in rows if r.state == "delivered"]
    if len(delivered) != tickets:
        raise SystemExit(f"only {len(delivered)} of {tickets} delivered")
    first = min(r.sent_at or r.created_at for r in delivered)
    last = max(r.delivered_at or 0 for r in delivered)
    return tickets / (last - first)


def enqueue_rates(count: int, workdir: Path) -> tuple[float, float]:
    store = SubmissionStore(f"sqlite:///{workdir / 'enqueue.db'}")
    store.engine  # noqa: B018 - migrate before timing
    drafts = [draft(new_submission_id(), n) for n in range(count)]
    # Both sides write as many rows untimed first: a running service's log file has
    # reached its size, and the time measured is that of the steady state, not of the
    # first second of a new database file.
    for d in drafts:
        store.enqueue("bench", "hook", d)
    started = time.perf_counter()
    for d in drafts:
        store.enqueue("bench", "hook", d)
    ours = count / (time.perf_counter() - started)
    store.dispose()

    bare_db = workdir / "bare.db"
    SubmissionStore(f"sqlite:///{bare_db}").engine  # noqa: B018 - the same table, migrated
    conn = sqlite3.connect(bare_db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    now = time.time()
    payloads = [
        (
            new_submission_id(),
            "bench",
            "hook",
            json.dumps(d.to_dict()),
            None,
            "pending",
            0,
            now,
            0,
            "{}",
            now,
            now,
        )
        for d in drafts
    ]
    insert = (
        "INSERT INTO submissions (id, route, kind, draft, dedup_key, state, attempts, "
        "next_attempt_at, lease_token, meta, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def insert_all(rows: list[tuple[object, ...]]) -> None:
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(insert, row)
            conn.execute("COMMIT")

    insert_all([(f"warm-{n}", *row[1:]) for n, row in enumerate(payloads)])
    started = time.perf_counter()
    insert_all(payloads)
    bare = count / (time.perf_counter() - started)
    conn.close()
    return ours, bare


def pg_schema(url: str) -> tuple[str, str]:
    """A fresh schema for this run, so the benchmark never touches other data."""
    import sqlalchemy as sa

    schema = f"bench_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    scoped = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    with SubmissionStore(scoped, auto_upgrade=False) as store:
        store.upgrade()
    return schema, scoped


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def reachable(url: str) -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.SQLAlchemyError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=800)
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    tickets = max(100, min(args.tickets, 20_000))
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    ideal = CONCURRENCY / LATENCY_S
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for engine in engines:
            if engine == "postgres" and not reachable(args.pg_url):
                print(f"delivery (postgres): {args.pg_url} is not reachable; skipped")
                continue
            store_url = f"sqlite:///{workdir / 'delivery.db'}"
            schema = None
            if engine == "postgres":
                schema, store_url = pg_schema(args.pg_url)
            try:
                rate, latency = delivery(tickets, store_url, workdir)
            finally:
                if schema:
                    drop_schema(args.pg_url, schema)
            measured = CONCURRENCY / latency
            print(
                f"delivery ({engine}): {tickets} tickets, emulator latency "
                f"{LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}: {rate:.1f} tickets/s\n"
                f"  against the configured latency: ideal {ideal:.0f}/s -> {rate / ideal:.3f} "
                f"(target >= 0.95) {verdict(rate / ideal >= 0.95)}\n"
                f"  against the latency one create takes through the client, measured in this "
                f"run ({latency * 1000:.1f} ms): ideal {measured:.1f}/s -> {rate / measured:.3f} "
                f"(target >= 0.95) {verdict(rate / measured >= 0.95)}"
            )
        ours, bare = enqueue_rates(max(100, min(args.enqueues, 50_000)), workdir)
        print(
            f"enqueue on SQLite (WAL, synchronous=FULL), one writer: {ours:,.0f} submissions/s;"
            f" bare sqlite3 INSERT+COMMIT of the same row {bare:,.0f}/s -> ratio "
            f"{ours / bare:.2f} (target >= 0.6) {verdict(ours / bare >= 0.6)}"
        )


if __name__ == "__main__":
    main()
