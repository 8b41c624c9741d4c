"""Background writer of the card audit: the hook response never waits for the database.

Rows go into a bounded in-process queue; one daemon thread drains it in batches (one INSERT per batch).
Nothing is dropped silently:
- a full queue makes the caller write its rows itself (slower, never lost), unless the database is known
  to be down (`may_wait` says no): then a hook call does not wait on it, and the rows that do not fit are
  logged as `audit.lost` with their card uuids (the log is the record of last resort);
- while the database is unavailable a batch is retried with back-off until it lands;
- a row the database refuses outright is retried alone and, failing that, logged as `audit.lost`
  with its card uuid, so it never blocks the rows behind it;
- `flush()` waits until every row accepted so far is committed. `close()` flushes, and the store calls
  it at interpreter exit, on SIGTERM in `cds serve`, and from gunicorn's worker_exit hook.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cds.logs import log

logger = logging.getLogger("cds.audit")
IDLE_EXIT_S = 10.0  # an idle writer thread exits (and holds nothing); the next row starts a new one
Row = dict[str, Any]


def transient(exc: Exception) -> bool:
    """Errors that go away on their own (server restarting, SQLite lock held, connection dropped)."""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | TimeoutError | ConnectionError)


class AuditWriter:
    def __init__(
        self,
        write: Callable[[Sequence[Row]], None],
        queue_max: int,
        batch_max: int,
        linger_s: float = 0.05,
        may_wait: Callable[[], bool] = lambda: True,
    ) -> None:
        self._write = write
        self._may_wait = may_wait  # False while the database is known to be down: never write inline then
        self._batch_max = max(1, batch_max)
        # Wait this long for more rows before a write: one transaction per many hook calls instead of one
        # per call keeps the writer's CPU (and GIL) share small. flush() cuts the wait short.
        self._linger_s = linger_s
        self._queue_max = max(1, queue_max)
        self._init_state()

    def _init_state(self) -> None:
        self._queue: queue.Queue[Row | None] = queue.Queue(maxsize=self._queue_max)
        self._cond = threading.Condition()
        self._hurry = threading.Event()  # set by flush(): write what is queued now
        self._pending = 0  # rows accepted and not yet committed
        self._thread: threading.Thread | None = None
        self._closed = False
        self.sync_fallbacks = 0
        self.lost = 0

    def after_fork(self) -> None:
        """A forked child inherits no thread; start over with empty, fresh primitives."""
        self._init_state()

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def submit(self, rows: Sequence[Row]) -> None:
        """Queue rows for the writer thread; write them on this thread if the queue is full or closed."""
        if not rows:
            return
        with self._cond:
            closed = self._closed
            if not closed:
                self._pending += len(rows)
                self._ensure_thread()
        if closed:
            self._write_now(list(rows))
            return
        for i, row in enumerate(rows):
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                rest = list(rows[i:])
                self.sync_fallbacks += 1
                log(logger, logging.WARNING, "audit.queue_full", rows=len(rest), queue_max=self._queue_max)
                try:
                    if self._may_wait():
                        self._write_now(rest)
                    else:  # the database is down and the queue full: the hook call must not wait
                        self.lost += len(rest)
                        log(
                            logger,
                            logging.ERROR,
                            "audit.lost",
                            rows=len(rest),
                            reason="queue full while the database is unavailable",
                            card_uuids=[r.get("card_uuid") for r in rest],
                        )
                finally:
                    self._done(len(rest))
                return

    def _write_now(self, rows: list[Row]) -> None:
        """Write on the caller's thread. The cards are already computed: an audit failure must not turn
        a clinical answer into a 500, so after a few attempts the loss is logged loudly instead."""
        try:
            self._write_with_retry(rows, attempts=3)
        except Exception:
            log(
                logger,
                logging.ERROR,
                "audit.lost",
                rows=len(rows),
                card_uuids=[r.get("card_uuid") for r in rows],
            )

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every accepted row is committed. False if the timeout passed first."""
        deadline = time.monotonic() + timeout
        self._hurry.set()
        with self._cond:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Flush, then stop the thread. Rows submitted afterwards are written synchronously."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=5)
        if not flushed:
            log(logger, logging.ERROR, "audit.unflushed", rows=self.pending)
        return flushed

    # -- the writer thread ------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="cds-audit-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._cond:  # pending is raised before a row is queued, so nothing can be stranded
                    if self._pending == 0:
                        self._thread = None
                        return
                continue
            if first is None:
                return
            batch, stop = [first], False
            linger_until = time.monotonic() + self._linger_s
            while len(batch) < self._batch_max:
                wait = linger_until - time.monotonic()
                if self._hurry.is_set() or wait <= 0:
                    wait = 0.0
                try:
                    item = self._queue.get(timeout=min(wait, 0.01)) if wait else self._queue.get_nowait()
                except queue.Empty:
                    if wait:
                        continue  # still lingering: look at the clock and the hurry flag again
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._write_batch(batch)
            finally:
                self._done(len(batch))
            if stop:
                return

    def _write_batch(self, batch: list[Row]) -> None:
        """Retry while the database is unavailable; on any other error isolate the rows that cannot be
        written, so one bad row never blocks the audit of every card after it."""
        try:
            self._write_with_retry(batch, attempts=None)
        except Exception:
            for row in batch:
                self._write_now([row])

    def _write_with_retry(self, batch: list[Row], attempts: int | None) -> None:
        delay, tried = 0.05, 0
        while True:
            try:
                self._write(batch)
                return
            except Exception as exc:  # the database may be restarting: keep the rows and retry
                tried += 1
                log(
                    logger,
                    logging.ERROR,
                    "audit.write_failed",
                    rows=len(batch),
                    error_type=type(exc).__name__,
                )
                if (attempts is not None and tried >= attempts) or (attempts is None and not transient(exc)):
                    raise
                if attempts is not None and not self._may_wait():
                    raise  # written on a request's thread and the database is down: stop holding it
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _done(self, n: int) -> None:
        with self._cond:
            self._pending -= n
            if self._pending <= 0:
                self._hurry.clear()
            self._cond.notify_all()
