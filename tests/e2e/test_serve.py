"""``bridge serve`` for real: gunicorn workers, the delivery process, the emulator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import TOKEN
from tests.e2e.harness import bridge_server, free_port, wait_until, write_config

pytestmark = pytest.mark.e2e


def test_serve_accepts_stores_and_delivers(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator)
    with bridge_server(config) as url:
        answers = [
            requests.post(
                f"{url}/hooks/events",
                json={"id": f"e{n % 10}", "title": f"Alert {n % 10}"},
                timeout=10,
            )
            for n in range(30)
        ]
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] * 20 + [202] * 10
        assert wait_until(lambda: len(emulator.state.tickets) == 10, timeout=30)
        bad = requests.post(
            f"{url}/hooks/events",
            data="{",
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["code"] == "malformed_json"
        # Two gunicorn workers and the delivery process: /metrics adds all of them up.
        counts: dict[str, float] = {}
        for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
            if line.startswith("bridge_submissions_total{"):
                outcome = line.split('outcome="')[1].split('"')[0]
                counts[outcome] = counts.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
        assert counts == {"accepted": 10, "duplicate": 20, "rejected": 1}
        delivered = 'bridge_deliveries_total{outcome="delivered",route="events"} 10.0'
        assert wait_until(
            lambda: delivered in requests.get(f"{url}/metrics", timeout=10).text, timeout=10
        )
    with SubmissionStore(store_url) as store:
        assert store.counts()["delivered"] == 10
    subjects = sorted(t.subject for t in emulator.state.tickets.values())
    assert subjects == sorted(f"Alert {n}" for n in range(10))


def test_serve_announces_what_it_serves_once_it_answers(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'b.db'}", emulator)
    log = tmp_path / "serve.log"
    with bridge_server(config, log=log) as url:
        assert wait_until(lambda: "Press Ctrl+C to stop." in log.read_text(), timeout=10)
        text = log.read_text()
        assert f"serving on {url}" in text and f"{url}/hooks/events" in text
        assert f"{url}/openapi.json" in text and f"{url}/healthz" in text
        assert requests.get(f"{url}/hooks/events", timeout=10).status_code == 405  # it is there
    assert "Control socket" not in log.read_text()  # no socket left in the user's home


def test_a_refused_token_is_a_warning_at_start_a_failing_check_and_a_doctor_fail(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The bridge still starts and takes submissions; everything that can say so, says so."""
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'b.db'}", emulator)
    config.write_text(config.read_text().replace(f"token: {TOKEN}", "token: a-mistyped-token"))
    log = tmp_path / "serve.log"
    with bridge_server(config, log=log) as url:
        assert wait_until(lambda: "warning: ProProfs" in log.read_text(), timeout=15)
        warning = next(line for line in log.read_text().splitlines() if "warning: ProProfs" in line)
        assert "the credentials are refused (Unable to authenticate request" in warning
        assert "proprofs.token" in warning and "a-mistyped-token" not in log.read_text()
        ready = requests.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        taken = requests.post(f"{url}/hooks/events", json={"id": "kept"}, timeout=10)
        assert taken.status_code == 202
    doctor = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 1
    assert "FAIL  proprofs" in doctor.stdout and "Unable to authenticate" in doctor.stdout


