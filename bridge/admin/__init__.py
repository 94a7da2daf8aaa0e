"""The operator console at ``/admin``: submissions, dead letters and replay, routes, figures.

Behind a login (a password hash in the config) or an identity header set by a trusted
proxy; every form carries a CSRF token; the session cookie is signed, HttpOnly,
SameSite=Lax and Secure. Server-rendered from ``templates/``; no front-end build.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.security import check_password_hash

from ..attachments import human_size
from ..config import Route, Settings, mask_secrets
from ..intake import captures as bench
from ..intake.files import link
from ..intake.state import bridge
from ..mapping import without_footer
from ..outbox.records import STATES, describe_erasure
from ..proxies import peer_in

log = logging.getLogger(__name__)
blueprint = Blueprint("admin", __name__, url_prefix="/admin")
F = TypeVar("F", bound=Callable[..., Any])


class ConsoleSessions(SecureCookieSessionInterface):
    """The console's signed cookie, opened only on the console's own paths, the only ones
    a browser sends it to. Every other request — every submission — skips building a
    signer for a cookie that cannot be there."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A session on the console's paths; a null one everywhere else."""
        if not request.path.startswith(COOKIE_PATH):
            return self.null_session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Signed with the bridge's signing key (the configured one, or the store's)."""
        return URLSafeTimedSerializer(
            bridge().signing_key,
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )


COOKIE_PATH = "/admin"
#: Failed sign-ins allowed per peer and per user name before a wait (429, Retry-After).
LOGIN_LIMITS = ("5 per 15 minutes",)
SESSION_LIFETIME = 8 * 3600
CONSOLE_USER = "admin"


def init_app(app: Flask, settings: Settings) -> None:
    """Mount the console on ``app`` when ``admin`` is configured."""
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="bridge_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.admin.secure_cookies,
        SESSION_COOKIE_PATH=COOKIE_PATH,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.jinja_env.filters["when"] = lambda ts: time.strftime(
        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts)
    )
    app.jinja_env.filters["as_written"] = lambda text: without_footer(text or "").rstrip()
    app.register_blueprint(blueprint)


def _admin() -> Any:
    return bridge().settings.admin


def current_user() -> str | None:
    """Who is signed in to the console, or ``None``."""
    admin = _admin()
    if admin.trusted_header and from_trusted_proxy():
        user = request.headers.get(admin.trusted_header, "").strip()
        if user:
            return user
    session_id = session.get("sid")
    if not session_id:
        return None
    if "user" not in g:  # one read of the store per request
        g.user = bridge().store.access.session_user(str(session_id), SESSION_LIFETIME)
    return cast(str | None, g.user)


def from_trusted_proxy() -> bool:
    """Whether the request came straight from a proxy ``server.trusted_proxies`` names."""
    server = bridge().settings.server
    peer = request.environ.get("bridge.peer", request.remote_addr or "")
    networks = tuple(ipaddress.ip_network(n) for n in server.proxy_networks)
    return bool(networks) and peer_in(str(peer), networks)


def login_required(view: F) -> F:
    """Send a console view's visitor to the sign-in page unless signed in."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not _admin().enabled:
            abort(404)
        if current_user() is None:
            return redirect(url_for("admin.login", next=request.path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def csrf_token() -> str:
    """This session's token for the console's forms."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """Refuse (400) a console post without this session's token."""
    given = request.form.get("csrf_token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(given.encode(), str(expected).encode()):
        abort(
            400,
            description="The form's security token is missing or stale; reload the "
            "page and try again.",
        )


@blueprint.app_context_processor
def inject() -> dict[str, Any]:
    """What every console template may use: the form token and the user."""
    return {
        "csrf_token": csrf_token if request.path.startswith("/admin") else None,
        "admin_user": current_user() if request.path.startswith("/admin") else None,
    }


def page(template: str, **context: Any) -> Response:
    """A console page, never cached, never framed."""
    response = Response(render_template(template, **context), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """GET/POST /admin/login: sign in, throttled per peer and per user name."""
    admin = _admin()
    if not admin.enabled:
        abort(404)
    error = None
    target = request.args.get("next") or url_for("admin.home")
    if any(c in target for c in "\r\n"):
        abort(400, description="The address to go back to is not valid.")
    if not target.startswith("/admin") or target.startswith("/admin//"):
        target = url_for("admin.home")
    if request.method == "POST":
        check_csrf()
        user = (request.form.get("username") or CONSOLE_USER).strip()[:128]
        peer = request.remote_addr or "unknown"
        limits = bridge().rate_limits
        keys = [f"peer:{peer}", f"user:{user.lower()}"]
        wait = limits.failures_wait("admin-login", keys, LOGIN_LIMITS)
        if wait:
            log.warning("console sign-in for %r from %s refused: too many failures", user, peer)
            response = page(
                "admin/login.html",
                error=f"Too many failed sign-ins; try again in {wait} seconds.",
                next=target,
                user=user,
            )
            response.status_code = 429
            response.headers["Retry-After"] = str(wait)
            return response
        password = request.form.get("password", "")
        if (
            user == CONSOLE_USER
            and admin.password_hash
            and check_password_hash(admin.password_hash, password)
        ):
            session.clear()
            session["sid"] = bridge().store.access.open_session(user)
            session.permanent = True
            log.info("console sign-in for %r from %s", user, peer)
            return cast(Response, redirect(target, code=303))
        limits.failed("admin-login", keys, LOGIN_LIMITS)
        log.warning("console sign-in failed for %r from %s", user, peer)
        error = "That user name or password is not right."
    response = page("admin/login.html", error=error, next=target, user=CONSOLE_USER)
    if error:
        response.status_code = 401
    return response


@blueprint.post("/logout")
@login_required
def logout() -> Response:
    """POST /admin/logout: end the session here and in the store."""
    check_csrf()
    session_id = session.get("sid")
    if session_id:
        bridge().store.access.close_session(str(session_id))  # a copied cookie dies too
    session.clear()
    return cast(Response, redirect(url_for("admin.login"), code=303))


@blueprint.get("")
@blueprint.get("/")
@login_required
def home() -> Response:
    """GET /admin: the outbox at a glance."""
    state = bridge()
    counts = state.store.counts()
    return page(
        "admin/home.html",
        counts=counts,
        oldest=state.store.oldest_waiting_age(),
        spam=state.store.quarantine.count(),
        routes=state.settings.routes,
        recent=state.store.list(limit=10),
        dead=state.store.list(state="dead", limit=10),
    )


@blueprint.get("/submissions")
@login_required
def submissions() -> Response:
    """GET /admin/submissions: newest first, by state, route or text."""
    state = bridge()
    route = request.args.get("route") or None
    wanted = request.args.get("state") or None
    search = (request.args.get("q") or "").strip() or None
    page_number = max(1, request.args.get("page", 1, type=int) or 1)
    rows = state.store.list(
        state=wanted if wanted in STATES else None,
        route=route,
        search=search,
        limit=50,
        offset=(page_number - 1) * 50,
    )
    return page(
        "admin/submissions.html",
        rows=rows,
        route=route,
        state=wanted,
        q=search or "",
        states=STATES,
        routes=state.settings.routes,
        page=page_number,
    )


@blueprint.get("/submissions/<submission_id>")
@login_required
def submission(submission_id: str) -> Response:
    """GET /admin/submissions/<id>: one submission, its draft and attempts."""
    state = bridge()
    sub = state.store.get(submission_id)
    if sub is None:
        abort(404)
    ticket_url = None
    if sub.ticket_id and state.settings.admin.ticket_url:
        ticket_url = state.settings.admin.ticket_url.replace("{ticket_id}", sub.ticket_id)
    now = time.time()
    files = [
        {
            "name": f.name,
            "type": f.type,
            "size": human_size(f.size),
            "url": link(f),
            "expires": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(f.expires_at)),
            "expired": f.expires_at <= now,
        }
        for f in state.store.attachments.of(sub.id)
    ]
    return page(
        "admin/submission.html",
        sub=sub,
        updates=[] if sub.is_update else state.store.updates.of(sub.id)[-20:],
        attempts=state.store.attempts_for(sub.id),
        ticket_url=ticket_url,
        files=files,
        lifetime=f"{state.settings.files.link_lifetime / 86400:g} days",
    )


@blueprint.post("/submissions/<submission_id>/extend")
@login_required
def extend(submission_id: str) -> Response:
    """The links to a submission's files work for the configured lifetime from now."""
    check_csrf()
    state = bridge()
    count = state.store.attachments.extend_links(
        submission_id, time.time() + state.settings.files.link_lifetime
    )
    log.info("console: %d file link(s) of %s extended", count, submission_id)
    return cast(
        Response, redirect(url_for("admin.submission", submission_id=submission_id), code=303)
    )


@blueprint.post("/submissions/<submission_id>/replay")
@login_required
def replay(submission_id: str) -> Response:
    """POST: send one dead submission again."""
    check_csrf()
    bridge().store.replay(submission_id)
    return cast(
        Response, redirect(url_for("admin.submission", submission_id=submission_id), code=303)
    )


@blueprint.get("/incidents")
@login_required
def incidents() -> Response:
    """GET /admin/incidents: alert groups, most recently active first."""
    state = bridge()
    now = state.clock()
    rows = []
    for incident in state.store.incidents.list(limit=100):
        held = incident.muted or bool(incident.snoozed_until and incident.snoozed_until > now)
        token = state.incident_links.dumps([incident.route, incident.key])
        rows.append(
            {
                "subject": incident.submission.draft.subject,
                "route": incident.route,
                "created_at": incident.created_at,
                "generation": incident.generation,
                "ticket_id": incident.submission.ticket_id,
                "state": incident.submission.state,
                "now": "held by staff"
                if held
                else ("resolved" if incident.resolved_at else "firing"),
                "link": url_for("incidents.page", token=token),
            }
        )
    return page("admin/incidents.html", rows=rows)


@blueprint.get("/captures")
@login_required
def captures() -> Response:
    """Each capturing route's last payloads, newest first."""
    state = bridge()
    routes = {name: route for name, route in state.settings.routes.items() if route.alerts.capture}
    rows = {
        name: [
            {
                "id": c["id"],
                "received_at": c["received_at"],
                "content_type": c["content_type"],
                "size": human_size(len(c["body"].encode())),
                "truncated": c["truncated"],
                "start": c["body"][:120],
            }
            for c in state.store.captures.list(name, limit=route.alerts.capture)
        ]
        for name, route in routes.items()
    }
    return page("admin/captures.html", routes=routes, rows=rows)


@blueprint.get("/captures/<int:capture_id>")
@login_required
def capture(capture_id: int) -> Response:
    """One captured payload, and the ticket(s) it would make on its route now."""
    found, route = _capture(capture_id)
    rendering = bench.render(route, found)
    return page(
        "admin/capture.html",
        capture=found,
        body=bench.pretty(found),
        route=route,
        rendering=rendering,
        tickets=[
            {**draft.to_dict(), "description": without_footer(draft.description or "")}
            for draft in rendering.drafts
        ],
        sent=request.args.getlist("sent"),
    )


@blueprint.post("/captures/<int:capture_id>/send")
@login_required
def send_capture(capture_id: int) -> Response:
    """Send a captured payload through its route again, as a test ticket."""
    check_csrf()
    found, route = _capture(capture_id)
    ids = bench.send_test(route, found, by=f"console:{current_user() or ''}")
    log.info("console: capture %d sent again on route %s as %s", capture_id, route.name, ids)
    return cast(
        Response,
        redirect(url_for("admin.capture", capture_id=capture_id, sent=ids), code=303),
    )


def _capture(capture_id: int) -> tuple[dict[str, Any], Route]:
    """A captured payload and the route it came in on (404 if either is gone)."""
    state = bridge()
    found = state.store.captures.get(capture_id)
    route = state.settings.routes.get(found["route"]) if found else None
    if found is None or route is None:
        abort(404)
    return found, route


@blueprint.get("/spam")
@login_required
def spam() -> Response:
    """GET /admin/spam: the quarantine."""
    state = bridge()
    route = request.args.get("route") or None
    return page(
        "admin/spam.html",
        rows=state.store.quarantine.list(route=route, limit=100),
        total=state.store.quarantine.count(),
        route=route,
        routes=state.settings.routes,
        done=request.args.get("done", ""),
    )


@blueprint.post("/spam/<submission_id>/release")
@login_required
def release(submission_id: str) -> Response:
    """POST: deliver a quarantined submission after all."""
    check_csrf()
    state = bridge()
    held = state.store.quarantine.get(submission_id)
    result = state.store.quarantine.release(submission_id)
    if held is not None and result is not None and state.metrics is not None:
        state.metrics.quarantine(held.route, "released")
    if result is None:
        done = "That submission is no longer held (released or discarded already)."
    elif result.duplicate:
        done = f"Released: it is the same as submission {result.id}, which is delivered once."
    else:
        done = f"Released {result.id}: it will be delivered like any other."
    return cast(Response, redirect(url_for("admin.spam", done=done), code=303))


@blueprint.post("/spam/<submission_id>/discard")
@login_required
def discard(submission_id: str) -> Response:
    """POST: delete a quarantined submission."""
    check_csrf()
    state = bridge()
    held = state.store.quarantine.get(submission_id)
    if state.store.quarantine.discard(submission_id) and held is not None:
        if state.metrics is not None:
            state.metrics.quarantine(held.route, "discarded")
        done = f"Discarded {submission_id}."
    else:
        done = "That submission is no longer held (released or discarded already)."
    return cast(Response, redirect(url_for("admin.spam", done=done), code=303))


@blueprint.route("/erase", methods=["GET", "POST"])
@login_required
def erase() -> Response:
    """Remove what the bridge holds about one person (as ``bridge erase --email``)."""
    done = ""
    email = ""
    if request.method == "POST":
        check_csrf()
        email = (request.form.get("email") or "").strip()
        if "@" not in email:
            done = "Enter the person's email address."
        else:
            report = bridge().store.privacy.erase(email)
            log.info("console erased the data of one person (%s)", describe_erasure("…", report))
            done = describe_erasure(email, report)
    return page("admin/erase.html", done=done, email=email)


@blueprint.get("/routes")
@login_required
def routes() -> Response:
    """GET /admin/routes: each route, paused or not, with its captures."""
    state = bridge()
    effective = {
        name: mask_secrets(dict(route.settings)) for name, route in state.settings.routes.items()
    }
    return page(
        "admin/routes.html",
        routes=state.settings.routes,
        effective=effective,
        proprofs={
            "base_url": state.settings.proprofs.base_url,
            "account_email": state.settings.proprofs.account_email,
            "token": "********",
            "timezone": state.settings.proprofs.timezone,
        },
        store=_masked_url(state.settings.store),
        paused=state.store.pauses.paused(),
    )


@blueprint.post("/routes/<name>/<action>")
@login_required
def pause_or_resume(name: str, action: str) -> Response:
    """Pause or resume one route's delivery (intake goes on either way)."""
    check_csrf()
    state = bridge()
    if name not in state.settings.routes or action not in ("pause", "resume"):
        abort(404)
    if action == "pause":
        state.store.pauses.pause(name, by=f"console:{current_user() or ''}")
    else:
        state.store.pauses.resume(name)
    log.info("console: route %s %sd", name, action)
    return cast(Response, redirect(url_for("admin.routes"), code=303))


def _masked_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)


# The dead-letter views register on the same blueprint.
from . import dead as _dead  # noqa: E402, F401
