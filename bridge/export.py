"""``bridge tickets export``: every ticket of a date range, through the list API, to CSV or
JSON lines — split into 3-month windows (PROPROFS_API L1), resumable after an interruption.

Progress is kept beside the output (``FILE.progress.json``); on resume, rows already in the
file are kept, a torn last line is dropped, and tickets already written are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .proprofs.client import ProProfsClient
from .proprofs.models import Ticket, TicketFilters
from .proprofs.times import split_windows, utcnow

CSV_COLUMNS = [
    "ticket_id",
    "created",
    "modified",
    "status",
    "priority",
    "subject",
    "customer_email",
    "customer_name",
    "customer_phone",
    "inbox_id",
    "inbox_name",
    "staff_id",
    "staff_name",
    "labels",
    "custom_fields",
    "messages",
    "deleted",
]


@dataclass
class Progress:
    """Where an export stands: the next window and page to fetch, and what it was asked."""

    args: dict[str, Any]
    until: str = ""
    window: int = 0
    page: int = 1
    written: int = 0

    @classmethod
    def load(cls, path: Path, args: dict[str, Any]) -> Progress | None:
        """The progress of an earlier run of the same export, or ``None``."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if data.get("args") != args:
            return None  # a different export: start over
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write the progress atomically beside the output."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


@dataclass
class Summary:
    """What an export wrote."""

    tickets: int = 0
    skipped: int = 0
    windows: int = 0
    pages: int = 0
    resumed: bool = False
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self, where: str) -> str:
        """One line for the terminal."""
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"exported {self.tickets} ticket(s) to {where} in {self.seconds:.1f}s "
            f"({self.windows} window(s), {self.pages} page(s)"
            f"{', resumed' if self.resumed else ''}"
            f"{f', {self.skipped} already written' if self.skipped else ''})"
            f"{': ' + by_status if by_status else ''}"
        )


def row(ticket: Ticket) -> dict[str, Any]:
    """A ticket as a CSV row."""
    return {
        "ticket_id": ticket.ticket_id,
        "created": ticket.created.isoformat(),
        "modified": ticket.modified.isoformat(),
        "status": ticket.status,
        "priority": ticket.priority,
        "subject": ticket.subject,
        "customer_email": ticket.customer_email,
        "customer_name": ticket.customer_name,
        "customer_phone": ticket.customer_phone,
        "inbox_id": ticket.inbox.id if ticket.inbox else "",
        "inbox_name": ticket.inbox.name if ticket.inbox else "",
        "staff_id": ticket.staff.id if ticket.staff else "",
        "staff_name": ticket.staff.name if ticket.staff else "",
        "labels": ";".join(label.name for label in ticket.labels),
        "custom_fields": json.dumps(
            {c.id: c.value for c in ticket.custom_fields}, ensure_ascii=False
        ),
        "messages": len(ticket.messages),
        "deleted": "1" if ticket.deleted else "0",
    }


def document(ticket: Ticket) -> dict[str, Any]:
    """A ticket as one JSON line."""
    doc = row(ticket)
    doc["custom_fields"] = [
        {"id": c.id, "name": c.name, "value": c.value} for c in ticket.custom_fields
    ]
    doc["labels"] = [{"id": label.id, "name": label.name} for label in ticket.labels]
    doc["messages"] = [
        {
            "text": m.text,
            "created": m.created.isoformat(),
            "from": m.sender,
            "to": m.to,
            "reply_by": m.reply_by.name if m.reply_by else None,
        }
        for m in ticket.messages
    ]
    return doc


def _existing_ids(path: Path, fmt: str) -> set[str]:
    """Ids already in a partial output; a torn last line is cut off first."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    text = data.decode()
    if fmt == "jsonl":
        return {json.loads(line)["ticket_id"] for line in text.splitlines() if line.strip()}
    return {r["ticket_id"] for r in csv.DictReader(io.StringIO(text))}


def export(
    client: ProProfsClient,
    *,
    since: datetime,
    until: datetime | None,
    fmt: str,
    out: Path | None,
    status: str | None = None,
    inbox: str | None = None,
    report: Callable[[str], None] | None = None,
) -> Summary:
    """Write every matching ticket once; resumable when ``out`` is a file."""
    started = time.monotonic()
    args = {
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "status": status,
        "inbox": inbox,
        "format": fmt,
    }
    progress_path = out.with_name(out.name + ".progress.json") if out else None
    progress = Progress.load(progress_path, args) if progress_path else None
    # "Until now" means the now of the first run, so that a resumed export is the same export.
    end = (
        datetime.fromisoformat(progress.until)
        if progress and progress.until
        else (until or utcnow())
    )
    windows = split_windows(since, end, client.tz)
    summary = Summary(windows=len(windows))
    seen: set[str] = set()
    if progress is not None and out is not None:
        summary.resumed = True
        seen = _existing_ids(out, fmt)
    else:
        progress = Progress(args=args, until=end.isoformat())
        if out is not None and out.exists():
            out.unlink()
    stream: IO[str] = out.open("a", newline="", encoding="utf-8") if out is not None else sys.stdout
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS) if fmt == "csv" else None
    if writer is not None and not seen and (out is None or out.stat().st_size == 0):
        writer.writeheader()
    try:
        for index in range(progress.window, len(windows)):
            start, end = windows[index]
            filters = TicketFilters(created_from=start, created_to=end, status=status, inbox=inbox)
            page = progress.page if index == progress.window else 1
            while True:
                result = client.list_tickets(filters, page=page)
                summary.pages += 1
                _write(result.tickets, seen, writer, stream, summary)
                if out is not None:
                    os.fsync(stream.fileno())
                more = result.has_next and bool(result.tickets)
                progress.window, progress.page = (index, page + 1) if more else (index + 1, 1)
                progress.written = len(seen)
                if progress_path is not None:
                    progress.save(progress_path)
                if report is not None:
                    report(f"window {index + 1}/{len(windows)}, page {page}, {len(seen)} ticket(s)")
                if not more:
                    break
                page += 1
    finally:
        if out is not None:
            stream.close()
    if progress_path is not None and progress_path.exists():
        progress_path.unlink()  # finished: nothing to resume
    summary.seconds = time.monotonic() - started
    return summary


def _write(
    tickets: Iterable[Ticket],
    seen: set[str],
    writer: csv.DictWriter[str] | None,
    stream: IO[str],
    summary: Summary,
) -> None:
    """Write the tickets not written yet (as CSV rows, or JSON lines) and flush them."""
    for ticket in tickets:
        if ticket.ticket_id in seen:
            summary.skipped += 1
            continue
        seen.add(ticket.ticket_id)
        if writer is not None:
            writer.writerow(row(ticket))
        else:
            stream.write(json.dumps(document(ticket), ensure_ascii=False) + "\n")
        summary.tickets += 1
        summary.statuses[ticket.status] = summary.statuses.get(ticket.status, 0) + 1
    stream.flush()
