"""Two ``bridge serve`` instances and two workers on one PostgreSQL database, with
Redis-backed rate limits: 2,000+ mixed submissions round-robin while a worker is killed.
Every accepted submission becomes exactly one ticket, alert repeats across instances are
suppressed, and the rate limit is counted across instances."""

from __future__ import annotations

import concurrent.futures
import re
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import REDIS_URL, need_redis, pg_schema_url
from tests.e2e.harness import bridge_server, start_worker, stop, wait_until, write_config

pytestmark = pytest.mark.e2e


def alert(group: int) -> dict[str, object]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "bridge",
        "groupKey": f"g{group}",
        "groupLabels": {"alertname": f"A{group}"},
        "commonLabels": {"alertname": f"A{group}"},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"A{group}"},
                "annotations": {},
                "startsAt": "2026-11-22T07:00:00Z",
            }
        ],
    }


def test_two_instances_two_workers_one_database(emulator: EmulatorServer, tmp_path: Path) -> None:
    need_redis()
    run = uuid.uuid4().hex[:6]
    routes = f"""
  contact:
    kind: form
    fields: {{email: {{type: email, required: true}}, message: {{type: text, required: true}}}}
    limits: {{per_ip: ["100000/hour"]}}
  limited-{run}:
    kind: form
    fields: {{email: {{type: email, required: true}}, message: {{type: text, required: true}}}}
    limits: {{per_route: ["150/hour"]}}
  alerts:
    kind: hook
    source: alertmanager
    ticket: {{email: alerts@example.com}}
  support:
    kind: widget
    fields: {{email: {{type: email, required: true}}, message: {{type: text, required: true}}}}
"""
    with pg_schema_url() as store_url:
        with SubmissionStore(store_url, auto_upgrade=False) as migrator:
            migrator.upgrade()
        config = write_config(
            tmp_path / "bridge.yaml",
            store_url,
            emulator,
            delivery={"lease": "1s"},
            routes=routes,
            top=f'server: {{rate_limit_storage: "{REDIS_URL}"}}',
        )
        workers = [start_worker(config), start_worker(config)]
        with (
            bridge_server(config, delivery=False) as one,
            bridge_server(config, delivery=False) as two,
        ):
            instances = [one, two]
            jobs: list[tuple[str, str, dict[str, object]]] = []
            for n in range(800):
                jobs.append(
                    (
                        "form",
                        "/forms/contact",
                        {"email": f"f{n}@example.com", "message": f"form {n} {run}"},
                    )
                )
            for n in range(800):
                jobs.append(("alert", "/hooks/alerts", alert(n % 80)))
            for n in range(400):
                jobs.append(
                    (
                        "widget",
                        "/widget/support",
                        {"fields": {"email": f"w{n}@example.com", "message": f"widget {n} {run}"}},
                    )
                )
            for n in range(200):
                jobs.append(
                    (
                        "limited",
                        f"/forms/limited-{run}",
                        {"email": f"l{n}@example.com", "message": f"limited {n}"},
                    )
                )

            def post(index: int) -> tuple[str, int, str]:
                kind, path, body = jobs[index]
                response = requests.post(
                    instances[index % 2] + path,
                    json=body,
                    timeout=30,
                    headers={"Accept": "application/json"},
                )
                answer = response.json()
                return kind, response.status_code, str(answer.get("id", ""))

            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(post, i) for i in range(len(jobs))]
                killed = False
                results = []
                for i, future in enumerate(futures):
                    results.append(future.result())
                    if i == len(jobs) // 2 and not killed:
                        stop(workers[0], sig=signal.SIGKILL)  # one worker dies mid-storm
                        killed = True
            intake_seconds = time.monotonic() - started
            accepted = {ident for kind, status, ident in results if status == 202}
            by_kind = {
                k: sum(1 for kind, status, _ in results if kind == k and status == 202)
                for k in ("form", "alert", "widget", "limited")
            }
            limited_refused = sum(
                1 for kind, status, _ in results if kind == "limited" and status == 429
            )
            assert by_kind == {"form": 800, "alert": 80, "widget": 400, "limited": 150}, by_kind
            assert limited_refused == 50
            assert sum(1 for kind, status, _ in results if kind == "alert" and status == 200) == 720
            assert wait_until(lambda: len(emulator.state.tickets) >= len(accepted), timeout=180)
            time.sleep(3)  # anything extra would show up now
        stop(workers[1])
        refs: dict[str, int] = {}
        for ticket in emulator.state.tickets.values():
            for ref in re.findall(r"pb-[0-9a-f]{20}", ticket.description or ""):
                refs[ref] = refs.get(ref, 0) + 1
        with SubmissionStore(store_url) as store:
            counts = store.counts()
    print(
        f"\nscale: {len(jobs)} posts in {intake_seconds:.1f}s to 2 instances; accepted "
        f"{len(accepted)}; tickets {len(emulator.state.tickets)}; store {counts}"
    )
    assert set(refs) == accepted
    assert all(count == 1 for count in refs.values())
    assert len(emulator.state.tickets) == len(accepted) == 1430
    assert counts["delivered"] == 1430 and counts["dead"] == 0
