"""One endpoint, two audiences: a browser posting a form gets HTML, a script gets JSON.

The convention our users' pages are written for is Formspree's answer matrix:

* ``X-Requested-With: XMLHttpRequest`` → JSON;
* an ``Accept`` that prefers JSON (``application/json`` ranked above any HTML type) → JSON;
* a JSON body, unless its ``Accept`` prefers HTML → JSON;
* everything else — an urlencoded or multipart post with a browser's ``Accept``, with
  ``*/*``, or with no ``Accept`` at all — is a browser post: 303 to the thank-you page.
"""

from __future__ import annotations

from werkzeug.datastructures import MIMEAccept

HTML_TYPES = ("text/html", "application/xhtml+xml")


def wants_json(mimetype: str, accept: MIMEAccept, requested_with: str | None) -> bool:
    """Whether this post is answered in JSON (else: a redirect or an HTML page)."""
    if (requested_with or "").lower() == "xmlhttprequest":
        return True
    html_q = max((q for value, q in accept if value in HTML_TYPES), default=0.0)
    json_q = max((q for value, q in accept if value == "application/json"), default=0.0)
    if json_q > html_q:
        return True
    json_body = mimetype == "application/json" or mimetype.endswith("+json")
    prefers_html = html_q > 0 and html_q >= json_q
    return json_body and not prefers_html
