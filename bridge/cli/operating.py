"""Operating: the database, the outbox, erasure, routes' delivery, the console's password,
exports."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from ..outbox.records import STATES, StoreUnavailable, describe_erasure
from ..proprofs.errors import ProProfsError
from ..proprofs.models import STATUSES as STATUSES_FOR_EXPORT
from .group import (
    config_option,
    main,
    open_outbox,
    settings_or_exit,
)

if TYPE_CHECKING:
    from ..config import Settings


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@config_option
def db_upgrade(config_file: str | None) -> None:
    """Apply the outbox migrations (SQLite also does this by itself at start)."""
    from ..outbox.store import SubmissionStore

    settings = settings_or_exit(config_file)
    store = SubmissionStore(settings.store, auto_upgrade=False)
    try:
        store.upgrade()
    except StoreUnavailable as exc:
        click.echo(f"cannot reach the store: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo("the outbox schema is up to date")


@main.group()
def outbox() -> None:
    """Inspect and act on submissions."""


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


@outbox.command("list")
@config_option
@click.option("--state", type=click.Choice(STATES), help="Only submissions in this state.")
@click.option("--route", help="Only this route's submissions.")
@click.option("--limit", default=50, show_default=True, type=int, help="At most this many.")
def outbox_list(config_file: str | None, state: str | None, route: str | None, limit: int) -> None:
    """Recent submissions, newest first."""
    store = open_outbox(settings_or_exit(config_file))
    rows = store.list(state=state, route=route, limit=limit)
    click.echo(f"{'id':<24} {'route':<14} {'state':<10} {'tries':>5} {'ticket':<8} created")
    for sub in rows:
        click.echo(
            f"{sub.id:<24} {sub.route:<14} {sub.state:<10} {sub.attempts:>5} "
            f"{sub.ticket_id or '-':<8} {_when(sub.created_at)}"
        )
    counts = store.counts()
    click.echo("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))


@outbox.command("show")
@config_option
@click.argument("submission_id")
def outbox_show(config_file: str | None, submission_id: str) -> None:
    """One submission, its ticket draft and every attempt."""
    store = open_outbox(settings_or_exit(config_file))
    sub = store.get(submission_id)
    if sub is None:
        click.echo(f"no submission {submission_id}", err=True)
        raise SystemExit(1)
    click.echo(
        json.dumps(
            {
                "id": sub.id,
                "route": sub.route,
                "kind": sub.kind,
                "state": sub.state,
                "attempts": sub.attempts,
                "ticket_id": sub.ticket_id,
                "dedup_key": sub.dedup_key,
                "last_error": sub.last_error,
                "created": _when(sub.created_at),
                "next_attempt": _when(sub.next_attempt_at)
                if sub.state in ("pending", "unknown")
                else None,
                "draft": sub.draft.to_dict(),
                "attempt_log": [
                    {
                        "number": a.number,
                        "kind": a.kind,
                        "outcome": a.outcome,
                        "at": _when(a.finished_at),
                        "http_status": a.http_status,
                        "ticket_id": a.ticket_id,
                        "error": a.error,
                    }
                    for a in store.attempts_for(sub.id)
                ],
            },
            indent=2,
            ensure_ascii=False,
        )
    )


@outbox.command("replay")
@config_option
@click.argument("submission_id", required=False)
@click.option("--all-dead", is_flag=True, help="Replay every dead submission the filters take.")
@click.option("--route", help="With --all-dead: only this route's.")
@click.option("--error", help="With --all-dead: only those whose last error has this text.")
@click.option("--since", help="With --all-dead: only those dead since (UTC, YYYY-MM-DD HH:MM).")
@click.option("--until", help="With --all-dead: only those dead before (UTC).")
@click.option("--dry-run", is_flag=True, help="With --all-dead: say how many, replay none.")
def outbox_replay(
    config_file: str | None,
    submission_id: str | None,
    all_dead: bool,
    route: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
) -> None:
    """Send dead submissions again from a fresh retry schedule."""
    from ..outbox.records import DeadFilter

    store = open_outbox(settings_or_exit(config_file))
    if all_dead == bool(submission_id):
        click.echo("give a submission id or --all-dead", err=True)
        raise SystemExit(2)
    if all_dead:
        try:
            which = DeadFilter.from_fields(
                {"route": route, "error": error, "since": since, "until": until}
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if dry_run:
            count = store.count_dead(which)
            click.echo(f"{count} dead submission(s) would be replayed ({which.describe()})")
            return
        count = store.replay_dead(which)
        click.echo(f"replaying {count} dead submission(s) ({which.describe()})")
        return
    assert submission_id is not None
    if not store.replay(submission_id):
        click.echo(f"{submission_id} is not a dead submission", err=True)
        raise SystemExit(1)
    click.echo(f"replaying {submission_id}")


@outbox.command("purge")
@config_option
@click.option("--older-than", required=True, help="e.g. 30d, 12h")
@click.option(
    "--state",
    type=click.Choice(["delivered", "dead", "suppressed"]),
    default="delivered",
    show_default=True,
)
def outbox_purge(config_file: str | None, older_than: str, state: str) -> None:
    """Delete old delivered (or dead) submissions and their attempts."""
    from ..config import parse_duration

    try:
        seconds = parse_duration(older_than)
    except ValueError:
        raise click.BadParameter(
            "use a duration like 30d or 12h", param_hint="--older-than"
        ) from None
    store = open_outbox(settings_or_exit(config_file))
    click.echo(
        f"purged {store.privacy.purge(older_than=seconds, state=state)} {state} submission(s)"
    )


@main.command()
@config_option
@click.option("--email", required=True, help="The person's email address (any case).")
def erase(config_file: str | None, email: str) -> None:
    """Remove everything the bridge holds about one person (their submissions' content,
    quarantined ones entirely); tickets in ProProfs are left alone."""
    if "@" not in email:
        raise click.BadParameter("an email address, like person@example.com", param_hint="--email")
    try:
        with open_outbox(settings_or_exit(config_file)) as store:
            report = store.privacy.erase(email)
    except StoreUnavailable as exc:
        click.echo(f"cannot reach the store: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(describe_erasure(email, report))


@main.group("routes")
def routes_group() -> None:
    """Pause and resume delivery per route."""


def _known_route(settings: Settings, route: str) -> None:
    """A configured route, or an event subscriber's (``events:<name>``)."""
    subscribers = [s.route for s in settings.events.values()]
    if route not in settings.routes and route not in subscribers:
        known = ", ".join([*sorted(settings.routes), *sorted(subscribers)])
        raise click.BadParameter(
            f"no route {route!r} in {settings.source_path} (routes: {known})",
            param_hint="ROUTE",
        )


