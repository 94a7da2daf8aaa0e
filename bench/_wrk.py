"""wrk, the HTTP load generator (Debian's package; `make bench-tools` installs it), driven
from Python: POST a JSON webhook with a bearer token, every body different, and read back
requests/s, latency percentiles and the statuses that were not 2xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """
local counter = 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer %(token)s"
end
function request()
  counter = counter + 1
  local id = tostring(counter)
  return wrk.format(nil, nil, nil,
    '{"id": "' .. id .. '", "title": "Disk almost full on db-' .. (counter %% 50) ..
    '", "severity": "warning", "service": "storage", "value": ' .. counter .. '}')
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Result:
    requests: int
    per_s: float
    p50_ms: float
    p99_ms: float
    not_2xx: int
    errors: int  # connect/read/write/timeout errors wrk counted

    def line(self) -> str:
        return (
            f"{self.per_s:8,.0f} req/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:7.2f} ms"
            f"  ({self.requests:,} requests, {self.not_2xx} not 2xx, {self.errors} errors)"
        )


def need_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: `make bench-tools` installs Debian's package")
    return found


def run(url: str, *, connections: int, seconds: float, token: str, threads: int = 2) -> Result:
    """``wrk -t THREADS -c CONNECTIONS -d SECONDS --latency`` posting webhooks to ``url``."""
    wrk = need_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT % {"token": token})
    try:
        done = subprocess.run(
            [
                wrk,
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    return parse(done.stdout)


def parse(out: str) -> Result:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not match:
            raise ValueError(f"no {percent}% latency in wrk's output:\n{out}")
        return float(match.group(1)) * UNITS[match.group(2)]

    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not total or not rate:
        raise ValueError(f"cannot read wrk's output:\n{out}")
    not_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(
        requests=int(total.group(1)),
        per_s=float(rate.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        not_2xx=int(not_2xx.group(1)) if not_2xx else 0,
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )
