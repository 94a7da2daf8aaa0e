"""A storm of repeats on tickets kept current (``update:``): 10,000 Alertmanager
notifications over 100 groups, with changing severity, then each group's resolve, into
``bridge serve`` (2 workers, delivery on) and the emulator.

What must hold: 100 tickets; no ticket updated twice within ``every`` (the updates'
arrival times at the emulator); the final state right in every ticket (priority the
highest severity seen, state ``resolved``, the count of firing notifications, the status
block). Printed as ratios against baselines from the same run: updates sent per
notification (what one update per notification would cost: 1), and intake's rate with
updates against the same storm on the same route without ``update:``.

Run: ``.venv/bin/python bench/update_storm.py [--every 5] [--store URL]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import bridge_serve, emulator_process, load, write_config

TOKEN = "update-storm-token"
SEVERITIES = ("info", "warning", "critical")
PRIORITY = {"info": "low", "warning": "normal", "critical": "high"}
FIELDS = {"state": "CF101-01", "occurrences": "CF101-02"}


def severity(group: int, n: int) -> str:
    """Changing severity: most groups cycle through all three; every fourth group never
    goes past warning, so its final priority is normal, not high."""
    top = 2 if group % 4 == 0 else 3
    return SEVERITIES[(n + group) % top]


def notification(group: int, n: int, status: str = "firing") -> dict[str, object]:
    level = severity(group, n)
    name = f"Storm{group}"
    return {
        "version": "4",
        "status": status,
        "receiver": "bridge",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": level},
        "commonAnnotations": {"summary": f"group {group} is unhappy"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "severity": level},
                "annotations": {},
                "startsAt": "2026-12-08T07:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
            }
        ],
    }


def storm(total: int, groups: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The firing notifications (round-robin over the groups), then one resolve each."""
    firing = [notification(n % groups, n // groups) for n in range(total - groups)]
    resolves = [notification(g, 0, "resolved") for g in range(groups)]
    return firing, resolves


def expected(total: int, groups: int) -> dict[str, tuple[str, int]]:
    """Per group: the priority its ticket must end with, and its firing notifications."""
    out: dict[str, tuple[str, int]] = {}
    for g in range(groups):
        sent = [n // groups for n in range(total - groups) if n % groups == g]
        top = max((severity(g, k) for k in sent), key=SEVERITIES.index)
        out[f"Storm{g}"] = (PRIORITY[top], len(sent))
    return out


def run(
    store: str, tmp: Path, emulator: str, every: float | None, firing: list, resolves: list
) -> tuple[float, list[dict[str, object]], float]:
    """One storm into a fresh bridge (``every`` None: the route without ``update:``):
    intake's rate, the tickets once every update is in, and how long that took."""
    requests.post(f"{emulator}/_emulator/reset", timeout=10).raise_for_status()
    route: dict[str, object] = {
        "kind": "hook",
        "source": "alertmanager",
        "auth": {"bearer": TOKEN},
        "ticket": {"email": "alerts@example.com"},
    }
    if every is not None:
        route["update"] = {"every": f"{every}s", "fields": FIELDS}
    config = write_config(
        tmp / f"bridge-{every}.yaml",
        emulator,
        store,
        {"alerts": route},
        delivery={"concurrency": 4, "poll_interval": 0.1},
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    log = tmp / f"serve-{every}.log"
    with bridge_serve(config, log, delivery=True) as (url, _):
        rate, statuses = load(f"{url}/hooks/alerts", firing, headers=headers)
        load(f"{url}/hooks/alerts", resolves, headers=headers, threads=4)
        started = time.monotonic()
        deadline = started + 120 + 4 * (every or 0)
        tickets: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            tickets = requests.get(f"{emulator}/_emulator/tickets", timeout=30).json()["tickets"]
            if every is None or (tickets and all(_settled(t) for t in tickets)):
                break
            time.sleep(1)
        settle = time.monotonic() - started
    bad = {k: v for k, v in statuses.items() if k not in (200, 202)}
    if bad:
        raise SystemExit(f"answers other than 200/202: {bad}")
    return rate, tickets, settle


def _settled(ticket: dict[str, object]) -> bool:
    fields = {f["id"]: f["value"] for f in ticket["custom_fields"]}  # type: ignore[attr-defined]
    return fields.get(FIELDS["state"]) == "resolved"


def check(tickets: list[dict[str, object]], every: float, want: dict[str, tuple[str, int]]) -> list:
    """What is wrong with the tickets (empty: all right), and the updates and the closest
    two updates of one ticket."""
    problems: list[str] = []
    gaps: list[float] = []
    for ticket in tickets:
        name = str(ticket["subject"]).split("] ", 1)[1].split(" ")[0]
        priority, count = want[name]
        fields = {f["id"]: f["value"] for f in ticket["custom_fields"]}  # type: ignore[attr-defined]
        if ticket["priority"] != priority:
            problems.append(f"{name}: priority {ticket['priority']}, want {priority}")
        if fields.get(FIELDS["occurrences"]) != str(count):
            problems.append(f"{name}: count {fields.get(FIELDS['occurrences'])}, want {count}")
        if fields.get(FIELDS["state"]) != "resolved" or "Status: resolved" not in str(
            ticket["description"]
        ):
            problems.append(f"{name}: not resolved")
        if f"Firing notifications: {count}" not in str(ticket["description"]):
            problems.append(f"{name}: the status block's count is not {count}")
        stamps = [dt.datetime.fromisoformat(u["at"]) for u in ticket["updates"]]  # type: ignore[attr-defined]
        gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    if len(tickets) != len(want):
        problems.append(f"{len(tickets)} tickets, want {len(want)}")
    close = [g for g in gaps if g < every]
    if close:
        problems.append(f"{len(close)} updates came within {every} s of the one before")
    return [problems, min(gaps) if gaps else None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--every", type=float, default=5.0, help="update.every, seconds")
    parser.add_argument("--store", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    total = max(1_000, min(args.notifications, 100_000))
    groups = max(10, min(args.groups, total // 10))
    every = max(1.0, min(args.every, 60.0))
    firing, resolves = storm(total, groups)
    want = expected(total, groups)
    with tempfile.TemporaryDirectory() as name, emulator_process() as emulator:
        tmp = Path(name)

        def store(tag: str) -> str:
            return args.store or f"sqlite:///{tmp / f'{tag}.db'}"

        plain_rate, plain, _ = run(store("plain"), tmp, emulator, None, firing, resolves)
        rate, tickets, settle = run(store("kept"), tmp, emulator, every, firing, resolves)
    problems, closest = check(tickets, every, want)
    updates = sum(len(t["updates"]) for t in tickets)  # type: ignore[arg-type]
    per_ticket = max((len(t["updates"]) for t in tickets), default=0)  # type: ignore[arg-type]
    print(
        f"update storm: {total:,} Alertmanager notifications ({total - groups:,} firing with "
        f"changing severity, then {groups} resolves) over {groups} groups; update.every "
        f"{every:g} s; bridge serve, 2 workers, delivery on"
    )
    print(f"  tickets: {len(tickets)} (without update: {len(plain)}); want {groups}")
    print(
        f"  updates sent: {updates:,} = {updates / total:.3f} per notification (one per "
        f"notification: 1.000); the most for one ticket: {per_ticket}; closest two of one "
        f"ticket: {closest if closest is None else f'{closest:.2f} s'} (at least {every:g})"
    )
    print(f"  every update in: {settle:.1f} s after the last resolve was answered")
    print(
        f"  intake: {rate:,.0f} notifications/s with update, {plain_rate:,.0f}/s without; "
        f"ratio {rate / plain_rate:.2f}"
    )
    print(
        f"  final state (priority, count, resolved, status block): "
        f"{'right in every ticket' if not problems else 'WRONG'}"
    )
    for problem in problems[:20]:
        print(f"    {problem}")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
