"""The heartbeat (dead man's switch) and the storm guard: one silence ticket, one summary
per window, however many processes check; the heartbeat itself never a ticket."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app, signing_key
from bridge.config import Settings
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from bridge.watches import AlertWatches, heartbeat_key
from tests.conftest import ACCOUNT_EMAIL
from tests.support.alerts import group
from tests.support.configs import settings_with


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watched(
    emulator: EmulatorServer, store_url: str
) -> Iterator[tuple[FlaskClient, SubmissionStore, Settings, Clock]]:
    settings = settings_with(
        emulator,
        store_url,
        """
server: {public_url: "https://bridge.example.com"}
routes:
  alerts:
    kind: hook
    source: alertmanager
    heartbeat: {every: 60s, grace: 60s, inbox: IB238-500}
    storm: {max_new: 3, window: 60s}
    ticket: {email: alerts@example.com}
""",
    )
    store = SubmissionStore(store_url)
    app = create_app(settings, store=store)
    clock = Clock(1_800_000_000.0)  # the start of a storm window
    app.extensions["bridge"].clock = clock
    yield app.test_client(), store, settings, clock
    store.dispose()


def all_at_once(watchers: list[AlertWatches], store: SubmissionStore, now: float) -> list[str]:
    """Every watcher checks at the same moment, each in its own thread; what they raised."""
    raised: list[str] = []
    threads = [
        threading.Thread(target=lambda w=w: raised.extend(w.check(store, now=now)))
        for w in watchers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


def made(store: SubmissionStore) -> list[Any]:
    return [s for s in store.list(limit=1000) if (s.meta or {}).get("made_by") == "bridge"]


def test_the_heartbeat_is_never_a_ticket_and_its_silence_is_one(watched: Any) -> None:
    client, store, settings, clock = watched
    watchdog = group("Watchdog")
    answer = client.post("/hooks/alerts", json=watchdog)
    assert answer.status_code == 200 and answer.json == {"status": "heartbeat"}
    assert store.list(limit=10) == []
    # Four delivery processes look at once, 121 s later (every + grace passed): one ticket.
    watchers = [AlertWatches(settings, signing_key(settings, store)) for _ in range(4)]
    later = clock.now + 121
    raised = all_at_once(watchers, store, now=later)
    assert len(raised) == 1
    (silence,) = made(store)
    assert silence.draft.subject == "[bridge] The alert pipeline of alerts is silent"
    assert silence.draft.inbox == "IB238-500" and silence.draft.email == ACCOUNT_EMAIL
    assert "Incident page: https://bridge.example.com/incidents/" in silence.draft.description
    assert watchers[0].check(store, now=later + 600) == []  # still silent: no second ticket
    # It comes back: noted on its incident page; a later silence is a new ticket.
    clock.now = later + 700
    assert client.post("/hooks/alerts", json=watchdog).json == {"status": "heartbeat"}
    token = client.application.extensions["bridge"].incident_links.dumps(
        ["alerts", heartbeat_key("alerts")]
    )
    page = html.unescape(client.get(f"/incidents/{token}").get_data(as_text=True))
    assert "the heartbeat stopped" in page and "the heartbeat is back" in page
    assert len(watchers[1].check(store, now=clock.now + 121)) == 1
    assert len(made(store)) == 2


def test_a_pipeline_that_never_sends_its_heartbeat_is_silent_too(watched: Any) -> None:
    """As the delivery process runs it: the signing key is read (made, on a new store)
    when the first link is needed, and never from inside the store's transaction."""
    _, store, settings, clock = watched
    watches = AlertWatches(settings, lambda: signing_key(settings, store))
    assert watches.check(store, now=clock.now) == []  # starts expecting it
    started = time.monotonic()
    assert len(watches.check(store, now=clock.now + 121)) == 1
    assert time.monotonic() - started < 5  # no wait for a lock its own transaction holds


def test_a_storm_makes_the_first_tickets_and_one_summary_per_window(watched: Any) -> None:
    client, store, settings, clock = watched
    answers = [client.post("/hooks/alerts", json=group(f"Disk{n}")) for n in range(10)]
    assert [a.json["status"] for a in answers] == ["accepted"] * 3 + ["held"] * 7
    assert "summary ticket" in answers[-1].json["message"]
    # A held group firing again in the window is still one line of the summary.
    assert client.post("/hooks/alerts", json=group("Disk7")).json["status"] == "held"
    # A group that has its ticket behaves as before: a repeat.
    assert client.post("/hooks/alerts", json=group("Disk0")).json["status"] == "duplicate"
    watchers = [AlertWatches(settings, signing_key(settings, store)) for _ in range(3)]
    assert watchers[0].check(store, now=clock.now + 30) == []  # the window is not over
    raised = all_at_once(watchers, store, now=clock.now + 61)
    assert len(raised) == 1
    (summary,) = made(store)
    assert summary.draft.subject == "[bridge] Alert storm on alerts: 7 more new groups"
    listed = [line for line in summary.draft.description.splitlines() if line.startswith("- ")]
    assert len(listed) == 7 and summary.draft.description.count("/incidents/") == 7
    assert len(store.list(limit=100)) == 3 + 1
    # The next window starts counting afresh.
    clock.now += 60
    assert client.post("/hooks/alerts", json=group("Disk8")).json["status"] == "accepted"


def test_every_held_group_is_reachable_from_its_summary(watched: Any) -> None:
    """250 groups held in one window: the summary lists the first 200 and links the full
    list, which names every one with its incident page; a group held after the summary was
    raised gets a ticket of its own instead of being named nowhere."""
    client, store, settings, clock = watched
    answers = [client.post("/hooks/alerts", json=group(f"Disk{n:03d}")) for n in range(253)]
    assert [a.json["status"] for a in answers].count("held") == 250
    watches = AlertWatches(settings, signing_key(settings, store))
    assert len(watches.check(store, now=clock.now + 61)) == 1
    (summary,) = made(store)
    text = summary.draft.description
    assert text.count("\n- ") == 200 and "… and 50 more on the full list: " in text
    full = re.search(r"The full list: https://bridge\.example\.com(/storms/\S+)", text)
    assert full is not None
    page = client.get(full.group(1))
    assert page.status_code == 200
    body = html.unescape(page.get_data(as_text=True))
    held = [f"Disk{n:03d}" for n in range(3, 253)]
    assert all(name in body for name in held)
    assert body.count('href="/incidents/') == 250
    # An incident page of a held group says where it is, and links the list.
    incident = re.search(r'href="(/incidents/[^"]+)"', body)
    assert incident is not None
    story = client.get(incident.group(1)).get_data(as_text=True)
    assert "the window's full list</a>" in story and 'href="/storms/' in story
    # Late: the window's summary exists, yet a request still counted in that window.
    late = client.post("/hooks/alerts", json=group("Disk999"))
    assert late.json["status"] == "accepted"
