"""Memory: the largest bridge process after 100,000 submissions.

`bridge serve --no-delivery` (2 gthread workers, SQLite) takes webhooks from wrk until
100,000 are stored, every one a different alert, so anything kept per submission (request
ids, body deadlines, metrics label sets, caches) would show as growth. Then the resident
memory (RSS) of each process is read from /proc, next to the same processes' RSS after
the first 1,000, the baseline of the same run.

Target: the largest process <= 80 MB after 100,000 submissions.
Run: ``.venv/bin/python bench/memory.py [--submissions N]`` (needs wrk: ``make bench-tools``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _wrk
from bench._harness import bridge_serve, stored, verdict
from bench.intake import CONFIG, TOKEN  # the same route and store as the intake figure


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bridge_processes(root: int) -> dict[int, str]:
    """The serve process and every process under it, with their command lines."""
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            todo += [int(c) for c in children]
    return found


def snapshot(root: int) -> dict[int, float]:
    return {pid: rss_mb(pid) for pid in bridge_processes(root)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    target = max(2_000, min(args.submissions, 1_000_000))
    _wrk.need_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        db = workdir / "bridge.db"
        config = workdir / "bridge.yaml"
        config.write_text(CONFIG.format(db=db, token=TOKEN))
        with bridge_serve(config, workdir / "serve.log") as (url, proc):
            while stored(db) < 1_000:
                _wrk.run(url + "/hooks/alerts", connections=16, seconds=1, token=TOKEN)
            early = snapshot(proc.pid)
            deadline = time.monotonic() + args.max_seconds
            while stored(db) < target and time.monotonic() < deadline:
                _wrk.run(url + "/hooks/alerts", connections=16, seconds=10, token=TOKEN)
            late = snapshot(proc.pid)
            count = stored(db)
            names = bridge_processes(proc.pid)
    print(f"memory: bridge serve --no-delivery, RSS after 1,000 and after {count:,} submissions")
    for pid, after in sorted(late.items(), key=lambda item: -item[1]):
        role = "gunicorn worker" if "gunicorn" in names[pid] else "serve"
        if "gunicorn" in names[pid] and pid == min(p for p in late if "gunicorn" in names[p]):
            role = "gunicorn master"
        print(f"  {role:16} pid {pid}: {early.get(pid, 0):6.1f} MB -> {after:6.1f} MB")
    largest = max(late.values())
    ok = largest <= 80 and count >= target
    print(
        f"  largest {largest:.1f} MB after {count:,} (target <= 80 MB after {target:,}) -> "
        f"{verdict(ok)}"
    )


if __name__ == "__main__":
    main()
