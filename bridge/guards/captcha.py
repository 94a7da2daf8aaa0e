"""Server-side CAPTCHA verification: Cloudflare Turnstile, hCaptcha, reCAPTCHA v2/v3.

It fails closed: a timeout, an unreachable verifier or an unreadable answer refuses
the submission. The verify URL is configurable so tests use a local verifier.
"""

from __future__ import annotations

import logging

import requests

from ..config.settings import Captcha
from . import GuardRefusal

log = logging.getLogger(__name__)

VERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
    "recaptcha": "https://www.google.com/recaptcha/api/siteverify",
}
RESPONSE_FIELDS = {
    "turnstile": "cf-turnstile-response",
    "hcaptcha": "h-captcha-response",
    "recaptcha": "g-recaptcha-response",
}
ALL_RESPONSE_FIELDS = frozenset(RESPONSE_FIELDS.values()) | {"captcha"}
#: The providers' scripts, loaded by the hosted form and by the widget.
SCRIPT_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/api.js",
    "hcaptcha": "https://js.hcaptcha.com/1/api.js",
    "recaptcha": "https://www.google.com/recaptcha/api.js",
}


def script_url(captcha: Captcha) -> str:
    """The provider's browser script."""
    return captcha.script_url or SCRIPT_URLS[captcha.provider]


def widget_view(captcha: Captcha) -> dict[str, str]:
    """What the widget needs to render the challenge and send its answer (nothing secret)."""
    return {
        "provider": captcha.provider,
        "site_key": captcha.site_key,
        "script": script_url(captcha),
        # reCAPTCHA v3 scores every post invisibly; the others show a challenge to solve.
        "mode": "score"
        if captcha.provider == "recaptcha" and captcha.min_score is not None
        else "challenge",
        "field": RESPONSE_FIELDS[captcha.provider],
    }


def refuse(message: str) -> GuardRefusal:
    """The refusal for a failed challenge."""
    return GuardRefusal(422, "captcha_failed", message, field="captcha")


def verify(
    captcha: Captcha, token: str | None, remote_ip: str | None, session: requests.Session
) -> None:
    """Ask the provider whether ``token`` is a solved challenge; raise a refusal if not."""
    if not token:
        raise refuse("Please complete the CAPTCHA.")
    url = captcha.verify_url or VERIFY_URLS[captcha.provider]
    data = {"secret": captcha.secret, "response": token}
    if remote_ip:
        data["remoteip"] = remote_ip
    try:
        response = session.post(url, data=data, timeout=captcha.timeout)
        answer = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("CAPTCHA verification unavailable (%s); refusing", type(exc).__name__)
        raise refuse("The CAPTCHA could not be checked right now; please try again.") from None
    if not isinstance(answer, dict) or answer.get("success") is not True:
        raise refuse("The CAPTCHA was not solved; please try again.")
    if captcha.min_score is not None:
        score = answer.get("score")
        if not isinstance(score, int | float) or score < captcha.min_score:
            raise refuse("The CAPTCHA check was not confident enough; please try again.")
