"""What gunicorn does for us, shaped like the app: JSON errors, and a sync worker that drains on SIGTERM.

Used only by `deploy/gunicorn.conf.py` (the worker class by its dotted path, the rest from server hooks).

- **JSON errors.** gunicorn answers some requests itself, before the app sees them: a request line over
  `limit_request_line` (414), too many or too large headers (431), an unparsable request (400), an
  unsupported transfer coding (501), and the 500 it writes when the arbiter aborts a worker that ran past
  `timeout`. It writes them as HTML through `gunicorn.util.write_error`. `install_json_errors` replaces that
  function in the worker with one that writes the app's error body, `{"error", "message", "status"}`.
- **Draining on SIGTERM.** On SIGTERM the arbiter closes its copy of the listening socket and tells the
  workers to finish. A sync worker finishes the request it is serving and exits, and with the last
  worker's copy the socket closes: connections the kernel had already accepted into the listen queue
  are reset. `DrainingSyncWorker` serves what is queued first (until the queue is empty or
  `graceful_timeout` is nearly spent), then exits.
"""

from __future__ import annotations

import errno
import json
import time
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

DRAIN_MARGIN_S = 2.0  # stop draining this long before the arbiter's SIGKILL at graceful_timeout

_state: dict[str, Any] = {"aborted": False, "timeout": None, "limit_request_line": None}


def _error(status: int) -> tuple[str, str]:
    if status == 500 and _state["aborted"]:
        return "worker-timeout", (
            f"the request ran longer than the worker timeout ({_state['timeout']} s) and was stopped"
        )
    return {
        400: ("bad-request", "malformed HTTP request"),
        403: ("forbidden", "request refused by the HTTP server"),
        414: ("uri-too-long", f"request line longer than {_state['limit_request_line']} bytes"),
        417: ("expectation-failed", "unsupported Expect header"),
        431: ("request-header-fields-too-large", "too many request headers, or one too large"),
        501: ("not-implemented", "unsupported transfer coding"),
    }.get(status, ("internal-error", "the service failed to process this request"))


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for `gunicorn.util.write_error`. `mesg` is left out: it may echo the request line."""
    code, message = _error(status_int)
    body = json.dumps({"error": code, "message": message, "status": status_int}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install_json_errors(cfg: Any) -> None:
    """In a worker (gunicorn's `post_worker_init`): errors gunicorn writes itself become JSON."""
    _state.update(timeout=cfg.timeout, limit_request_line=cfg.limit_request_line)
    util.write_error = write_json_error


def mark_aborted() -> None:
    """gunicorn's `worker_abort` hook: the arbiter stopped this worker for running past `timeout`."""
    _state["aborted"] = True


class DrainingSyncWorker(SyncWorker):
    """gunicorn's sync worker that, on SIGTERM, serves the connections already queued before exiting."""

    _exit_at: float | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._exit_at = time.monotonic()
        super().handle_exit(sig, frame)

    def run(self) -> None:
        super().run()
        if self._exit_at is not None and self.is_parent_alive():
            self.drain(self._exit_at + max(0.0, self.cfg.graceful_timeout - DRAIN_MARGIN_S))

    def drain(self, deadline: float) -> int:
        """Serve queued connections until none is waiting or `deadline` (monotonic) passes."""
        served = 0
        while time.monotonic() < deadline:
            progressed = False
            for listener in self.sockets:
                try:
                    self.accept(listener)  # the listeners are non-blocking: EAGAIN once the queue is empty
                except OSError as exc:
                    if exc.errno == errno.ECONNABORTED:  # the client gave up while queued: look again
                        progressed = True
                        continue
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        continue
                    raise
                served += 1
                progressed = True
                self.notify()
            if not progressed:
                break
        if served:
            self.log.info("served %d queued connection(s) after SIGTERM", served)
        return served
