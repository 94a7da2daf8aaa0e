"""Client round trips against the emulator, and the client's own overhead per call.

Both sides run in one process against one emulator process, alternating in
batches so that drift on the machine hits both alike: the ProProfs client's
``create_ticket`` / ``list_tickets`` versus a bare ``requests`` session posting
the same JSON. Run: ``.venv/bin/python bench/client.py [--calls N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import ACCOUNT_EMAIL, TOKEN, emulator_process, summary
from bridge.proprofs import ProProfsClient, TicketDraft

DRAFT = TicketDraft(
    email="jane@example.com",
    subject="Benchmark ticket",
    name="Jane",
    description="x" * 400,
    priority="normal",
    inbox="IB238-436",
    custom_fields={"CF007-07": "Micro"},
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400, help="calls per side and endpoint")
    args = parser.parse_args()
    calls = max(20, min(args.calls, 5000))
    with emulator_process() as url:
        base = url + "/app/api/v1/"
        client = ProProfsClient(base, ACCOUNT_EMAIL, TOKEN)
        bare = requests.Session()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        create_body = {"account_email": ACCOUNT_EMAIL, "token": TOKEN, **DRAFT.to_dict()}
        create_body["custom_fields"] = [{"id": "CF007-07", "value": "Micro"}]
        list_body = {"account_email": ACCOUNT_EMAIL, "token": TOKEN}

        def bare_create() -> None:
            r = bare.post(
                base + "create/ticket/",
                data=json.dumps(create_body),
                headers=headers,
                timeout=(5, 30),
            )
            assert r.json()["status"] == "success"

        def bare_list() -> None:
            r = bare.post(
                base + "list/ticket/", data=json.dumps(list_body), headers=headers, timeout=(5, 30)
            )
            assert r.json()["status"] == "success"

        def client_create() -> None:
            client.create_ticket(DRAFT)

        def client_list() -> None:
            page = client.list_tickets()
            assert page.total_on_page == 25

        for warm in (bare_create, client_create, bare_create, bare_list, client_list):
            for _ in range(10):
                warm()  # the creates leave 30 tickets, so every list returns a full page
        results: dict[str, list[float]] = {
            k: [] for k in ("bare create", "client create", "bare list", "client list")
        }
        batch = 20
        for _ in range(calls // batch):
            for name, fn in (
                ("bare create", bare_create),
                ("client create", client_create),
                ("bare list", bare_list),
                ("client list", client_list),
            ):
                for _ in range(batch):
                    started = time.perf_counter()
                    fn()
                    results[name].append(time.perf_counter() - started)
        client.close()

    print(f"ProProfs client vs bare requests against the emulator ({calls} calls each)")
    print(f"{'side':<14} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    stats = {name: summary(samples) for name, samples in results.items()}
    for name, s in stats.items():
        print(
            f"{name:<14} {s['per_s']:>9.1f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['mean_ms']:>8.2f}"
        )
    for kind in ("create", "list"):
        c, b = stats[f"client {kind}"], stats[f"bare {kind}"]
        print(
            f"{kind}: client/bare mean time ratio {c['mean_ms'] / b['mean_ms']:.3f}; "
            f"overhead per call {c['mean_ms'] - b['mean_ms']:+.3f} ms"
        )


if __name__ == "__main__":
    main()
