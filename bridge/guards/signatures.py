"""Who sent this webhook: bearer, basic, URL token, HMAC signatures and AWS SNS signatures.

Every verifier is a pure function over (headers, raw body, settings, now) that raises
:class:`GuardRefusal` (401) and never anything else; comparisons run in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..signing import standard_signature
from . import GuardRefusal

TOLERANCE = 300.0  # seconds a signed timestamp may be off (Standard Webhooks: 5 minutes)


def refuse(message: str) -> GuardRefusal:
    """The 401 for wrong or missing credentials."""
    return GuardRefusal(401, "unauthorized", message)


def _equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def _hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def bearer(headers: Mapping[str, str], expected: str) -> None:
    """Check ``Authorization: Bearer``, in constant time."""
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _equal(given.strip(), expected):
        raise refuse("Missing or wrong bearer token.")


def basic(headers: Mapping[str, str], username: str, password: str) -> None:
    """Check HTTP basic credentials, in constant time."""
    scheme, _, encoded = headers.get("Authorization", "").partition(" ")
    try:
        user, _, given = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        user, given = "", ""
    ok_user = _equal(user, username)
    ok_password = _equal(given, password)
    if scheme.lower() != "basic" or not (ok_user and ok_password):
        raise refuse("Missing or wrong username and password.")


def query_token(args: Mapping[str, str], param: str, expected: str) -> None:
    """Check a token in the URL, in constant time."""
    if not _equal(args.get(param, ""), expected):
        raise refuse(f"Missing or wrong ?{param}= token.")


def _timestamp(value: str | None, now: float, tolerance: float) -> str:
    if not value or not re.fullmatch(r"\d{1,12}", value.strip()):
        raise refuse("The signature timestamp is missing or malformed.")
    if abs(now - int(value)) > tolerance:
        raise refuse("The signature timestamp is too old (or in the future); replays are refused.")
    return value.strip()


def grafana(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    header: str = "X-Grafana-Alerting-Signature",
    timestamp_header: str | None = None,
    tolerance: float = TOLERANCE,
) -> None:
    """Grafana: hex HMAC-SHA256 of ``timestamp:body`` (or of the body without a timestamp)."""
    given = headers.get(header, "").strip()
    if not given:
        raise refuse(f"Missing {header}.")
    signed = body
    if timestamp_header:
        stamp = _timestamp(headers.get(timestamp_header), now, tolerance)
        signed = stamp.encode() + b":" + body
    if not _equal(given.lower(), _hex_hmac(secret, signed)):
        raise refuse("The Grafana signature does not match.")


def sentry(headers: Mapping[str, str], body: bytes, secret: str, **_: Any) -> None:
    """Sentry: ``Sentry-Hook-Signature`` = hex HMAC-SHA256 of the body with the client secret."""
    given = headers.get("Sentry-Hook-Signature", "").strip()
    if not given:
        raise refuse("Missing Sentry-Hook-Signature.")
    if not _equal(given.lower(), _hex_hmac(secret, body)):
        raise refuse("The Sentry signature does not match.")


def pagerduty(headers: Mapping[str, str], body: bytes, secret: str, **_: Any) -> None:
    """PagerDuty v3: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`` (rotation adds more)."""
    given = headers.get("X-PagerDuty-Signature", "")
    expected = "v1=" + _hex_hmac(secret, body)
    candidates = [part.strip() for part in given.split(",") if part.strip()]
    if not candidates:
        raise refuse("Missing X-PagerDuty-Signature.")
    matched = False
    for candidate in candidates:  # check them all: no early exit on a match
        matched |= _equal(candidate.lower(), expected)
    if not matched:
        raise refuse("The PagerDuty signature does not match.")


def standard_webhooks(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = TOLERANCE,
) -> None:
    """Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

    A repeated ``webhook-id`` is not refused here: it is the sender's idempotency key,
    answered as a duplicate by the intake once its signature and timestamp check out.
    """
    message_id = headers.get("webhook-id", "").strip()
    if not message_id or len(message_id) > 255:
        raise refuse("Missing webhook-id.")
    stamp = _timestamp(headers.get("webhook-timestamp"), now, tolerance)
    expected = standard_signature(secret, message_id, stamp, body)
    matched = False
    for entry in headers.get("webhook-signature", "").split():
        version, _, signature = entry.partition(",")
        if version == "v1":
            matched |= _equal(signature, expected)
    if not matched:
        raise refuse("The webhook signature does not match.")


HMAC_SCHEMES: dict[str, Callable[..., None]] = {
    "grafana": grafana,
    "sentry": sentry,
    "pagerduty": pagerduty,
    "standard": standard_webhooks,
}

# --- AWS SNS ---------------------------------------------------------------------------------

#: ``sns.<region>.amazonaws.com`` (``.com.cn`` in China): a region is ``us-east-1``,
#: ``us-gov-west-1``, ``cn-north-1``…; ``sns.s3.amazonaws.com`` is not one.
SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}\.amazonaws\.com(\.cn)?$")
SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def sns_url_allowed(url: object) -> bool:
    """As AWS advises: https, an ``sns.<region>.amazonaws.com`` host, no tricks."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.port is None
        and not parts.username
        and bool(SNS_HOST.match(parts.hostname or ""))
    )


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The text AWS signed, for a message of any SNS type."""
    kind = message.get("Type")
    if kind not in SNS_FIELDS:
        raise refuse("Not an SNS message type.")
    lines = []
    for key in SNS_FIELDS[str(kind)]:
        value = message.get(key)
        if value is None:
            if key == "Subject":
                continue
            raise refuse(f"The SNS message has no {key}.")
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode()


def sns_fresh(message: Mapping[str, Any], max_age: float, now: float | None = None) -> None:
    """Refuse a message whose ``Timestamp`` is older than ``max_age`` seconds (a replay),
    more than five minutes ahead, or missing."""
    now = time.time() if now is None else now
    raw = str(message.get("Timestamp") or "")
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise refuse("The SNS message has no readable Timestamp.") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    age = now - stamp.timestamp()
    if age > max_age or age < -TOLERANCE:
        raise refuse(
            f"The SNS message's Timestamp {raw} is outside the {max_age:g}-second window; "
            "replays are refused."
        )


def sns(message: Any, fetch_certificate: Callable[[str], bytes]) -> None:
    """Verify an SNS message's signature (SignatureVersion 1: SHA1, 2: SHA256)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    if not isinstance(message, Mapping):
        raise refuse("Not an SNS message.")
    version = message.get("SignatureVersion")
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(version))
    if algorithm is None:
        raise refuse("Unsupported SNS SignatureVersion.")
    cert_url = message.get("SigningCertURL") or message.get("SigningCertUrl")
    if not sns_url_allowed(cert_url) or not urlsplit(str(cert_url)).path.endswith(".pem"):
        raise refuse("The SNS signing certificate URL is not an AWS SNS https .pem URL.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise refuse("The SNS signature is not base64.") from None
    try:
        certificate = x509.load_pem_x509_certificate(fetch_certificate(str(cert_url)))
    except Exception:  # an unreachable or unreadable certificate: refuse, never fail open
        raise refuse("The SNS signing certificate could not be loaded.") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise refuse("The SNS signing certificate does not hold an RSA key.")
    try:
        key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise refuse("The SNS signature does not match.") from None


def verify_credentials(
    auth: Mapping[str, Any], *, headers: Mapping[str, str], args: Mapping[str, str]
) -> None:
    """The checks that need no body (bearer, basic, URL token): run before it is read."""
    if auth.get("bearer"):
        bearer(headers, str(auth["bearer"]))
    if auth.get("basic"):
        basic(headers, str(auth["basic"]["username"]), str(auth["basic"]["password"]))
    if auth.get("query"):
        query_token(args, str(auth["query"].get("param", "token")), str(auth["query"]["token"]))


def verify_signature(
    auth: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> None:
    """The route's HMAC scheme, over the body read within the route's limit."""
    spec = auth.get("hmac")
    if not spec:
        return
    now = time.time() if now is None else now
    scheme = HMAC_SCHEMES[spec["scheme"]]
    options: dict[str, Any] = {"now": now, "tolerance": spec.get("tolerance", TOLERANCE)}
    if spec["scheme"] == "grafana":
        options["header"] = spec.get("header") or "X-Grafana-Alerting-Signature"
        options["timestamp_header"] = spec.get("timestamp_header")
    scheme(headers, body, str(spec["secret"]), **options)