def test_serve_refuses_a_port_something_else_listens_on(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Each worker listens with SO_REUSEPORT; a port another program holds is still a
    clear refusal at once, not workers failing to bind over and over."""
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        started = time.monotonic()
        serve = [sys.executable, "-m", "bridge.cli", "serve", "--config", str(config)]
        done = subprocess.run(
            [*serve, "--host", "127.0.0.1", "--port", str(port), "--no-delivery"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Booting worker" not in done.stderr
    assert time.monotonic() - started < 30


def _sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (0A listen, 01 established)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == state:
            found.add(fields[9])
    return found


def _holders(inodes: set[str]) -> dict[int, int]:
    """How many of these sockets each process holds."""
    held: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except OSError:
            continue
        count = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if count:
            held[int(proc.name)] = count
    return held


def test_each_worker_listens_on_its_own_socket_and_both_take_connections(
    store_url: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """With one shared socket the worker that woke first took a whole burst of keep-alive
    connections; with a socket per worker the kernel spreads them."""
    config = write_config(tmp_path / "bridge.yaml", store_url, emulator)
    with bridge_server(config, workers=2, delivery=False) as url:
        port = int(url.rsplit(":", 1)[1])
        # Ready means one worker answers; the other may still be booting.
        deadline = time.monotonic() + 30
        listeners = _holders(_sockets(port, "0A"))
        while len(listeners) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            listeners = _holders(_sockets(port, "0A"))
        assert sorted(listeners.values()) == [1, 1]  # one listening socket in each worker
        # 32 connections opened in one burst and kept alive: both workers hold some.
        sessions = [requests.Session() for _ in range(32)]
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda s: s.get(f"{url}/healthz", timeout=10), sessions))
        assert [r.status_code for r in statuses] == [200] * 32
        held = _holders(_sockets(port, "01"))
        for session in sessions:
            session.close()
    workers = {pid: n for pid, n in held.items() if pid in listeners}
    assert len(workers) == 2 and min(workers.values()) >= 4, held


def test_serve_runs_delivery_at_a_lower_cpu_priority_than_intake(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """When the host is busy, intake answers first: the delivery worker ``bridge serve``
    starts runs ten steps nicer than the gunicorn processes, which keep the serve's own."""
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'o.db'}", emulator)
    with bridge_server(config):
        assert _delivery_started(config)
        started = _started_for(config)
        workers = [pid for pid, cmd in started.items() if "bridge.cli worker" in cmd]
        web = [pid for pid, cmd in started.items() if "gunicorn" in cmd]
        assert len(workers) == 1 and len(web) == 3, started  # the master and two workers
        own = os.getpriority(os.PRIO_PROCESS, 0)
        # The worker lowers its own priority once it has started (its imports may still
        # be under way when intake already answers): give it a few seconds.
        deadline = time.monotonic() + 15
        while os.getpriority(os.PRIO_PROCESS, workers[0]) == own and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.getpriority(os.PRIO_PROCESS, workers[0]) == min(19, own + 10)
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in web} == {own}


def test_serve_leaves_scheduling_to_the_host_by_default(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """On a shared host or in a container, pinning and batch scheduling hurt: by default
    every process keeps the ordinary policy and may run on any CPU."""
    config = write_config(tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'o.db'}", emulator)
    with bridge_server(config) as url:
        answers = [requests.post(f"{url}/hooks/events", json={"id": n}, timeout=10) for n in "ab"]
        assert {r.status_code for r in answers} == {202}
        started = _started_for(config)
        web = {pid for pid, cmd in started.items() if "gunicorn" in cmd}
        assert len(web) == 3, started
        for pid in started:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not any(entry.startswith(b"BRIDGE_CPU_SLOTS=") for entry in environ)
            for tid in _threads(pid):
                assert os.sched_getscheduler(tid) == os.SCHED_OTHER
                assert os.sched_getaffinity(tid) == os.sched_getaffinity(0)


def test_serve_runs_its_web_workers_as_batch_work_each_on_a_cpu_of_its_own(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """With ``server.pin_cpus``, every thread of every gunicorn worker, request threads
    included, is scheduled as batch work (a woken thread does not preempt the one holding
    the GIL) and runs on its worker's own CPU; the master and the delivery worker keep the
    ordinary policy and may run on any CPU."""
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'o.db'}",
        emulator,
        top="server: {pin_cpus: true}",
    )
    with bridge_server(config) as url:
        body = {"id": "e1", "title": "Alert"}
        with ThreadPoolExecutor(12) as pool:  # the workers start request threads to answer
            answers = list(
                pool.map(
                    lambda n: requests.post(f"{url}/hooks/events", json=body, timeout=10),
                    range(24),
                )
            )
        assert {r.status_code for r in answers} <= {200, 202}
        assert _delivery_started(config)
        started = _started_for(config)
        web = {pid for pid, cmd in started.items() if "gunicorn" in cmd}
        workers = {pid for pid in web if _parent(pid) in web}
        masters = web - workers
        delivery = [pid for pid, cmd in started.items() if "bridge.cli worker" in cmd]
        assert len(workers) == 2 and len(masters) == 1 and len(delivery) == 1, started
        policies = {pid: {tid: os.sched_getscheduler(tid) for tid in _threads(pid)} for pid in web}
        for pid in workers:  # the main thread, the request threads, the checkpointer
            assert len(policies[pid]) > 2, policies
            assert set(policies[pid].values()) == {os.SCHED_BATCH}, policies
        for pid in [*masters, *delivery]:
            assert os.sched_getscheduler(pid) == os.SCHED_OTHER
        # With two CPUs or more to use, each worker runs on one of its own; the master and
        # the delivery worker may run on any.
        usable = os.sched_getaffinity(0)
        pinned = {
            pid: {frozenset(os.sched_getaffinity(tid)) for tid in _threads(pid)} for pid in workers
        }
        if len(usable) > 1:
            assert all(len(cpus) == 1 and len(next(iter(cpus))) == 1 for cpus in pinned.values())
            assert len(set().union(*pinned.values())) == 2, pinned  # not the same one
        for pid in [*masters, *delivery]:
            assert os.sched_getaffinity(pid) == usable


