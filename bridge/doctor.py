"""``bridge doctor``: check a real deployment from its config, a line per check.

The store (reachable, migrations current), Redis when rate limits live there, ProProfs
(reachable, credentials accepted: one list call of one page), and for every route that
its pages and ticket templates render — with the preset's shipped sample payload for a
hook route. Nothing secret is printed: messages pass through the same redaction as logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .config.settings import Route, Settings
from .observability import RedactFilter, settings_secrets
from .resources import examples_dir

SAMPLE_FIELD = {
    "email": "sam@example.com",
    "phone": "+1 555 0100",
    "integer": "3",
    "number": "3.5",
    "boolean": "true",
    "choice": None,  # the first choice
    "list": ["one", "two"],
    "url": "https://www.example.com/",
    "date": "2026-01-31",
    "datetime": "2026-01-31T12:00:00+00:00",
    "dict": {"key": "value"},
}


@dataclass(frozen=True)
class Line:
    """One check's verdict, as ``bridge doctor`` prints it."""

    ok: bool
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what:<22} {self.detail}"


def run(settings: Settings) -> list[Line]:
    """Every check, in order; the process fails if any line is not ok."""
    redact = RedactFilter(settings_secrets(settings))
    return [
        Line(line.ok, line.what, redact.clean(line.detail))
        for check in (_store, _redis, _proprofs, _routes)
        for line in check(settings)
    ]


def _store(settings: Settings) -> Iterator[Line]:
    from .outbox.migrate import current_revision, head_revision
    from .outbox.sqlite import sqlite_problem

    shown = sa.make_url(settings.store).render_as_string(hide_password=True)
    problem = sqlite_problem(settings.store)
    if problem:
        yield Line(False, "store", f"{shown}: {problem}")
        return
    engine = sa.create_engine(settings.store, connect_args=_connect_args(settings.store))
    try:
        current = current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        yield Line(False, "store", f"{shown}: unreachable ({type(cause).__name__})")
        return
    finally:
        engine.dispose()
    head = head_revision()
    if current == head:
        yield Line(True, "store", f"{shown}: reachable, migrations current ({head})")
    elif current is None and settings.store.startswith("sqlite"):
        yield Line(True, "store", f"{shown}: new; created and migrated at the first start")
    else:
        yield Line(
            False,
            "store",
            f"{shown}: migrations at {current or 'none'}, the code needs {head}; "
            "run `bridge db upgrade`",
        )


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if url.startswith("sqlite") else {"connect_timeout": 5}


def _redis(settings: Settings) -> Iterator[Line]:
    storage = settings.server.rate_limit_storage
    if not storage.startswith(("redis://", "rediss://")):
        yield Line(True, "rate limits", f"{storage.split(':')[0]}: counted per process")
        return
    import redis

    shown = sa.make_url(storage).render_as_string(hide_password=True)
    try:
        client = redis.Redis.from_url(storage, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        yield Line(True, "rate limits", f"{shown}: answers")
    except redis.RedisError as exc:
        yield Line(
            False,
            "rate limits",
            f"{shown}: unreachable ({type(exc).__name__}); intake would count per process",
        )


def _proprofs(settings: Settings) -> Iterator[Line]:
    from .app import proprofs_client
    from .proprofs.errors import AuthenticationError, ProProfsError

    base = settings.proprofs.base_url
    try:
        with proprofs_client(settings, pool_size=1) as client:
            page = client.list_tickets()
    except AuthenticationError as exc:
        yield Line(False, "proprofs", f"{base}: credentials refused ({exc})")
    except ProProfsError as exc:
        yield Line(False, "proprofs", f"{base}: {type(exc).__name__}: {exc}")
    else:
        yield Line(
            True, "proprofs", f"{base}: credentials accepted ({len(page.tickets)} ticket(s) read)"
        )


def _routes(settings: Settings) -> Iterator[Line]:
    from .app import create_app

    try:
        app = create_app(settings)
    except Exception as exc:  # whatever stops the app from starting is the answer
        yield Line(False, "app", f"cannot start: {type(exc).__name__}: {exc}")
        return
    web = app.test_client()
    for name, route in settings.routes.items():
        pages = {
            "form": [f"/forms/{name}", f"/forms/{name}/thanks"],
            "widget": [f"/widget/{name}/config", "/widget.js"],
        }
        # Asked as a browser on the user's site asks: from the first origin listed.
        site = {"Origin": route.guards.origins[0]} if route.guards.origins else {}
        broken = [
            f"{path} answered {answer.status_code}"
            for path in pages.get(route.kind, [])
            if (answer := web.get(path, headers=site)).status_code != 200
        ]
        if not broken and route.kind == "widget":
            broken = _embedding(web, route)
        yield Line(False, f"route {name}", "; ".join(broken)) if broken else _mapping(route)
    if settings.admin.enabled:
        yield _console(web, settings)


def _embedding(web: Any, route: Route) -> list[str]:
    """What stops the widget from working on the user's own site: no ``origins`` (a
    browser there may not read the bridge's answers), or a preflight that is refused."""
    if not route.guards.origins:
        return [
            "no origins: the widget works only on pages the bridge serves itself; list the "
            "site it goes on, e.g. origins: [https://www.example.com]"
        ]
    site = route.guards.origins[0]
    answer = web.options(
        route.path,
        headers={
            "Origin": site,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    if answer.headers.get("Access-Control-Allow-Origin") != site:
        return [f"a browser on {site} may not post to {route.path} ({answer.status_code})"]
    return []


def _console(web: Any, settings: Settings) -> Line:
    """The console's sign-in page (password) or overview (behind a trusted header) renders."""
    header = settings.admin.trusted_header
    path = "/admin" if header else "/admin/login"
    answer = web.get(path, headers={header: "bridge-doctor"} if header else {})
    if answer.status_code != 200:
        return Line(False, "admin console", f"{path} answered {answer.status_code}")
    return Line(True, "admin console", f"{path} renders")


def _mapping(route: Route) -> Line:
    """The route's ticket from a sample: the preset's shipped payload, or sample fields."""
    what = f"route {route.name}"
    try:
        found = sample(route)
        if found is None:
            return Line(True, what, "custom schema: no sample to map")
        shown, payload = found
        data, extra = route.mapping.load(payload)
        draft = route.mapping.render(
            data, ref="pb-doctor0000000000000", extra=extra, meta={"max_alerts": 20}
        )
    except Exception as exc:  # a template or schema that fails on real input is the finding
        return Line(False, what, f"{shown} does not map: {type(exc).__name__}: {exc}")
    return Line(True, what, f"{shown} → {draft.subject!r}")


def sample(route: Route) -> tuple[str, Any] | None:
    """A realistic input for ``route`` and what it is: its sender preset's shipped payload
    (read as intake reads it), or a value of the right type for each declared field; ``None``
    for a route with its own schema."""
    if route.source is not None:
        path = examples_dir() / "payloads" / "senders" / f"{route.source.name}.json"
        return f"the {route.source.name} sample", route.read_json(path.read_bytes())
    if route.fields:
        return "sample fields", _fields(route)
    return None


def _fields(route: Route) -> dict[str, Any]:
    """A value of the right type for every declared field (files are not fields of the
    ticket's data: they are listed under it when a person sends some)."""
    fields: dict[str, Any] = {}
    for name, spec in route.fields.items():
        if spec.type == "file":
            continue
        value = SAMPLE_FIELD.get(spec.type, f"A sample {name}")
        if spec.type == "choice":
            value = (spec.choices or ["x"])[0]
        fields[name] = value
    return fields
