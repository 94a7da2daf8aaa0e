"""``/forms/<route>``: the hosted form, and posts from HTML forms and ``fetch``.

Order of checks after the size limit (issue contract): allowed origins, rate
limits, honeypot, time token, CAPTCHA; then the route's schema and the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from .. import attachments
from ..attachments import Upload
from ..config.settings import Route
from ..guards import GuardRefusal, captcha, origins
from ..guards.spam import TIME_FIELD, TimeToken, honeypot_filled
from ..outbox.records import new_submission_id
from .accept import accept
from .answers import Rejected, json_response, observe, observed
from .body import check_declared_size, parse_json, receive_body, too_large
from .negotiation import wants_json
from .scripts import Script
from .state import bridge

log = logging.getLogger(__name__)
blueprint = Blueprint("forms", __name__)
_captcha_session = requests.Session()

INPUT_TYPES = {
    "email": "email",
    "phone": "tel",
    "url": "url",
    "integer": "number",
    "number": "number",
    "date": "date",
    "datetime": "datetime-local",
}
AUTOCOMPLETE = {"name": "name", "email": "email", "phone": "tel", "company": "organization"}
TEXT = {
    "title": "Contact us",
    "submit": "Send",
    "required": "required",
    "choose": "Choose…",
    "errors_summary": "Please correct the following:",
    "honeypot": "Leave this empty",
    "thanks_title": "Thank you",
    "thanks_body": "Your message has been received. We will get back to you soon.",
    "back": "Back",
    "error_title": "Something went wrong",
}
#: The element each provider's script turns into its challenge on the hosted form.
CAPTCHA_CLASSES = {"turnstile": "cf-turnstile", "hcaptcha": "h-captcha", "recaptcha": "g-recaptcha"}


def origin_of(url: str) -> str:
    """The origin of a URL (scheme://host[:port]), or ``""``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def form_route(name: str, kinds: tuple[str, ...] = ("form",)) -> Route:
    """The route called ``name`` if it is of ``kinds``; 404 otherwise."""
    route = bridge().settings.routes.get(name)
    if route is None or route.kind not in kinds:
        raise Rejected(404, "unknown_route", f"There is no form named {name!r}.")
    return route


def texts(route: Route) -> dict[str, Any]:
    """The form's texts: the defaults under the route's own."""
    merged: dict[str, Any] = {**TEXT, **route.page.messages}
    merged["choices"] = {
        k[len("choice.") :]: v for k, v in route.page.messages.items() if k.startswith("choice.")
    }
    return merged


def translate(route: Route, errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Field messages in the page's language (page.messages maps English text to another)."""
    table = route.page.messages
    return {name: [table.get(m, m) for m in messages] for name, messages in errors.items()}


def time_tokens() -> TimeToken:
    """The signer of the forms' time tokens."""
    return TimeToken(bridge().signing_key)


def render_form(
    route: Route,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    status: int = 200,
    form_errors: list[str] | None = None,
) -> Response:
    """The hosted form, with what the person typed and what was wrong."""
    text = texts(route)
    errors = translate(route, errors or {})
    cap = route.guards.captcha
    captcha_view = None
    script_src = "https:"
    if cap is not None:
        script = captcha.script_url(cap)
        captcha_view = {
            "site_key": cap.site_key,
            "css_class": CAPTCHA_CLASSES[cap.provider],
            "script": script,
        }
        if not script.startswith("https:"):  # a configured stand-in or mirror over http
            script_src += " " + origin_of(script)
    html = render_template(
        "form.html",
        route=route,
        fields=route.fields,
        values=values or {},
        errors=errors,
        form_errors=(form_errors or []) + errors.get("_form", []) + errors.get("_schema", []),
        title=route.page.title or text["title"],
        intro=route.page.intro,
        submit=route.page.submit or text["submit"],
        lang=route.page.lang,
        text=text,
        action=url_for("forms.submit", name=route.name),
        input_types=INPUT_TYPES,
        autocomplete=AUTOCOMPLETE,
        honeypot=route.guards.honeypot,
        time_token=time_tokens().issue(route.name) if route.guards.min_seconds else None,
        captcha=captcha_view,
        file_limits=_file_limits(route),
        status_message=text["errors_summary"] if errors or form_errors else "",
    )
    return page(html, status, script_src=script_src)


def page(html: str, status: int = 200, *, script_src: str = "'self'") -> Response:
    """An HTML page of the forms (the form, thank-you and error pages), with the one CSP
    they share: scripts only from the bridge (and a form's CAPTCHA), no framing elsewhere."""
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; style-src 'unsafe-inline'; script-src {script_src}; "
        "frame-src https:; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _file_limits(route: Route) -> dict[str, Any] | None:
    """What the form's file inputs say and accept (the server checks again, by content)."""
    if not route.file_fields:
        return None
    limits = route.attachments
    hint = texts(route).get(
        "files_hint", "{types}; up to {count} files, {size} each, {total} in all."
    )
    return {
        "max_files": limits.max_files,
        "accept": ",".join(limits.types),
        "hint": hint.format(
            types=limits.allowed_names(),
            count=limits.max_files,
            size=attachments.human_size(limits.max_size),
            total=attachments.human_size(limits.max_total),
        ),
    }


@blueprint.route("/forms/<name>", methods=["GET"], provide_automatic_options=False)
def show(name: str) -> Response:
    """GET /forms/<route>: the hosted form page."""
    try:
        route = form_route(name)
    except Rejected as rejected:
        return _message_page(rejected.status, TEXT["error_title"], rejected.message)
    return render_form(route)


@blueprint.get("/forms/<name>/token")
def token(name: str) -> Response:
    """A fresh time token for a form hosted elsewhere (put it in a hidden ``_ts`` field)."""
    try:
        route = form_route(name, ("form", "widget"))
    except Rejected as rejected:
        return rejected.response()
    # Anyone may read a token (it is no secret: only a stamp of when it was asked for); a
    # route that lists origins lets only those pages read it, as it lets only them post.
    headers = _cors_for(route) if route.guards.origins else {"Access-Control-Allow-Origin": "*"}
    headers["Cache-Control"] = "no-store"
    return json_response(
        {"token": time_tokens().issue(route.name), "field": TIME_FIELD}, 200, headers
    )


@blueprint.get("/forms.js")
def embed_script() -> Response:
    """GET /forms.js: gives the bridge's forms on other sites their time token."""
    state: Script = current_app.extensions["bridge_forms_script"]
    return state.response()


@blueprint.get("/forms/<name>/thanks")
def thanks(name: str) -> Response:
    """GET /forms/<route>/thanks: the thank-you page."""
    try:
        route = form_route(name)
    except Rejected as rejected:
        return _message_page(rejected.status, TEXT["error_title"], rejected.message)
    text = texts(route)
    html = render_template(
        "thanks.html",
        title=text["thanks_title"],
        body=route.page.thanks or text["thanks_body"],
        lang=route.page.lang,
        back=url_for("forms.show", name=route.name),
        back_text=text["back"],
    )
    return page(html)


@blueprint.route("/forms/<name>", methods=["OPTIONS"])
def preflight(name: str) -> Response:
    """OPTIONS: CORS for a page allowed to post here."""
    return cors_preflight(name, ("form",))


def cors_preflight(name: str, kinds: tuple[str, ...]) -> Response:
    """Answer a CORS preflight: allowed origins get the headers, others a bare 403."""
    route = bridge().settings.routes.get(name)
    origin = origins.request_origin(request.headers)
    if route is None or route.kind not in kinds:
        return Response(status=404)
    if (
        origin is None
        or not route.guards.origins
        or not origins.allowed(origin, route.guards.origins, _own_origin())
    ):
        return Response(status=403)
    return Response(status=204, headers=origins.cors_headers(origin, preflight=True))


def _own_origin() -> str:
    return request.host_url.rstrip("/").lower()


def _cors_for(route: Route) -> dict[str, str]:
    origin = origins.request_origin(request.headers)
    if (
        origin
        and route.guards.origins
        and origins.allowed(origin, route.guards.origins, _own_origin())
    ):
        return origins.cors_headers(origin)
    return {}


def client_ip() -> str:
    """The client's address, through the trusted proxies only."""
    return request.remote_addr or "unknown"


def check_rate(route: Route) -> None:
    """The route's rate limits: 429 before a byte of the body is read."""
    guards = route.guards
    if guards.per_ip or guards.per_route:
        bridge().rate_limits.check(route.name, client_ip(), guards.per_ip, guards.per_route)


def run_guards(route: Route, fields: Mapping[str, Any]) -> str | None:
    """Honeypot, time token, CAPTCHA (origins and rate limits come first, before the body).

    Answers what caught a bot, or ``None``. A catch is answered as if accepted: without
    ``spam.keep`` nothing is stored, with it the submission is quarantined.
    """
    guards = route.guards
    if guards.honeypot and honeypot_filled(fields.get(guards.honeypot)):
        log.info("honeypot filled on route %s; pretending success", route.name)
        return "honeypot: filled"
    if guards.min_seconds:
        raw = fields.get(TIME_FIELD)
        try:
            time_tokens().verify(
                raw if isinstance(raw, str) else None,
                route.name,
                guards.min_seconds,
                guards.max_age,
            )
        except GuardRefusal as refusal:
            if guards.keep and refusal.catch:
                log.info("time token caught a post on route %s; quarantining it", route.name)
                return refusal.catch
            raise
    if guards.captcha is not None:
        answer = fields.get(captcha.RESPONSE_FIELDS[guards.captcha.provider]) or fields.get(
            "captcha"
        )
        captcha.verify(
            guards.captcha,
            answer if isinstance(answer, str) else None,
            client_ip(),
            _captcha_session,
        )
    return None


def read_fields(route: Route) -> dict[str, Any]:
    """The posted fields in their order; lists only for ``list`` fields; files refused."""
    body = receive_body(route)
    try:
        if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
            body = parse_json(body)
            if not isinstance(body, dict):
                raise Rejected(400, "malformed_json", "Send the form as a JSON object.")
            return body
        if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise Rejected(
                415,
                "unsupported_media_type",
                "Send the form as application/x-www-form-urlencoded, multipart/form-data or JSON.",
            )
        form: MultiDict[str, str] = request.form
        refuse_undeclared_files(route)
    except RequestEntityTooLarge:
        raise too_large(route) from None
    fields: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key in form:  # MultiDict keeps the posted order
        values = form.getlist(key)
        spec = route.fields.get(key)
        if spec is not None and spec.type == "list":
            if len(values) == 1 and "\n" in values[0]:  # a textarea, one item per line
                values = [v.strip() for v in values[0].splitlines() if v.strip()]
            fields[key] = values
        elif len(values) > 1:
            errors[key] = ["Send one value for this field."]
        elif values[0] == "" and spec is not None and not spec.required:
            continue  # an HTML form sends empty inputs as "": an optional field left blank
        else:
            fields[key] = values[0]
    if errors:
        raise Rejected(422, "validation_failed", "Some fields need attention.", errors=errors)
    return fields


def refuse_undeclared_files(route: Route) -> None:
    """A file sent on a field that is not a ``file`` field is a 422 naming the field."""
    for name in request.files:
        spec = route.fields.get(name)
        if spec is not None and spec.type == "file":
            continue
        if not any(f.filename for f in request.files.getlist(name)):
            continue  # an empty file input: nothing was attached
        raise Rejected(
            422,
            "validation_failed",
            "Some fields need attention.",
            errors={
                name: [
                    "File uploads are not accepted on this field; "
                    "please paste the text or share a link instead."
                ]
            },
        )


def read_uploads(route: Route) -> list[Upload]:
    """The files posted on the route's ``file`` fields, each typed by its content, checked
    against the route's limits: 413 for a size, 422 for a type, a count or a missing
    required file, every message naming the file and the limit."""
    uploads: list[Upload] = []
    for name in route.file_fields:
        for storage in request.files.getlist(name):
            data = storage.read()
            if not storage.filename and not data:
                continue  # a file input left empty
            kind = attachments.sniff(data) or ""
            uploads.append(Upload(name, attachments.safe_name(storage.filename, kind), kind, data))
    missing = {
        name: ["Attach a file."]
        for name in route.file_fields
        if route.fields[name].required and not any(u.field == name for u in uploads)
    }
    if missing:
        raise Rejected(422, "validation_failed", "Some fields need attention.", errors=missing)
    problem = attachments.check(route.attachments, uploads)
    if problem is not None:
        status, errors = problem
        first = next(iter(errors.values()))[0]
        code = {413: "file_too_large", 415: "file_type_refused"}.get(status, "file_refused")
        raise Rejected(status, code, first, errors=errors)
    return uploads


def reserved(route: Route) -> set[str]:
    """Field names the bridge itself uses on this form (never data)."""
    names = {"_next", TIME_FIELD, *captcha.ALL_RESPONSE_FIELDS}
    if route.guards.honeypot:
        names.add(route.guards.honeypot)
    return names


def safe_next(route: Route, target: object) -> str | None:
    """A ``_next`` URL only if it falls under one of the route's allowed prefixes."""
    if not isinstance(target, str) or not target or not route.page.allow_next:
        return None
    if any(c in target for c in "\r\n\t\\") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    for prefix in route.page.allow_next:
        allowed = urlsplit(prefix)
        if (parts.scheme, parts.netloc.lower()) == (allowed.scheme, allowed.netloc.lower()) and (
            parts.path.startswith(allowed.path)
        ):
            return target
    return None


@blueprint.route("/forms/<name>", methods=["POST"], provide_automatic_options=False)
def submit(name: str) -> Response:
    """POST /forms/<route>: a form post; 303 for browsers, JSON for scripts."""
    as_json = wants_json(
        request.mimetype,
        request.accept_mimetypes,
        request.headers.get("X-Requested-With"),
    )
    route: Route | None = None
    fields: dict[str, Any] = {}
    try:
        route = form_route(name)
        check_declared_size(route)  # before anything else: a body too large is not read
        check_origin(route)
        check_rate(route)
        fields = read_fields(route)
        caught = run_guards(route, fields)
        if caught and not route.guards.keep:
            return observed(
                route, _answer_success(route, new_submission_id(), as_json, fields), "spam"
            )
        uploads = read_uploads(route) if route.file_fields else []
        payload = {k: v for k, v in fields.items() if k not in reserved(route)}
        try:
            result = accept(
                route,
                payload,
                meta={"origin": origins.request_origin(request.headers) or ""},
                double_submit=True,
                caught=caught,
                uploads=uploads,
            )
        except Rejected:
            if caught:  # a bot's post that is not even a valid form: dropped, as without keep
                return observed(
                    route, _answer_success(route, new_submission_id(), as_json, fields), "spam"
                )
            raise
        return observed(route, _answer_success(route, result.id, as_json, fields), result.outcome)
    except GuardRefusal as refusal:
        errors = {refusal.field: [refusal.message]} if refusal.field else {}
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
        rejected = Rejected(
            refusal.status, refusal.code, refusal.message, errors=errors, headers=headers
        )
        observe(route, "rejected", rejected.code)
        return _answer_error(route, rejected, as_json, fields)
    except Rejected as rejected:
        observe(route, "rejected", rejected.code)
        return _answer_error(route, rejected, as_json, fields)


def check_origin(route: Route) -> None:
    """First guard, before the body is parsed: the post must come from an allowed site."""
    origin = origins.request_origin(request.headers)
    if not origins.allowed(origin, route.guards.origins, _own_origin()):
        raise GuardRefusal(
            403, "origin_not_allowed", "Submissions are not accepted from this site."
        )


def _answer_success(
    route: Route, submission_id: str, as_json: bool, fields: Mapping[str, Any]
) -> Response:
    if as_json:
        return json_response({"status": "accepted", "id": submission_id}, 202, _cors_for(route))
    target = (
        safe_next(route, fields.get("_next"))
        or route.page.success_url
        or url_for("forms.thanks", name=route.name)
    )
    return cast(Response, redirect(target, code=303))


def _answer_error(
    route: Route | None, rejected: Rejected, as_json: bool, fields: Mapping[str, Any]
) -> Response:
    if route is None:  # no such form
        if as_json:
            return rejected.response()
        return _message_page(rejected.status, TEXT["error_title"], rejected.message)
    if as_json:
        response = rejected.response()
        for key, value in _cors_for(route).items():
            response.headers[key] = value
        return response
    if rejected.status == 422 or (rejected.status == 413 and rejected.errors):
        # The form again, with what needs attention and what was typed (a file input
        # cannot be filled again by a page: the files are chosen anew).
        if route.page.error_url:
            return cast(Response, redirect(route.page.error_url, code=303))
        values = {k: v for k, v in fields.items() if k in route.fields}
        response = render_form(
            route,
            values=values,
            errors=rejected.errors,
            status=rejected.status,
            form_errors=[] if rejected.errors else [rejected.message],
        )
        return response
    answer = _message_page(
        rejected.status,
        texts(route)["error_title"],
        rejected.message,
        back=url_for("forms.show", name=route.name),
        lang=route.page.lang,
    )
    for key, value in rejected.headers.items():
        answer.headers[key] = value
    return answer


def _message_page(
    status: int, title: str, message: str, *, back: str | None = None, lang: str = "en"
) -> Response:
    html = render_template(
        "message.html", title=title, message=message, back=back, back_text=TEXT["back"], lang=lang
    )
    return page(html, status)
