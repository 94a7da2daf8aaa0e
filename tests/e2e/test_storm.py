"""An alert storm against two ``bridge serve`` instances sharing one PostgreSQL store: at
most ``max_new`` single tickets per window, one summary ticket per window listing the rest,
every group accounted for once."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import pg_schema_url, record_figures
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config
from tests.support.alerts import group

pytestmark = pytest.mark.e2e
GROUPS = 500
MAX_NEW = 20
WINDOW = 30
BEARER = "storm-bearer-token-4242"
ROUTES = f"""
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {BEARER}}}
    storm: {{max_new: {MAX_NEW}, window: {WINDOW}s}}
    ticket: {{email: alerts@example.com, subject: "{{{{ commonLabels.alertname }}}} firing"}}
"""


def test_a_storm_of_500_new_groups_on_two_instances(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    with pg_schema_url() as store_url:
        with SubmissionStore(store_url, auto_upgrade=False) as migrator:
            migrator.upgrade()  # PostgreSQL is migrated per release, not by serve
        port = free_port()
        config = write_config(
            tmp_path / "bridge.yaml",
            store_url,
            emulator,
            routes=ROUTES,
            top=f'server: {{public_url: "http://127.0.0.1:{port}"}}',  # the summary's links
        )
        with bridge_server(config, port=port) as first, bridge_server(config) as second:
            session = requests.Session()
            auth = {"Authorization": f"Bearer {BEARER}"}

            def send(n: int) -> tuple[int, str, float]:
                url = (first, second)[n % 2]
                sent = time.time()
                answer = session.post(
                    f"{url}/hooks/alerts", json=group(f"Storm{n:03d}"), headers=auth, timeout=30
                )
                return answer.status_code, answer.json().get("status", ""), sent

            started = time.time()
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(send, range(GROUPS)))
            took = time.time() - started
            assert took < 60, took  # a storm: 500 new groups within a minute
            statuses = Counter((code, status) for code, status, _ in answers)
            assert set(statuses) <= {(202, "accepted"), (200, "held")}, statuses
            singles, held = statuses[(202, "accepted")], statuses[(200, "held")]
            windows = {int(sent // WINDOW) for _, _, sent in answers}
            assert singles <= MAX_NEW * len(windows) and singles + held == GROUPS

            def summaries() -> list[Any]:
                return [
                    t
                    for t in emulator.state.tickets.values()
                    if t.subject.startswith("[bridge] Alert storm on alerts")
                ]

            # Each window that held groups back gets its summary once the window is over.
            assert wait_until(
                lambda: (
                    len(emulator.state.tickets) == singles + len(summaries())
                    and sum(_count(t.subject) for t in summaries()) == held
                ),
                timeout=WINDOW + 40,
            ), (len(emulator.state.tickets), singles, [t.subject for t in summaries()])
            time.sleep(6)  # both instances' watchers look again: no second summary
            # A listed group's incident page says why it had no ticket of its own.
            link = re.search(r"(http://\S+/incidents/\S+)", summaries()[0].description or "")
            assert link is not None
            page = requests.get(link.group(1), timeout=10)
            assert page.status_code == 200 and "storm" in page.text, page.text[:500]
            # Every held group is on the full list its window's summary links.
            on_lists: list[str] = []
            for summary in summaries():
                full = re.search(r"The full list: (http://\S+/storms/\S+)", summary.description)
                assert full is not None, summary.description[:500]
                listing = requests.get(full.group(1), timeout=10)
                assert listing.status_code == 200
                on_lists += re.findall(r">(Storm\d{3}) firing<", listing.text)
        made = list(emulator.state.tickets.values())
    storm = [t for t in made if t.subject.startswith("[bridge] Alert storm")]
    own = [t.subject for t in made if t not in storm]
    assert 1 <= len(storm) <= len(windows) and len(own) == singles
    assert len(set(own)) == len(own)  # no group has two tickets
    listed = [
        name for t in storm for name in re.findall(r"- (Storm\d{3}) firing", t.description or "")
    ]
    assert len(set(listed)) == len(listed) and not set(listed) & {s.split()[0] for s in own}
    # Each group has its own ticket or is on exactly one full list: none is lost.
    assert len(on_lists) == len(set(on_lists)) == held
    assert set(on_lists) | {s.split()[0] for s in own} == {f"Storm{n:03d}" for n in range(GROUPS)}
    assert all("/incidents/" in (t.description or "") for t in storm)
    record_figures(
        "alert storm on two bridge serve instances (PostgreSQL)",
        [
            f"{GROUPS} new groups in {took:.1f} s over {len(windows)} window(s) of {WINDOW} s "
            f"(the first sent {started % WINDOW:.1f} s into its window); max_new {MAX_NEW}",
            f"single tickets: {singles}; held: {held}; summary tickets: {len(storm)}",
        ],
    )


def _count(subject: str) -> int:
    found = re.search(r": (\d+) more new groups", subject)
    return int(found.group(1)) if found else 0
