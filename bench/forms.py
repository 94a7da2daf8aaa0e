"""Accepted form posts per second through gunicorn (2 workers), every defence on but CAPTCHA,
against a bare Flask app under the same gunicorn settings, in the same run. Target >= 50 %.

Defences on: allowed origins (with CORS), per-IP and per-route rate limits (set high enough
not to trip), honeypot, the signed time token, and double-submit detection; every accepted
post is committed to the SQLite outbox (WAL, synchronous=FULL) before the answer.
Run: ``.venv/bin/python bench/forms.py [--posts N]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import gunicorn, load

ORIGIN = "https://www.example.com"


def config(workdir: Path) -> Path:
    path = workdir / "bridge.yaml"
    path.write_text(
        json.dumps(
            {
                "proprofs": {
                    "base_url": "http://127.0.0.1:9/app/api/v1/",
                    "account_email": "bench@example.com",
                    "token": "bench-token",
                },
                "store": f"sqlite:///{workdir / 'forms.db'}",
                "routes": {
                    "contact": {
                        "kind": "form",
                        "fields": {
                            "name": {"type": "string", "required": True, "max_length": 200},
                            "email": {"type": "email", "required": True},
                            "topic": {"type": "choice", "choices": ["sales", "support", "billing"]},
                            "message": {"type": "text", "required": True, "max_length": 10000},
                        },
                        "origins": [ORIGIN],
                        "spam": {"honeypot": "_gotcha", "min_seconds": 1, "max_age": "1h"},
                        "limits": {"per_ip": ["1000000/hour"], "per_route": ["1000000/day"]},
                    }
                },
            }
        )
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=3000)
    args = parser.parse_args()
    posts = max(200, min(args.posts, 50_000))
    headers = {"Accept": "application/json", "Origin": ORIGIN}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp))
        env = {"BRIDGE_CONFIG": str(cfg)}
        with gunicorn("bridge.app:from_environment()", env=env) as url:
            html = requests.get(f"{url}/forms/contact", timeout=10).text
            token = re.search(r'name="_ts" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            time.sleep(1.1)  # a person takes longer than min_seconds to type
            bodies = [
                {
                    "name": "Jane",
                    "email": f"j{n}@example.com",
                    "topic": "billing",
                    "message": f"Message number {n}",
                    "_gotcha": "",
                    "_ts": token,
                }
                for n in range(posts)
            ]
            load(f"{url}/forms/contact", bodies[:100], headers=headers, form=True)  # warm-up
            ours, statuses = load(f"{url}/forms/contact", bodies[100:], headers=headers, form=True)
        with gunicorn("bench.bare_app:app") as url:
            load(f"{url}/forms/contact", bodies[:100], headers=headers, form=True)
            bare, bare_statuses = load(
                f"{url}/forms/contact", bodies[100:], headers=headers, form=True
            )
    if set(statuses) != {202} or set(bare_statuses) != {202}:
        raise SystemExit(f"unexpected answers: bridge {statuses}, bare {bare_statuses}")
    ratio = ours / bare
    print(f"form posts through gunicorn (2 workers), {posts - 100} posts, 8 client threads")
    print(f"  bridge (all defences but CAPTCHA, durable enqueue): {ours:,.0f} accepted/s")
    print(f"  bare Flask app:                                     {bare:,.0f} /s")
    print(f"  ratio {ratio:.2f} (target >= 0.50) -> {'OK' if ratio >= 0.5 else 'MISS'}")


if __name__ == "__main__":
    main()
