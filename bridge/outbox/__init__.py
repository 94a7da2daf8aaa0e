"""The durable outbox: tables, store (enqueue/claim/complete), retry policy, worker, reconcile."""

from .records import EnqueueResult, Outcome, StoreUnavailable, Submission
from .retry import RetryPolicy
from .store import SubmissionStore
from .tables import STATES

__all__ = [
    "STATES",
    "EnqueueResult",
    "Outcome",
    "RetryPolicy",
    "StoreUnavailable",
    "Submission",
    "SubmissionStore",
]
