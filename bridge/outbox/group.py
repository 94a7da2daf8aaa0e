"""Group commit: writes that arrive while another is committing share the next transaction."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from .records import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Write(Generic[T]):
    """One write waiting for, or in, a group commit."""

    __slots__ = ("done", "error", "leads", "result", "row", "waiting", "work")

    def __init__(self, work: Callable[[Connection], T], row: tuple[Any, ...] | None) -> None:
        self.work = work
        #: A submission row to insert (``work`` inserts it alone when it cannot share).
        self.row = row
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self.leads = False
        #: A writer that does not lead waits on this lock until its write is committed or
        #: it is to lead: released once, by the leader (a bare lock: the cheapest wake-up
        #: there is). A writer that leads at once never waits, and gets none.
        self.waiting: threading.Lock | None = None


class GroupCommit:
    """Writes that arrive while another is committing share the next transaction.

    The first writer leads: it commits everything queued so far, then hands the lead on.
    Nobody returns before the commit that holds their write; when a shared transaction
    fails for one write's own reason, the others go again alone, so every write must be
    safe to run again after a rollback. Why it is built this way: docs/benchmarks.md.
    """

    def __init__(
        self,
        transaction: Callable[[], Any],
        insert_rows: Callable[[list[tuple[Any, ...]]], list[int]] | None = None,
        *,
        gather: Callable[[], float] | None = None,
        turn: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ) -> None:
        self._transaction = transaction
        self._insert_rows = insert_rows
        #: How long a leader waits for more writes before it commits, asked each time
        #: (see SubmissionStore).
        self._gather = gather
        self._turn = turn or contextlib.nullcontext
        self._lock = threading.Lock()
        self._queue: list[_Write[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T], row: tuple[Any, ...] | None = None) -> T:
        """Run ``work`` in the next shared transaction; its result once committed."""
        write: _Write[T] = _Write(work, row)
        with self._lock:
            self._queue.append(write)
            if not self._leading:
                self._leading = write.leads = True
            else:
                write.waiting = waiting = threading.Lock()
                waiting.acquire()
        if not write.leads:
            waiting.acquire()  # until committed, or handed the lead
        if not write.done:
            self._lead(write)
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[no-any-return]

    def _lead(self, own: _Write[Any]) -> None:
        wait = self._gather() if self._gather is not None else 0.0
        if wait > 0:
            time.sleep(wait)  # the writes that come meanwhile share this commit
        batch: list[_Write[Any]] = []
        try:
            with self._turn():
                with self._lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        except BaseException as exc:
            if not batch:  # no turn to write in: every write queued so far fails alike
                with self._lock:
                    batch, self._queue = self._queue, []
                for write in batch:
                    write.error = exc
            else:  # the turn failed to let go after the commit: what it holds is committed
                log.warning("the write turn was not let go cleanly: %s", type(exc).__name__)
        finally:
            for done in batch:
                done.done = True
                if done.waiting is not None and done is not own:
                    done.waiting.release()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.waiting.release()  # type: ignore[union-attr]  # it waits
                else:
                    self._leading = False

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            rows = [w.row for w in batch if w.row is not None]
            if self._insert_rows is not None and len(rows) == len(batch):
                results: list[Any] = self._insert_rows(rows)
            else:
                with self._transaction() as conn:
                    results = [write.work(conn) for write in batch]
        except BaseException as exc:  # nothing in this transaction was committed
            if len(batch) == 1 or isinstance(exc, StoreUnavailable):
                for write in batch:  # the store itself failed: it fails every write alike
                    write.error = exc
                return
            # One write's failure must not be the others': each goes again on its own.
            for write in batch:
                self._commit([write])
            return
        for write, result in zip(batch, results, strict=True):
            write.result = result
