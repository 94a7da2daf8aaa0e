"""Value types and checks the config's schemas share: durations, sizes, proxies, names."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate


class Strict(Schema):
    """Unknown keys are errors: a typo must never be silently ignored."""


def timezone_name(value: str) -> None:
    """Check an IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("not a known time zone (e.g. America/Chicago, UTC)") from None


def regex(value: str) -> None:
    """Check a regular expression compiles."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression: {exc}") from None


def module_class(value: str) -> None:
    """Check a ``module:Class`` path's form."""
    if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", value):
        raise ValidationError("must be a dotted path 'module:Class'")


def about(text: str, **more: Any) -> dict[str, Any]:
    """A config key's entry in the generated reference (``bridge.config.reference``): what it is
    for; ``schema`` names the schema of a nested section (of each entry, with ``each``), and
    ``kinds`` the route kinds that take the key."""
    return {"about": text, **more}


CUSTOM_FIELD_ID = validate.Regexp(r"^CF\d+-\d+$", error="custom field ids look like CF007-07")


class Duration(fields.Field[Any]):
    """A duration in seconds, written as a number or with a unit (``5m``, ``2h``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValidationError("must be a duration like 30, 30s, 5m, 2h or 1d") from None
        if seconds < 0:
            raise ValidationError("must not be negative")
        return seconds


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = DURATION.match(str(value))
    if not match:
        raise ValueError("not a duration")
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


class Size(fields.Field[Any]):
    """A size in bytes, written as a number or with a unit (``512KB``, ``10MB``, ``2MiB``)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        match = None if isinstance(value, bool) else SIZE.match(str(value))
        if not match:
            raise ValidationError("must be a size like 500000, 512KB, 10MB or 2MiB")
        size = int(float(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()])
        if size < 1:
            raise ValidationError("must be at least one byte")
        return size


class Proxies(fields.Field[Any]):
    """The proxies in front: how many (``1``), or their addresses (``[10.0.0.0/8]``),
    which also limits whose forwarded headers are believed to those peers."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 10:
                raise ValidationError("must be from 0 to 10, or a list of addresses")
            return value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ValidationError("must be a number of proxies, or a list of their addresses")
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(str(item), strict=False)))
            except ValueError:
                raise ValidationError(f"{item!r} is not an IP address or network") from None
        return tuple(networks)


def limit_string(value: str) -> None:
    """Check a rate limit like ``10/hour``."""
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValidationError("must be a rate like 10/hour or 50 per day") from None


def url_prefix(value: str) -> None:
    """Check an http(s) URL prefix ending in ``/``."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.endswith("/"):
        raise ValidationError(
            "must be an http(s) URL prefix ending with / (e.g. https://www.example.com/)"
        )


SECRET_LENGTH = validate.Length(min=8, error="use a secret of 8 characters or more")
