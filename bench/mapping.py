"""Load + map per submission for a 10-field form route, against a bare ``Schema().load()``.

Both run in this process on the same data, interleaved in rounds; the target is
a mapping overhead under 3× the bare load. Run: ``.venv/bin/python bench/mapping.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.config import settings_from_text

CONFIG = """
proprofs: {account_email: owner@example.com, token: bench}
routes:
  contact:
    kind: form
    fields:
      name:     {type: string, required: true, max_length: 200}
      email:    {type: email, required: true}
      phone:    {type: phone}
      company:  {type: string, max_length: 200}
      topic:    {type: choice, choices: [sales, support, billing]}
      seats:    {type: integer}
      budget:   {type: number}
      website:  {type: url}
      consent:  {type: boolean}
      message:  {type: text, required: true, max_length: 10000}
    ticket:
      subject: "[{{ topic|title }}] {{ message|oneline|truncate(60) }}"
      description: "{{ message }}\\n\\nCompany: {{ company }} ({{ website }})\\nSeats: {{ seats }}"
      name: "{{ name }}"
      email: "{{ email }}"
      phone: "{{ phone }}"
      priority: "{{ topic }}"
      priority_map: {billing: high}
      custom_fields: {CF007-07: "{{ topic }}", CF007-08: "{{ seats }}"}
"""

PAYLOAD = {
    "name": "Jane Doe",
    "email": "jane@example.com",
    "phone": "+1 555 0100",
    "company": "Acme",
    "topic": "billing",
    "seats": "25",
    "budget": "1200.50",
    "website": "https://acme.example.com",
    "consent": "on",
    "message": "Our invoice shows the wrong VAT number.\nPlease send a corrected one." * 4,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=2000)
    args = parser.parse_args()
    route = settings_from_text(CONFIG, env={}).routes["contact"]
    mapping = route.mapping
    bare_schema = type(mapping.schema)()

    def bare() -> None:
        bare_schema.load(PAYLOAD)

    def mapped() -> None:
        data, extra = mapping.load(PAYLOAD)
        mapping.render(data, ref="pb-0123456789abcdef", extra=extra)

    for fn in (bare, mapped):
        for _ in range(200):
            fn()
    timings: dict[str, list[float]] = {"bare load": [], "load + map": []}
    n = max(100, min(args.per_round, 100_000))
    for _ in range(max(1, min(args.rounds, 50))):
        for name, fn in (("bare load", bare), ("load + map", mapped)):
            started = time.perf_counter()
            for _ in range(n):
                fn()
            timings[name].append((time.perf_counter() - started) / n)
    bare_us = statistics.median(timings["bare load"]) * 1e6
    mapped_us = statistics.median(timings["load + map"]) * 1e6
    print(f"10-field form route, {n} submissions x {len(timings['bare load'])} rounds (median)")
    print(f"bare Schema().load():  {bare_us:8.1f} µs/submission  ({1e6 / bare_us:,.0f}/s)")
    print(f"load + map (ticket):   {mapped_us:8.1f} µs/submission  ({1e6 / mapped_us:,.0f}/s)")
    ratio = mapped_us / bare_us
    print(
        f"ratio load+map / bare load: {ratio:.2f}x (target < 3x) -> {'OK' if ratio < 3 else 'MISS'}"
    )


if __name__ == "__main__":
    main()