def test_serve_pins_no_worker_when_there_are_more_workers_than_cpus(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    usable = os.sched_getaffinity(0)
    config = write_config(
        tmp_path / "bridge.yaml",
        f"sqlite:///{tmp_path / 'o.db'}",
        emulator,
        top="server: {pin_cpus: true}",
    )
    with bridge_server(config, workers=len(usable) + 1, delivery=False) as url:
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200

        def loaded() -> set[int]:
            """The workers that have loaded the app (batch scheduling is its first step)."""
            web = {pid for pid, cmd in _started_for(config).items() if "gunicorn" in cmd}
            workers = {pid for pid in web if _parent(pid) in web}
            return {pid for pid in workers if os.sched_getscheduler(pid) == os.SCHED_BATCH}

        assert wait_until(lambda: len(loaded()) == len(usable) + 1, timeout=30)
        for pid in loaded():
            # No CPU slots were given to the workers, and each may run on any CPU.
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not any(entry.startswith(b"BRIDGE_CPU_SLOTS=") for entry in environ)
            assert os.sched_getaffinity(pid) == usable


def _delivery_started(config: Path) -> bool:
    """Delivery starts once intake answers: wait for serve to start it."""
    return wait_until(
        lambda: any("bridge.cli worker" in cmd for cmd in _started_for(config).values()), 15
    )


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _threads(pid: int) -> list[int]:
    return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]


def _started_for(config: Path) -> dict[int, str]:
    """The command lines of the processes started with this config in their environment."""
    wanted = f"BRIDGE_CONFIG={config.resolve()}".encode()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_answers_within_3_seconds_and_stops_within_5(
    emulator: EmulatorServer, tmp_path: Path, sig: int
) -> None:
    """The kitchen-sink config (30 routes): `/healthz` answers within 3 s of the start on
    an idle machine; a signal stops everything within 5 s, a sender still trickling its
    body and a kept-alive connection notwithstanding, and no worker is killed."""
    from bench._harness import SlowClients
    from tests.e2e.kitchen import KITCHEN_SINK, kitchen_env

    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "bridge.cli", "serve", "--config", str(KITCHEN_SINK)]
    env = {**os.environ, **kitchen_env(emulator, f"sqlite:///{tmp_path / 'o.db'}")}
    with log.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(url), timeout=30, interval=0.05)
        up = time.monotonic() - started
        # A signed route reads the body before it can answer: the senders hold a thread each.
        slow = SlowClients("127.0.0.1", port, "/hooks/events", 2)
        with requests.Session() as kept, slow:
            assert kept.get(f"{url}/healthz", timeout=5).status_code == 200
            time.sleep(1)
            stopping = time.monotonic()
            proc.send_signal(sig)
            code = proc.wait(timeout=30)
            stopped = time.monotonic() - stopping
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    record_figure = f"up in {up:.2f} s, stopped in {stopped:.2f} s"
    assert up < 3.0, record_figure
    assert stopped < 5.0 and code == 0, record_figure
    assert sorted(slow.answers) == ["HTTP/1.1 408 REQUEST TIMEOUT"] * 2  # told, not dropped
    assert "SIGKILL" not in log.read_text(errors="replace"), log.read_text()[-2000:]


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False
