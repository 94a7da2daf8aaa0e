"""Retention and erasure: personal content goes after its time or on request; what
exactly-once needs stays. Checked by reading every table directly, on both engines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import Retention
from bridge.mapping import footer
from bridge.outbox.records import Outcome, new_submission_id
from bridge.outbox.store import SubmissionStore
from bridge.outbox.tables import metadata
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs import ProProfsClient, TicketDraft
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN
from tests.support.configs import FILE_FORM

PERSONAL = [
    "Jane Doe",
    "jane.doe@example.com",
    "+1 555 0100",
    "My card was charged twice",
    "order 4471",
    "https://shop.example/account/jane",
]
FAST = DeliverySettings(concurrency=2, poll_interval=0.05)


def jane(n: int = 0, email: str = "Jane.Doe@example.com") -> TicketDraft:
    sid_note = f"order 4471 #{n}"
    return TicketDraft(
        email=email,
        name="Jane Doe",
        phone="+1 555 0100",
        subject="My card was charged twice",
        description=f"My card was charged twice for {sid_note}.",
        inbox="IB238-436",
        priority="high",
        custom_fields={"CF1-1": "https://shop.example/account/jane"},
    )


def enqueue(store: SubmissionStore, draft: TicketDraft, **extra: object) -> str:
    sid = new_submission_id()
    described = replace(draft, description=(draft.description or "") + footer(sid))
    meta = {"page_url": "https://shop.example/account/jane", "request_id": "req-1"}
    store.enqueue("r", "form", described, submission_id=sid, meta=meta, **extra)  # type: ignore[arg-type]
    return sid


def everything(store: SubmissionStore) -> str:
    """Every value of every row of every table, as one text."""
    chunks = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                chunks.append(json.dumps([str(v) for v in row]))
    return "\n".join(chunks)


@pytest.fixture
def proprofs(emulator: EmulatorServer) -> Iterator[ProProfsClient]:
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN, list_backoff=0.01) as client:
        yield client


def worker(
    store: SubmissionStore, client: ProProfsClient, clock: list[float], **retention: float
) -> Worker:
    return Worker(
        store,
        client,
        FAST,
        clock=lambda: clock[0],
        retention={"r": Retention(**retention)},  # type: ignore[arg-type]
    )


def test_delivered_submissions_are_scrubbed_after_their_time_and_still_deduplicate_and_reconcile(
    store: SubmissionStore, proprofs: ProProfsClient, emulator: EmulatorServer
) -> None:
    ids = [enqueue(store, jane(n), dedup_key=f"r:k{n}") for n in range(3)]
    clock = [time.time()]
    run = worker(store, proprofs, clock, scrub_after=3600)
    run.run(until_idle=True, max_seconds=30)
    assert store.counts()["delivered"] == 3
    tickets = {i: store.get(i).ticket_id for i in ids}  # type: ignore[union-attr]
    clock[0] = time.time() + 3500
    run.housekeeping()
    assert all(p.lower() in everything(store).lower() for p in PERSONAL)  # not yet
    clock[0] = time.time() + 3700
    run.housekeeping()
    text = everything(store).lower()
    for personal in [*PERSONAL, "jane"]:
        assert personal.lower() not in text, personal
    for sid in ids:  # what exactly-once needs is all still there
        sub = store.get(sid)
        assert sub is not None and sub.state == "delivered" and sub.ticket_id == tickets[sid]
        assert sub.dedup_key is not None and sub.draft.inbox == "IB238-436"
        assert sid in (sub.draft.description or "")
    # A repeat of a scrubbed submission is still a duplicate of it, not a second ticket.
    again = store.enqueue("r", "form", jane(0), dedup_key="r:k0")
    assert again.duplicate and again.id == ids[0] and again.ticket_id == tickets[ids[0]]
    # Its outcome put in doubt (a lost lease, a crash): reconcile still finds its ticket
    # through the list API by its reference, and makes no other.
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("update submissions set state = 'unknown', next_attempt_at = 0 where id = :i"),
            {"i": ids[1]},
        )
    clock[0] = time.time()
    run.run(until_idle=True, max_seconds=30)
    sub = store.get(ids[1])
    assert sub is not None and sub.state == "delivered" and sub.ticket_id == tickets[ids[1]]
    assert len(emulator.state.tickets) == 3


def test_dead_submissions_have_their_own_period(
    store: SubmissionStore, proprofs: ProProfsClient
) -> None:
    sid = enqueue(store, jane())
    (claim,) = store.claim("w", 1)
    store.finish(claim, Outcome.dead("refused", 200), kind="create", started_at=time.time())
    clock = [time.time() + 100]
    run = worker(store, proprofs, clock, scrub_after=10, dead_after=1000)
    run.housekeeping()
    assert "Jane Doe" in everything(store)
    clock[0] = time.time() + 1100
    run.housekeeping()
    assert "Jane Doe" not in everything(store) and store.get(sid).state == "dead"  # type: ignore[union-attr]
    # Nothing is left to send: a scrubbed dead submission is not replayed.
    assert store.replay(sid) is False and store.replay_all_dead() == 0


def test_erase_removes_one_persons_data_everywhere_and_nobody_elses(
    store: SubmissionStore, proprofs: ProProfsClient, emulator: EmulatorServer
) -> None:
    delivered = enqueue(store, jane(0))
    Worker(store, proprofs, FAST).run(until_idle=True, max_seconds=30)
    pending = enqueue(store, jane(1, email="JANE.DOE@example.com"))
    held = store.quarantine.hold(
        "r", "form", jane(2), score=9, reasons=["keyword: charged"], expires_at=time.time() + 60
    )
    bob = enqueue(store, replace(jane(3, email="bob@example.com"), name="Bob Roe"))
    lookalike = enqueue(store, replace(jane(4, email="jane-doe@example.com"), name="Other Jane"))
    underscore = enqueue(store, replace(jane(5, email="a_b@example.com"), name="Ann B"))
    near = enqueue(store, replace(jane(6, email="axb@example.com"), name="Axel B"))

    report = store.privacy.erase("jane.doe@EXAMPLE.com")
    assert report == {
        "scrubbed": 2,
        "cancelled": 1,
        "quarantine_deleted": 1,
        "captures_deleted": 0,
        "files": 0,
    }
    text = everything(store)
    assert "jane.doe@example.com" not in text.lower() and "Jane Doe" not in text
    assert store.quarantine.get(held) is None
    assert store.get(delivered).state == "delivered"  # type: ignore[union-attr]
    cancelled = store.get(pending)
    assert cancelled is not None and cancelled.state == "dead"
    assert cancelled.last_error == "erased on request"
    # Nobody else's data was touched, and "_" in an address is not a wildcard.
    assert "Bob Roe" in text and "Other Jane" in text and "Axel B" in text
    assert store.privacy.erase("a_b@example.com")["scrubbed"] == 1
    assert store.get(near).draft.email == "axb@example.com"  # type: ignore[union-attr]
    assert store.get(underscore).draft.email == "removed@invalid"  # type: ignore[union-attr]
    assert store.get(bob).draft.email == "bob@example.com"  # type: ignore[union-attr]
    assert store.get(lookalike).draft.email == "jane-doe@example.com"  # type: ignore[union-attr]
    # The cancelled one is never sent: delivery goes on with the others only.
    tickets_before = len(emulator.state.tickets)
    Worker(store, proprofs, FAST).run(until_idle=True, max_seconds=30)
    assert len(emulator.state.tickets) == tickets_before + 3  # bob, lookalike, near
    assert all("Jane Doe" not in (t.name or "") for t in list(emulator.state.tickets.values())[1:])
    assert store.privacy.erase("nobody@example.com") == {
        "scrubbed": 0,
        "cancelled": 0,
        "quarantine_deleted": 0,
        "captures_deleted": 0,
        "files": 0,
    }


def test_bridge_erase_says_what_it_removed(store_url: str, tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "bridge.yaml"
    config.write_text(
        f"""
