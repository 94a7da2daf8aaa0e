"""A real Alertmanager posting to a real ``bridge serve``: one ticket per group, repeats
suppressed, and a new ticket once the first is closed and the alert keeps firing."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bridge.outbox.events import body_of
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import IN_CI, pg_schema_url
from tests.e2e.harness import bridge_server, free_port, run_bridge, wait_until, write_config
from tests.support.recipes import sample, subscribers

pytestmark = pytest.mark.e2e
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN = "alertmanager-bearer-token"

ROUTES = f"""
  alerts:
    kind: hook
    source: alertmanager
    auth: {{bearer: {TOKEN}}}
    ticket_check_ttl: 0
    ticket: {{email: alerts@example.com, inbox: IB238-500}}
"""


def watched_config(tmp_path: Path, emulator: EmulatorServer, port: int, watch: str) -> Path:
    """The alerts route with ``watch`` (a heartbeat or a storm guard) added, linking its
    incident pages from the bridge on ``port``."""
    return write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'b.db'}",
        emulator,
        routes=ROUTES.replace(
            "    ticket_check_ttl: 0\n", f"    ticket_check_ttl: 0\n    {watch}\n"
        ),
        top=f'server: {{public_url: "http://127.0.0.1:{port}"}}',
    )


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, int]]:
    if BINARY is None:
        reason = "Alertmanager is not installed (make alertmanager installs it)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    bridge_port = free_port()
    port = free_port()
    (tmp_path / "am.yml").write_text(f"""
route:
  receiver: bridge
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 3s
receivers:
  - name: bridge
    webhook_configs:
      - url: http://127.0.0.1:{bridge_port}/hooks/alerts
        send_resolved: true
        http_config:
          authorization:
            credentials: {TOKEN}