@routes_group.command("list")
@config_option
def routes_list(config_file: str | None) -> None:
    """Each route, its kind, and whether its delivery is paused."""
    settings = settings_or_exit(config_file)
    with open_outbox(settings) as store:
        paused = store.pauses.paused()
    kinds = {name: route.kind for name, route in settings.routes.items()}
    kinds.update({s.route: "events" for s in settings.events.values()})
    for name, kind in sorted(kinds.items()):
        state = f"paused since {_when(paused[name])}" if name in paused else "delivering"
        click.echo(f"{name:<24} {kind:<7} {state}")


@routes_group.command("pause")
@config_option
@click.argument("route")
def routes_pause(config_file: str | None, route: str) -> None:
    """Stop delivering ROUTE's submissions; it keeps taking and storing them."""
    settings = settings_or_exit(config_file)
    _known_route(settings, route)
    with open_outbox(settings) as store:
        done = store.pauses.pause(route, by="cli")
    click.echo(f"route {route}: " + ("paused" if done else "was already paused"))


@routes_group.command("resume")
@config_option
@click.argument("route")
def routes_resume(config_file: str | None, route: str) -> None:
    """Deliver ROUTE's submissions again, the ones stored while it was paused first."""
    settings = settings_or_exit(config_file)
    _known_route(settings, route)
    with open_outbox(settings) as store:
        done = store.pauses.resume(route)
    click.echo(f"route {route}: " + ("resumed" if done else "was not paused"))


@main.group("admin")
def admin_group() -> None:
    """Operator console helpers."""


@admin_group.command("hash-password")
@click.password_option(
    "--password", prompt="Console password", help="The password (asked for when not given)."
)
def hash_password(password: str) -> None:
    """Print the hash to put in admin.password_hash (asks for the password)."""
    from werkzeug.security import generate_password_hash

    click.echo(generate_password_hash(password))


@main.group()
def tickets() -> None:
    """Read tickets back from ProProfs."""


def _day_or_time(value: str, tz: ZoneInfo, end: bool = False) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if len(value) == 10 and end:
        parsed = parsed + timedelta(days=1) - timedelta(seconds=1)  # the whole day
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)  # dates are the account's days
    return parsed


@tickets.command("export")
@config_option
@click.option("--since", required=True, help="First day (YYYY-MM-DD), in the account's zone.")
@click.option("--until", help="Last day (default: now).")
@click.option("--status", type=click.Choice([s.lower() for s in STATUSES_FOR_EXPORT]))
@click.option("--inbox", help="An inbox id, e.g. IB238-436.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (resumable); default: standard output.",
)
def tickets_export(
    config_file: str | None,
    since: str,
    until: str | None,
    status: str | None,
    inbox: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Export tickets over any date range (3-month windows), resumable, with a summary."""
    from ..app import proprofs_client
    from ..export import export

    settings = settings_or_exit(config_file)
    tz = ZoneInfo(settings.proprofs.timezone)
    start = _day_or_time(since, tz)
    end = _day_or_time(until, tz, end=True) if until else None
    if end is not None and end <= start:
        raise click.BadParameter("--until must be after --since")
    tty = sys.stderr.isatty()

    def report(text: str) -> None:
        if tty:
            click.echo(f"\r\033[K{text}", nl=False, err=True)

    with proprofs_client(settings) as client:
        try:
            summary = export(
                client,
                since=start,
                until=end,
                fmt=fmt,
                out=out,
                status=status,
                inbox=inbox,
                report=report,
            )
        except ProProfsError as exc:
            if tty:
                click.echo("", err=True)
            click.echo(
                f"export stopped: {exc}; run the same command again to resume"
                if out
                else f"export stopped: {exc}",
                err=True,
            )
            raise SystemExit(1) from None
    if tty:
        click.echo("", err=True)
    click.echo(summary.line(str(out) if out else "standard output"), err=True)
