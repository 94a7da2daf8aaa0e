"""One endpoint, two audiences: a browser navigating gets HTML, a script gets JSON."""

from __future__ import annotations

from werkzeug.datastructures import MIMEAccept


def wants_json(
    mimetype: str, accept: MIMEAccept, requested_with: str | None, fetch_mode: str | None = None
) -> bool:
    """Decide from X-Requested-With, the body's content type, Accept and Sec-Fetch-Mode.

    A form post from a browser navigates (``Sec-Fetch-Mode: navigate``) and asks for
    ``text/html`` explicitly; anything else — ``fetch()``, XHR, curl — gets JSON.
    """
    if (requested_with or "").lower() == "xmlhttprequest":
        return True
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return True
    if fetch_mode and fetch_mode != "navigate":
        return True
    html = max(
        (q for value, q in accept if value in ("text/html", "application/xhtml+xml")), default=0.0
    )
    json_q = max((q for value, q in accept if value == "application/json"), default=0.0)
    return not (html > 0 and html >= json_q)
