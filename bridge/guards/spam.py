"""Honeypot and the signed time token of the hosted form."""

from __future__ import annotations

import time

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from . import GuardRefusal

TIME_FIELD = "_ts"


class TimeToken:
    """A signed "form shown at" stamp: too fast is a bot, too old is a stale page."""

    def __init__(self, secret: str) -> None:
        self.signer = TimestampSigner(secret, salt="bridge-form-time")

    def __repr__(self) -> str:
        return "TimeToken()"

    def issue(self, route: str) -> str:
        """A signed token of when the form was shown."""
        return self.signer.sign(route.encode()).decode()

    def verify(
        self, token: str | None, route: str, min_seconds: float | None, max_age: float
    ) -> None:
        """Refuse a post sooner than ``min_seconds`` or older than ``max_age``."""
        if not token:
            raise GuardRefusal(
                422,
                "validation_failed",
                "This form could not be verified; please reload the page and send it again.",
                field="_form",
                catch="time token: missing",
            )
        try:
            value, signed_at = self.signer.unsign(
                token, max_age=int(max_age), return_timestamp=True
            )
        except SignatureExpired:
            raise GuardRefusal(
                422,
                "validation_failed",
                "This page was open too long; please reload it and send your message again.",
                field="_form",
            ) from None
        except BadSignature:
            raise GuardRefusal(
                422,
                "validation_failed",
                "This form could not be verified; please reload the page and send it again.",
                field="_form",
                catch="time token: forged",
            ) from None
        if value.decode() != route:
            raise GuardRefusal(
                422,
                "validation_failed",
                "This form belongs to another page; please reload it.",
                field="_form",
            )
        age = time.time() - signed_at.timestamp()
        if min_seconds and age < min_seconds:
            raise GuardRefusal(
                422,
                "too_fast",
                "That was quicker than a person can type; please wait a moment and send it again.",
                field="_form",
                catch=f"time token: sent {age:.1f} s after the page was shown",
            )


def honeypot_filled(value: object) -> bool:
    """A person never sees the honeypot field; anything in it means a bot."""
    return (isinstance(value, str) and value.strip() != "") or (
        isinstance(value, list) and any(str(v).strip() for v in value)
    )
