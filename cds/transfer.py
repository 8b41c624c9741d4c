"""Per-call isolation of the FHIR fallback: a total deadline on each response, and a memory budget.

A socket timeout bounds one `recv`, not a response: a server that drips one byte per second (a body
under Content-Length, or headers line by line) never trips it, and the reading thread stays stuck for
hours. `Watchdog` enforces the call's deadline on the whole transfer instead: every socket a transfer
touches is registered, and when the deadline passes the watchdog shuts the socket down, so the blocked
read returns at once, the connection is discarded and the pool thread is free for the next call.

`ByteBudget` caps the bytes buffered by all concurrent fetches of a worker (response bodies before they
are parsed, attachments before they are read), so hostile bodies cannot add up to the pod's memory limit.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

_current = threading.local()


class Transfer:
    """One HTTP exchange of one hook call: the sockets it uses, shut down if its deadline passes."""

    def __init__(self, expires: float) -> None:
        self.expires = expires
        self.sockets: list[socket.socket] = []
        self.owned: list[socket.socket] = []  # duplicates we opened ourselves and must close
        self.done = False
        self.cut = False


class Watchdog:
    """One daemon thread per FHIR client, sleeping until the next transfer deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Transfer]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.cuts = 0  # transfers cut at their deadline (tests and metrics read it)

    @contextlib.contextmanager
    def watch(self, expires: float) -> Iterator[Transfer]:
        """Run an HTTP exchange in this thread under a deadline (time.monotonic() value)."""
        transfer = Transfer(expires)
        with self._cond:
            self._ensure_thread()
            heapq.heappush(self._heap, (expires, next(self._seq), transfer))
            self._cond.notify()
        previous = getattr(_current, "transfer", None)
        _current.transfer = transfer
        try:
            yield transfer
        finally:
            _current.transfer = previous
            with self._cond:
                transfer.done = True
                owned, transfer.owned, transfer.sockets = transfer.owned, [], []
            for sock in owned:
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="fhir-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, transfer = heapq.heappop(self._heap)
                if not transfer.done:
                    transfer.cut = True
                    self.cuts += 1
                    for sock in transfer.sockets:
                        _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    """Shut the connection down under a reader blocked in recv (the plain socket call, also for TLS)."""
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def track_socket(sock: Any, *, new: bool = False) -> None:
    """Called by the connection classes: register `sock` with the transfer running in this thread.

    A new connection registers a duplicate of its plain socket (`new=True`): TLS wraps the socket object
    during the handshake, and the duplicate still reaches the same connection to shut it down.
    """
    transfer: Transfer | None = getattr(_current, "transfer", None)
    if transfer is None or sock is None:
        return
    if new:
        try:
            sock = sock.dup()
        except OSError:
            return
        transfer.owned.append(sock)
    transfer.sockets.append(sock)
    if transfer.cut or time.monotonic() >= transfer.expires:
        _shutdown(sock)


class BudgetExceeded(Exception):
    pass


class ByteBudget:
    """Bytes buffered across concurrent fetches of one worker; a reservation waits until its deadline."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def reserve(self, n: int, expires: float) -> None:
        with self._cond:
            if n > self.max_bytes:
                raise BudgetExceeded
            while self.used + n > self.max_bytes:
                wait = expires - time.monotonic()
                if wait <= 0:
                    raise BudgetExceeded
                self._cond.wait(wait)
            self.used += n
            self.peak = max(self.peak, self.used)

    def release(self, n: int) -> None:
        if n <= 0:
            return
        with self._cond:
            self.used = max(0, self.used - n)
            self._cond.notify_all()
