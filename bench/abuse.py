"""Abuse: what hostile posts cost a real `bridge serve`, class by class.

For each hostile class, 8 posts at once to a route that takes file uploads (the most any
route reads), on the default limits: the answers, the slowest answer, and the largest
bridge process's resident memory (RSS) before, at its peak while the posts are served
(sampled every 20 ms), and after. The baseline is the same server's largest process
before the first class, and an ordinary post's latency measured in the same run.

- oversized JSON: 19 MB of ``[{},{},…]`` with a Content-Length, and the same chunked;
- deep JSON: just under 1 MiB of ``[[[[…]]]]``;
- wide JSON: just under 1 MiB of ``[{},{},…]`` (about 350,000 values);
- oversized multipart: a 25 MB file, with a Content-Length;
- slow body: a body sent a byte a second; answered 408 at ``server.body_timeout`` (set to
  3 s here to keep the run short), timed from that deadline, while an ordinary post is
  timed alongside.

Targets: the largest process stays under 150 MB, and every answer comes within 1 s (a slow
body's within 1 s of its deadline).
Run: ``.venv/bin/python bench/abuse.py`` (``--against REV`` first runs the same classes
against git revision REV's bridge, for a before and after from one run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import bridge_serve, verdict, write_config
from bench.intake import export
from bench.memory import snapshot

CONCURRENT = 8
BODY_TIMEOUT = 3.0
ROUTES = {
    "contact": {
        "kind": "form",
        "fields": {
            "email": {"type": "email", "required": True},
            "message": {"type": "text", "required": True},
            "files": {"type": "file"},
        },
    },
}
MAX_MB = 150.0
MAX_SECONDS = 1.0


@dataclass
class Hostile:
    name: str
    body: bytes
    content_type: str = "application/json"
    chunked: bool = False
    trickle: bool = False  # a byte a second


def hostile_classes() -> list[Hostile]:
    tiny = b"[" + b"{}," * (19_000_000 // 3) + b"{}]"
    boundary = "abuse-boundary"
    big_file = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\na@b.co\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + b"%PDF-1.7\n"
        + b"0" * 25_000_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return [
        Hostile("oversized JSON", tiny),
        Hostile("oversized JSON, chunked", tiny, chunked=True),
        Hostile("deep JSON", b"[" * 500_000 + b"]" * 500_000),
        Hostile("wide JSON", b"[" + b"{}," * 340_000 + b"{}]"),
        Hostile("oversized multipart", big_file, f"multipart/form-data; boundary={boundary}"),
        Hostile(
            "slow body", b'{"email": "a@b.co", "message": "' + b"x" * 200 + b'"}', trickle=True
        ),
    ]


def post(port: int, hostile: Hostile) -> tuple[str, float]:
    """Send one hostile post; its status line and the seconds until it came."""
    head = "POST /forms/contact HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
    head += f"Content-Type: {hostile.content_type}\r\nConnection: close\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if hostile.chunked else ""
    head += "" if hostile.chunked else f"Content-Length: {len(hostile.body)}\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    started = time.perf_counter()
    answered = threading.Event()

    def pieces() -> Iterator[bytes]:
        step = 1 if hostile.trickle else 64 * 1024
        for start in range(0, len(hostile.body), step):
            piece = hostile.body[start : start + step]
            yield f"{len(piece):X}\r\n".encode() + piece + b"\r\n" if hostile.chunked else piece
        if hostile.chunked:
            yield b"0\r\n\r\n"

    def send() -> None:
        try:
            sock.sendall(head.encode())
            for piece in pieces():
                if answered.is_set():
                    return
                sock.sendall(piece)
                if hostile.trickle:
                    time.sleep(1.0)
        except OSError:
            return  # the server answered and closed: the rest is not wanted

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        data = b""
        while b"\r\n" not in data:
            got = sock.recv(4096)
            if not got:
                break
            data += got
    except OSError:
        data = data or b""
    took = time.perf_counter() - started
    answered.set()
    sock.close()
    sender.join(timeout=5)
    status = data.split(b"\r\n", 1)[0].decode(errors="replace").partition(" ")[2] or "closed"
    return status, took


def ordinary(port: int) -> float:
    body = json.dumps({"email": "pat@example.com", "message": "Hello"}).encode()
    return post(port, Hostile("ordinary", body))[1]


class PeakMemory:
    """The largest process's RSS, sampled every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, max(snapshot(pid).values(), default=0.0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, max(snapshot(self.pid).values(), default=0.0))

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, max(snapshot(self.pid).values(), default=0.0))


def run(work: Path, root: Path) -> bool:
    """Every class against the bridge in ``root``; whether every target was met."""
    ok = True
    config = write_config(
        work / "bridge.yaml",
        "http://127.0.0.1:9",
        f"sqlite:///{work / 'abuse.db'}",
        ROUTES,
        server={"body_timeout": BODY_TIMEOUT},
        files={"directory": str(work / "files")},
    )
    with bridge_serve(config, work / "serve.log", root=root) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        baseline = max(snapshot(proc.pid).values())
        quiet = min(ordinary(port) for _ in range(5))
        print(
            f"  baseline: largest process {baseline:.0f} MB, an ordinary post {quiet * 1000:.1f} ms"
        )
        print(
            f"  {'class':<24} {'answers':<12} {'slowest':>8} {'RSS before':>11}"
            f" {'peak':>7} {'after':>7}"
        )
        for hostile in hostile_classes():
            before = max(snapshot(proc.pid).values())
            with (
                PeakMemory(proc.pid) as peak,
                concurrent.futures.ThreadPoolExecutor(CONCURRENT + 1) as pool,
            ):
                posts = [pool.submit(post, port, hostile) for _ in range(CONCURRENT)]
                alongside = pool.submit(ordinary, port) if hostile.trickle else None
                results = [p.result() for p in posts]
            after = max(snapshot(proc.pid).values())
            answers: dict[str, int] = {}
            for status, _ in results:
                code = status.split(" ")[0]
                answers[code] = answers.get(code, 0) + 1
            slowest = max(took for _, took in results)
            if hostile.trickle:
                slowest = max(0.0, slowest - BODY_TIMEOUT)  # from the deadline
            shown = ", ".join(f"{n}x {s}" for s, n in answers.items())
            print(
                f"  {hostile.name:<24} {shown:<12} {slowest:>7.2f}s {before:>9.0f}MB"
                f" {peak.peak:>5.0f}MB {after:>5.0f}MB"
            )
            if alongside is not None:
                meanwhile = alongside.result()
                print(f"  {'an ordinary post meanwhile':<37} {meanwhile * 1000:>6.1f}ms")
                slowest = max(slowest, meanwhile)
            good = all(code in ("400", "408", "413") for code in answers)
            ok &= good and slowest < MAX_SECONDS and max(peak.peak, after) < MAX_MB
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", metavar="REV", help="first run git revision REV's bridge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.against:
            print(f"at {args.against}:")
            root = export(args.against, work / "against")
            (work / "then").mkdir()
            print(f"  targets met: {verdict(run(work / 'then', root))}")
            print("this tree:")
        (work / "now").mkdir()
        ok = run(work / "now", Path(__file__).resolve().parents[1])
    print(
        f"targets: every answer < {MAX_SECONDS:g} s, largest process < {MAX_MB:g} MB: {verdict(ok)}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
