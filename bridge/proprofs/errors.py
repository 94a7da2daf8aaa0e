"""The ProProfs error tree: one root, one class per thing a caller does differently."""

from __future__ import annotations


class ProProfsError(Exception):
    """Root of every error the ProProfs client raises.

    Carries the HTTP status (``None`` when no response arrived) and the API's
    ``description`` text. Never carries the token (PROPROFS_API C3).
    """

    #: Whether the delivery queue may try the same call again later.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        description: str = "",
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.description = description
        #: The call ran out of time (retry no sooner than the policy's minimum after a timeout).
        self.timed_out = timed_out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r})"


class AuthenticationError(ProProfsError):
    """The account email or token was refused (C4). Permanent until the config changes."""


class InvalidRequestError(ProProfsError):
    """ProProfs refused the request as malformed or invalid. Permanent for this payload."""


class TransientError(ProProfsError):
    """A failure worth retrying: connection refused, 5xx, a timeout before sending (A3)."""

    retryable = True


class RateLimitedError(TransientError):
    """HTTP 429; ``retry_after`` is the server's hint in seconds, if it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        description: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, description=description)
        self.retry_after = retry_after


class AmbiguousError(ProProfsError):
    """The create was sent but its outcome is unknown: the ticket may exist.

    The caller must reconcile through the list API before creating again.
    """
