"""The durable outbox: tables, store (enqueue/claim/complete), retry policy, worker, reconcile."""

from .retry import RetryPolicy
from .store import EnqueueResult, StoreUnavailable, Submission, SubmissionStore
from .tables import STATES

__all__ = [
    "STATES",
    "EnqueueResult",
    "RetryPolicy",
    "StoreUnavailable",
    "Submission",
    "SubmissionStore",
]
