"""Delivery throughput against a slow ProProfs, and the cost of a durable enqueue.

1. The emulator adds 100 ms to every call; a real ``bridge worker`` process with
   concurrency 8 delivers N submissions. Ideal = 8 / 0.1 s = 80 tickets/s; target
   measured/ideal >= 0.90.
2. Enqueue: stored submissions/s through ``SubmissionStore.enqueue`` on SQLite
   (WAL, synchronous=FULL) versus a bare sqlite3 INSERT + COMMIT loop with the same
   pragmas, in the same run.

Run: ``.venv/bin/python bench/delivery.py [--tickets N] [--engine sqlite|postgres]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ROOT, emulator_process, write_config
from bridge.mapping import footer
from bridge.outbox.store import SubmissionStore, new_submission_id
from bridge.proprofs import TicketDraft

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


def delivery(tickets: int, store_url: str, workdir: Path) -> float:
    with emulator_process("--latency-ms", str(int(LATENCY_S * 1000))) as emulator_url:
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
    started = time.perf_counter()
    for d in drafts:
        store.enqueue("bench", "hook", d)
    ours = count / (time.perf_counter() - started)
    store.dispose()

    conn = sqlite3.connect(workdir / "bare.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, draft TEXT, created REAL)")
    payloads = [(new_submission_id(), json.dumps(d.to_dict()), time.time()) for d in drafts]
    started = time.perf_counter()
    for row in payloads:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", row)
        conn.execute("COMMIT")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=800)
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    tickets = max(100, min(args.tickets, 20_000))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store_url = f"sqlite:///{workdir / 'delivery.db'}"
        schema = None
        if args.engine == "postgres":
            schema, store_url = pg_schema(args.pg_url)
        try:
            rate = delivery(tickets, store_url, workdir)
        finally:
            if schema:
                drop_schema(args.pg_url, schema)
        ideal = CONCURRENCY / LATENCY_S
        print(
            f"delivery ({args.engine}): {tickets} tickets, emulator latency "
            f"{LATENCY_S * 1000:.0f} ms, concurrency {CONCURRENCY}"
        )
        print(
            f"  measured {rate:.1f} tickets/s, ideal {ideal:.0f}/s -> measured/ideal "
            f"{rate / ideal:.3f} (target >= 0.90) {'OK' if rate / ideal >= 0.9 else 'MISS'}"
        )
        ours, bare = enqueue_rates(max(100, min(args.enqueues, 50_000)), workdir)
        print(
            f"enqueue on SQLite (WAL, synchronous=FULL): {ours:,.0f} submissions/s; bare "
            f"sqlite3 INSERT+COMMIT {bare:,.0f}/s -> ratio {ours / bare:.2f}"
        )


if __name__ == "__main__":
    main()