""")
    log = open(tmp_path / "am.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _ready(url), timeout=30), (tmp_path / "am.log").read_text()
        yield url, bridge_port
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/-/ready", timeout=1).status_code == 200
    except requests.RequestException:  # not up yet, or too busy to answer in time
        return False


def push(url: str, alertname: str, service: str) -> None:
    now = dt.datetime.now(dt.UTC)
    alert = {
        "labels": {"alertname": alertname, "service": service, "severity": "critical"},
        "annotations": {"summary": f"{alertname} on {service}"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }
    requests.post(url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def notifications(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('alertmanager_notifications_total{integration="webhook"'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_one_ticket_per_group_repeats_suppressed_and_a_new_one_after_close(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path
) -> None:
    am, bridge_port = alertmanager
    config = write_config(
        tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'b.db'}", emulator, routes=ROUTES
    )
    with bridge_server(config, port=bridge_port):
        push(am, "HighLatency", "api-prod")
        push(am, "DiskFull", "db-1")
        assert wait_until(lambda: len(emulator.state.tickets) == 2, timeout=30)
        subjects = sorted(t.subject for t in emulator.state.tickets.values())
        assert subjects == [
            "[FIRING:1] DiskFull db-1 (critical)",
            "[FIRING:1] HighLatency api-prod (critical)",
        ]
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 4, timeout=30)  # repeats arrive
        assert len(emulator.state.tickets) == 2  # …and make nothing
        latency = next(t for t in emulator.state.tickets.values() if "HighLatency" in t.subject)
        requests.post(
            f"{emulator.url}/_emulator/tickets/{latency.ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        push(am, "HighLatency", "api-prod")  # it keeps firing
        assert wait_until(lambda: len(emulator.state.tickets) == 3, timeout=30)
        newest = max(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))
        assert newest.subject == "[FIRING:1] HighLatency api-prod (critical)"
        assert newest.priority == "high" and newest.inbox == "IB238-500"
        assert "summary: HighLatency on api-prod" in (newest.description or "")
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 4, timeout=30)
        assert len(emulator.state.tickets) == 3


def resolve(url: str, alertname: str, service: str) -> None:
    now = dt.datetime.now(dt.UTC)
    alert = {
        "labels": {"alertname": alertname, "service": service, "severity": "critical"},
        "annotations": {"summary": f"{alertname} on {service}"},
        "startsAt": (now - dt.timedelta(minutes=5)).isoformat(),
        "endsAt": (now - dt.timedelta(seconds=1)).isoformat(),
    }
    requests.post(url + "/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def test_the_incident_page_follows_the_group_and_staff_labels_steer_it(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path
) -> None:
    import html
    import re

    am, bridge_port = alertmanager
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'b.db'}",
        emulator,
        routes=ROUTES,
        top=f'server: {{public_url: "http://127.0.0.1:{bridge_port}"}}',  # the tickets' links
    )

    def page(link: str) -> str:
        return html.unescape(requests.get(link, timeout=5).text)

    with bridge_server(config, port=bridge_port):
        push(am, "QueueBacklog", "worker-3")
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=30)
        (first,) = emulator.state.tickets.values()
        link = re.search(r"Incident page: (\S+)", first.description or "")
        assert link is not None
        link_url = link.group(1)
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 2, timeout=30)  # repeats
        resolve(am, "QueueBacklog", "worker-3")
        assert wait_until(lambda: ">resolved<" in page(link_url), timeout=30)
        text = page(link_url)
        assert "alertname</dt><dd>QueueBacklog" in text and "service</dt><dd>worker-3" in text
        assert "fired again: no new ticket" in text and f"#{first.ticket_id}" in text
        assert len(emulator.state.tickets) == 1
        # Closed by staff, and the group fires again: a new ticket that names the first.
        requests.post(
            f"{emulator.url}/_emulator/tickets/{first.ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        push(am, "QueueBacklog", "worker-3")
        assert wait_until(lambda: len(emulator.state.tickets) == 2, timeout=30)
        second = max(emulator.state.tickets.values(), key=lambda t: int(t.ticket_id))
        assert f"Previous ticket: #{first.ticket_id}" in (second.description or "")
        assert f"Incident page: {link_url}" in (second.description or "")
        # Staff label the second one wontfix and close it: the next firing makes nothing.
        requests.post(
            f"{emulator.url}/_emulator/tickets/{second.ticket_id}/labels",
            json={"labels": ["bridge-wontfix"]},
            timeout=5,
        ).raise_for_status()
        requests.post(
            f"{emulator.url}/_emulator/tickets/{second.ticket_id}/status",
            json={"status": "closed"},
            timeout=5,
        ).raise_for_status()
        resolve(am, "QueueBacklog", "worker-3")
        assert wait_until(lambda: page(link_url).count(">resolved<") >= 1, timeout=30)
        push(am, "QueueBacklog", "worker-3")
        assert wait_until(lambda: "staff: bridge-wontfix" in page(link_url), timeout=30)
        sent = notifications(am)
        assert wait_until(lambda: notifications(am) >= sent + 2, timeout=30)
        assert len(emulator.state.tickets) == 2
        text = page(link_url)
        assert f"#{second.ticket_id}" in text and "held by staff" in text


def test_a_silenced_watchdog_raises_one_ticket_with_two_workers_and_its_return_is_noted(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path
) -> None:
    import html
    import re

    from tests.e2e.harness import start_worker, stop

    am, bridge_port = alertmanager
    config = watched_config(tmp_path, emulator, bridge_port, "heartbeat: {every: 3s, grace: 3s}")
    now = dt.datetime.now(dt.UTC)
    watchdog = {
        "labels": {"alertname": "Watchdog", "severity": "none"},
        "annotations": {"summary": "The alerting pipeline is working"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
    }
    with bridge_server(config, port=bridge_port, delivery=False):
        requests.post(am + "/api/v2/alerts", json=[watchdog], timeout=5).raise_for_status()
        workers = [start_worker(config), start_worker(config)]
        try:
            sent = notifications(am)
            assert wait_until(lambda: notifications(am) >= sent + 3, timeout=30)
            assert len(emulator.state.tickets) == 0  # heard, and never a ticket
            silence = requests.post(
                am + "/api/v2/silences",
                json={
                    "matchers": [
                        {
                            "name": "alertname",
                            "value": "Watchdog",
                            "isRegex": False,
                            "isEqual": True,
                        }
                    ],
                    "startsAt": dt.datetime.now(dt.UTC).isoformat(),
                    "endsAt": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
                    "createdBy": "test",
                    "comment": "pipeline maintenance",
                },
                timeout=5,
            )
            silence.raise_for_status()
            assert wait_until(lambda: len(emulator.state.tickets) >= 1, timeout=40)
            (ticket,) = emulator.state.tickets.values()
            assert ticket.subject == "[bridge] The alert pipeline of alerts is silent"
            time.sleep(12)  # both workers look twice more: still one ticket
            assert len(emulator.state.tickets) == 1
            page = re.search(r"Incident page: (\S+)", ticket.description or "")
            assert page is not None
            requests.delete(
                f"{am}/api/v2/silence/{silence.json()['silenceID']}", timeout=5
            ).raise_for_status()
            assert wait_until(
                lambda: (
                    "the heartbeat is back"
                    in html.unescape(requests.get(page.group(1), timeout=5).text)
                ),
                timeout=40,
            )
            assert len(emulator.state.tickets) == 1
        finally:
            for worker in workers:
                stop(worker)


def test_a_storm_from_alertmanager_leaves_no_group_unaccounted_for(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path
) -> None:
    """300 new groups from a real Alertmanager against a storm guard of 10 per window:
    every group has a ticket of its own or is on the full list its window's summary
    links, and the held groups' incident pages link that list."""
    import html
    import re

    am, bridge_port = alertmanager
    config = watched_config(tmp_path, emulator, bridge_port, "storm: {max_new: 10, window: 20s}")
    now = dt.datetime.now(dt.UTC)
    alerts = [
        {
            "labels": {"alertname": f"Storm{n:03d}", "severity": "warning"},
            "annotations": {"summary": f"storm alert {n}"},
            "startsAt": now.isoformat(),
            "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
        }
        for n in range(300)
    ]
    names = {f"Storm{n:03d}" for n in range(300)}

    def summaries() -> list[object]:
        return [
            t
            for t in emulator.state.tickets.values()
            if t.subject.startswith("[bridge] Alert storm")
        ]

    def accounted() -> tuple[set[str], set[str]]:
        """The groups with a ticket of their own, and those on a summary's full list."""
        storm = summaries()
        own = {
            name
            for t in emulator.state.tickets.values()
            if t not in storm
            for name in re.findall(r"Storm\d{3}", t.subject)
        }
        on_lists: set[str] = set()
        for summary in storm:
            full = re.search(r"The full list: (\S+/storms/\S+)", summary.description or "")  # type: ignore[attr-defined]
            assert full is not None
            page = html.unescape(requests.get(full.group(1), timeout=10).text)
            on_lists |= set(re.findall(r"Storm\d{3}", page))
        return own, on_lists

    with bridge_server(config, port=bridge_port):
        requests.post(am + "/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
        # Every group ends with a ticket of its own or on a full list (a group held in
        # one window and sent again in the next may be on both lists).
        assert wait_until(lambda: set.union(*accounted()) == names, timeout=90), [
            len(found) for found in accounted()
        ]
        own, on_lists = accounted()
        assert len(own) >= 10  # the first max_new of a window have tickets of their own
        assert len(on_lists) > 200  # more than a summary lists one by one
        first = summaries()[0]
        listing = re.search(r"The full list: (\S+/storms/\S+)", first.description or "")  # type: ignore[attr-defined]
        assert listing is not None
        incident = re.search(
            r'href="(/incidents/[^"]+)"', requests.get(listing.group(1), timeout=10).text
        )
        assert incident is not None
        story = requests.get(f"http://127.0.0.1:{bridge_port}{incident.group(1)}", timeout=10)
        assert "/storms/" in story.text and "full list" in story.text


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_real_alertmanager_keeps_its_ticket_current_until_it_resolves(
    alertmanager: tuple[str, int], emulator: EmulatorServer, tmp_path: Path, engine: str
) -> None:
    am, bridge_port = alertmanager
    block = "update: {every: 1s, fields: {state: CF101-01, occurrences: CF101-02}}"
    with contextlib.ExitStack() as stack:
        store_url = (
            stack.enter_context(pg_schema_url())
            if engine == "postgres"
            else f"sqlite:///{tmp_path / 'b.db'}"
        )
        config = write_config(
            tmp_path / "bridge.yaml",
            store_url,
            emulator,
            routes=ROUTES.replace(
                "    ticket_check_ttl: 0\n", f"    ticket_check_ttl: 0\n    {block}\n"
            ),
        )
        if engine == "postgres":  # as on a server: the schema is migrated before serving
            assert run_bridge("db", "upgrade", "--config", str(config)).returncode == 0
        log = tmp_path / "serve.log"
        stack.enter_context(bridge_server(config, port=bridge_port, log=log))
        push(am, "DiskFull", "db-1")
        assert wait_until(lambda: len(emulator.state.tickets) == 1, timeout=30), log.read_text()
        (ticket,) = emulator.state.tickets.values()
        assert "Firing notifications: 1" in (ticket.description or "")
        # Alertmanager repeats the group every 3 s: the count on the ticket follows.
        assert wait_until(lambda: len(ticket.updates) >= 2, timeout=30), ticket.updates
        fields = {f["id"]: f["value"] for f in ticket.custom_fields}
        assert fields["CF101-01"] == "firing" and int(fields["CF101-02"]) >= 2
        stamps = [dt.datetime.fromisoformat(u["at"]) for u in ticket.updates]
        assert all(b - a >= dt.timedelta(seconds=0.9) for a, b in itertools.pairwise(stamps))
        resolve(am, "DiskFull", "db-1")
        assert wait_until(lambda: ticket.subject.startswith("[RESOLVED:1]"), timeout=30)
        fields = {f["id"]: f["value"] for f in ticket.custom_fields}
        assert fields["CF101-01"] == "resolved"
        assert "Status: resolved" in (ticket.description or "")
        assert ticket.priority == "high" and len(emulator.state.tickets) == 1


def test_the_docs_silence_recipe_silences_the_group_in_a_real_alertmanager(
    alertmanager: tuple[str, int],
) -> None:
    am, _ = alertmanager
    silence = subscribers()["silence-while-worked"]
    labels = {"alertname": "DiskFull", "service": "db-1"}
    body = body_of(silence, sample("ticket.assigned", alert_labels=labels))
    answer = requests.post(
        am + "/api/v2/silences", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    made = requests.get(am + f"/api/v2/silence/{answer.json()['silenceID']}", timeout=5).json()
    assert made["status"]["state"] == "active"
    assert {m["name"]: m["value"] for m in made["matchers"]} == labels
    assert made["comment"].startswith("Ticket #00731 is being worked by")
