"""Guards: small checks between the HTTP edge and the outbox (origins, rates, spam, CAPTCHA)."""

from __future__ import annotations


class GuardRefusal(Exception):
    """A guard said no; ``status`` and ``code`` are the documented answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        catch: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        #: Set when the refusal caught a likely bot (not a person's mistake): with
        #: ``spam.keep`` the submission is quarantined under this reason instead.
        self.catch = catch