proprofs: {{account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
store: "{store_url}"
routes:
  r: {{kind: hook, ticket: {{email: alerts@example.com}}}}
"""
    )
    store = SubmissionStore(store_url)
    enqueue(store, jane())
    runner = CliRunner()
    done = runner.invoke(
        main, ["erase", "--config", str(config), "--email", "jane.doe@example.com"]
    )
    assert done.exit_code == 0, done.output
    assert (
        "erased jane.doe@example.com: 1 submission(s) scrubbed (1 not yet delivered" in done.output
    )
    again = runner.invoke(
        main, ["erase", "--config", str(config), "--email", "jane.doe@example.com"]
    )
    assert "nothing held for jane.doe@example.com" in again.output
    bad = runner.invoke(main, ["erase", "--config", str(config), "--email", "jane"])
    assert bad.exit_code == 2 and "an email address" in bad.output
    store.dispose()


def test_erasure_leaves_no_byte_behind(tmp_path: object) -> None:
    """A unique marker in a submission's words, its file's name and its file's content;
    erased (the submission a second old, not five minutes), then every file under the
    data directory — database, write-ahead log, attachments — is searched for it."""
    import io
    import os
    import uuid
    from pathlib import Path

    from bridge.app import create_app
    from bridge.config import load_settings

    data = Path(str(tmp_path)) / "data"
    data.mkdir()
    marker = f"marker-{uuid.uuid4().hex}"
    config = Path(str(tmp_path)) / "bridge.yaml"
    config.write_text(
        f"""
proprofs: {{account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
store: "sqlite:///{data / "bridge.db"}"
files: {{directory: {data / "files"}}}
routes:{FILE_FORM}"""
    )
    settings = load_settings(config)
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    pdf = b"%PDF-1.7\n" + marker.encode() + b"\n" * 50
    for n in range(3):  # the marker's pages are rewritten a few times (state changes, etc.)
        answer = client.post(
            "/forms/contact",
            data={
                "email": "erase.me@example.com",
                "message": f"{marker} #{n}",
                "files": (io.BytesIO(pdf + bytes([n])), f"{marker}-{n}.pdf"),
            },
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 202, answer.get_json()
    store.dispose()
    done = CliRunner().invoke(
        main, ["erase", "--config", str(config), "--email", "Erase.Me@example.com"]
    )
    assert done.exit_code == 0, done.output
    assert "3 submission(s) scrubbed" in done.output
    assert "3 attached file(s) removed" in done.output, done.output
    found = []
    for folder, _, names in os.walk(data):
        for name in names:
            path = Path(folder) / name
            if marker.encode() in path.read_bytes() or marker in name:
                found.append(str(path.relative_to(data)))
    assert found == [], found
