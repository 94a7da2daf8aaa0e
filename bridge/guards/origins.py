"""Allowed origins: the Origin header (else the Referer's origin) against the route's list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from werkzeug.datastructures import Headers

CORS_MAX_AGE = "600"


def origin_of(url: str) -> str | None:
    """The origin (scheme://host[:port]) of a URL, or ``""``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_origin(headers: Mapping[str, str] | Headers) -> str | None:
    """The origin a browser says it posts from: Origin, falling back to Referer."""
    origin = headers.get("Origin")
    if origin and origin != "null":
        return origin_of(origin)
    referer = headers.get("Referer")
    return origin_of(referer) if referer else None


def allowed(origin: str | None, configured: Iterable[str], own: str) -> bool:
    """True when the route has no list, or the origin is listed or is the bridge itself."""
    listed = [o.lower() for o in configured]
    if not listed:
        return True
    return origin is not None and (origin in listed or origin == own.lower())


def cors_headers(origin: str, *, preflight: bool = False) -> dict[str, str]:
    """The CORS headers that let ``origin`` post."""
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers.update(
            {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, X-Requested-With, Accept",
                "Access-Control-Max-Age": CORS_MAX_AGE,
            }
        )
    return headers
