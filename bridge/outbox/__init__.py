"""The durable outbox: tables, store (enqueue/claim/complete), retry policy, worker, reconcile."""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .records import STATES, EnqueueResult, Outcome, StoreUnavailable, Submission
    from .retry import RetryPolicy
    from .store import SubmissionStore

__getattr__ = exports(
    __name__,
    {
        "EnqueueResult": ".records",
        "Outcome": ".records",
        "StoreUnavailable": ".records",
        "Submission": ".records",
        "RetryPolicy": ".retry",
        "SubmissionStore": ".store",
        "STATES": ".records",
    },
)

__all__ = [
    "STATES",
    "EnqueueResult",
    "Outcome",
    "RetryPolicy",
    "StoreUnavailable",
    "Submission",
    "SubmissionStore",
]
