"""Failing neighbours, with real processes: each has a defined answer, never a 500.

- Redis (the shared rate-limit counts) down and coming back: submissions keep coming in,
  limits count per process, /readyz and /metrics say so; shared counts resume after.
- Slow clients: bodies sent a byte a second hold one thread each, never the intake; one
  still arriving at ``server.body_timeout`` is cut off with 408.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import PrivateRedis, bridge_server, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e

FORMS = """
  contact:
    kind: form
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    limits: {per_ip: ["3/hour"]}
  support:
    kind: widget
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
    limits: {per_ip: ["3/hour"]}
"""
JSON = {"Accept": "application/json"}


def metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def post_forms(url: str, count: int, tag: str) -> list[int]:
    codes = []
    for n in range(count):
        form = requests.post(
            f"{url}/forms/contact",
            data={"email": "a@example.com", "message": f"{tag} form {n}"},
            headers=JSON,
            timeout=10,
        )
        widget = requests.post(
            f"{url}/widget/support",
            json={"email": "a@example.com", "message": f"{tag} widget {n}"},
            timeout=10,
        )
        codes += [form.status_code, widget.status_code]
    return codes


def test_redis_down_and_back(emulator: EmulatorServer, tmp_path: Path) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    store_url = f"sqlite:///{tmp_path / 'b.db'}"
    config = write_config(
        tmp_path / "bridge.yaml",
        store_url,
        emulator,
        routes=FORMS,
        top=f"server: {{rate_limit_storage: '{redis.url}'}}",
    )
    log = tmp_path / "serve.log"
    try:
        with bridge_server(config, delivery=False, log=log) as url:
            ready = requests.get(f"{url}/readyz", timeout=10).json()
            assert ready["rate_limits"] == {
                "storage": f"redis://127.0.0.1:{redis.port}",
                "state": "ok",
            }
            assert post_forms(url, 1, "up") == [202, 202]

            redis.stop()
            down = post_forms(url, 8, "down")
            assert 500 not in down and set(down) <= {202, 429}, down
            # Still limited, per process: two gunicorn workers count 3 each per route.
            assert 202 in down and down.count(202) <= 2 * 2 * 3 and 429 in down
            readiness = requests.get(f"{url}/readyz", timeout=10)
            assert readiness.status_code == 200  # still taking submissions: still ready
            assert readiness.json()["rate_limits"]["state"].startswith("degraded")
            assert metric(url, "bridge_rate_limit_storage_degraded") == 1
            assert metric(url, "bridge_rate_limit_storage_fallbacks_total") >= 1

            redis.start()  # empty: the counters start again
            time.sleep(5.5)  # each process probes the storage every 5 s
            back = post_forms(url, 4, "back")
            assert [c for c in back[0::2]] == [202, 202, 202, 429]  # shared counts again
            assert [c for c in back[1::2]] == [202, 202, 202, 429]
            assert wait_until(
                lambda: (
                    requests.get(f"{url}/readyz", timeout=10).json()["rate_limits"]["state"] == "ok"
                ),
                15,
                0.5,
            )
            # The gauge is the highest of every worker's: a worker no request reached since
            # finds out by its own probe, within an interval.
            assert wait_until(
                lambda: metric(url, "bridge_rate_limit_storage_degraded") == 0, 12, 0.5
            )
    finally:
        redis.stop()
    text = log.read_text()
    assert "counting limits per process in memory" in text and "answers again" in text
    assert "Traceback" not in text
    with SubmissionStore(store_url) as store:
        accepted = 2 + down.count(202) + back.count(202)
        assert sum(store.counts().values()) == accepted  # every 202 was stored


def test_slow_clients_do_not_stall_intake(emulator: EmulatorServer, tmp_path: Path) -> None:
    """Default `bridge serve`: 8 bodies sent a byte a second delay an ordinary post < 1 s."""
    from bench._harness import SlowClients, ordinary_posts

    store_url = f"sqlite:///{tmp_path / 'b.db'}"
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator, routes=FORMS)
    port = free_port()
    with bridge_server(config, delivery=False, port=port) as url:
        hook = f"{url}/hooks/events"
        ordinary_posts(hook, 1.0, {"id": "warm", "title": "warm-up"})
        baseline = sorted(ordinary_posts(hook, 2.0, {"title": "alone"}))
        with SlowClients("127.0.0.1", port, "/forms/contact", 8, size=400) as slow:
            samples = ordinary_posts(hook, 6.0, {"title": "beside slow clients"})
            slow.close()
        delay = max(samples) - baseline[len(baseline) // 2]
        print(
            f"\nslow clients: 8; ordinary posts {len(samples)}, worst delay {delay * 1000:.0f} ms"
        )
        assert delay < 1.0, samples
        assert len(samples) >= 20


def test_a_body_still_arriving_at_the_deadline_gets_408(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    from bench._harness import SlowClients, ordinary_posts

    store_url = f"sqlite:///{tmp_path / 'b.db'}"
    config = write_config(
        tmp_path / "bridge.yaml",
        store_url,
        emulator,
        # No rate limit: it is checked before the body, and would answer most of them 429.
        routes=FORMS.replace('    limits: {per_ip: ["3/hour"]}\n', ""),
        top="server: {body_timeout: 2s}",
    )
    port = free_port()
    log = tmp_path / "serve.log"
    # More slow clients than both workers have threads: only the deadline frees them.
    with bridge_server(config, delivery=False, port=port, log=log) as url:
        with SlowClients("127.0.0.1", port, "/widget/support", 40, size=400) as slow:
            samples = ordinary_posts(f"{url}/hooks/events", 6.0, {"title": "meanwhile"})
            assert wait_until(lambda: len(slow.answers) == 40, 15)
            slow.close()
        assert len(slow.answers) == 40 and all(" 408 " in f"{a} " for a in slow.answers), (
            slow.answers
        )
        assert max(samples) < 4.0  # a post waits at most for the deadline to free a thread
        raw = requests.post(  # the answer a person (or script) reads
            f"{url}/hooks/events", json={"title": "after"}, timeout=10
        )
        assert raw.status_code == 202
    with SubmissionStore(store_url) as store:
        assert {s.route for s in store.list(limit=1000)} == {"events"}
    assert "Traceback" not in log.read_text()
