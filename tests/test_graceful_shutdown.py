"""SIGTERM under gunicorn (deploy/gunicorn.conf.py): the in-flight call finishes, then the audit is flushed.

This is what a Kubernetes rolling update does to a pod: SIGTERM to gunicorn (PID 1), which stops
accepting, lets each worker finish what it is serving within `graceful_timeout`, and runs the
`worker_exit` hook in each worker, which flushes the audit store. A slow test service makes sure a
call is in flight when the signal arrives; a spy around the store records when flush() ran.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from benchmarks.loadgen import Connection, build_request
from benchmarks.server import Gunicorn
from cds.app import create_app
from cds.cards import Card, Source
from cds.registry import HookInput, Service
from tests.builders import make_test_services, pv_request, settings
from tests.httpraw import exchange, parse, request

MARKERS = "SPINE_CDS_TEST_MARKERS"
SLOW_S = 2.0
JSON = {"Content-Type": "application/json"}


def _slow(inp: HookInput) -> list[Card]:
    markers = Path(os.environ[MARKERS])
    (markers / "started").write_text(str(os.getpid()))
    time.sleep(SLOW_S)  # the call is in flight while the test sends SIGTERM
    (markers / "finished").write_text(str(os.getpid()))
    return [Card(summary="slow but complete", indicator="info", source=Source(label="test"))]


class FlushSpy:
    """Wraps the real audit store; records that flush() ran and what had finished by then."""

    def __init__(self, store: Any, markers: Path) -> None:
        self._store = store
        self._markers = markers

    def flush(self, *args: Any, **kwargs: Any) -> Any:
        seen = sorted(p.name for p in self._markers.iterdir())
        (self._markers / f"flushed-{os.getpid()}").write_text(json.dumps(seen))
        return self._store.flush(*args, **kwargs) if self._store is not None else True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def slow_app() -> Flask:
    """The gunicorn app: the test services plus one that takes SLOW_S seconds."""
    services = [
        *make_test_services(),
        Service(id="slow", hook="patient-view", title="Slow", description="sleeps", handler=_slow),
    ]
    app = create_app(settings(), services=services)
    state = app.extensions["cds"]
    state.store = FlushSpy(getattr(state, "store", None), Path(os.environ[MARKERS]))
    return app


def _wait_for(path: Path, process: Any, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        assert process.poll() is None, "gunicorn exited before the call started"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_sigterm_lets_the_in_flight_call_finish_then_flushes_the_audit(
    tmp_path: Path, worker_class: str
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {
        MARKERS: str(markers),
        "GUNICORN_WORKER_CLASS": worker_class,
        "CDS_DATA_DIR": str(tmp_path / "data"),
    }
    server = Gunicorn("tests.test_graceful_shutdown:slow_app()", workers=1, threads=2, env=env).wait_ready()
    try:
        outcome: dict[str, Any] = {}

        def call() -> None:
            conn = Connection(server.port, timeout=60)
            try:
                raw = build_request("/cds-services/slow", json.dumps(pv_request()).encode())
                outcome["status"], outcome["body"] = conn.request(raw)
            except Exception as exc:  # reported by the assertions below
                outcome["error"] = repr(exc)
            finally:
                conn.close()

        client = threading.Thread(target=call)
        client.start()
        _wait_for(markers / "started", server.process)
        assert not (markers / "finished").exists()  # really in flight
        server.process.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["status"] == 200
        assert json.loads(outcome["body"])["cards"][0]["summary"] == "slow but complete"
        assert server.process.wait(timeout=60) == 0  # a clean, graceful exit, not a SIGKILL
        flushed = list(markers.glob("flushed-*"))
        assert len(flushed) == 1, server.output()[-3000:]
        # worker_exit ran in the worker that served the call, after the call had finished
        assert flushed[0].name == f"flushed-{(markers / 'started').read_text()}"
        assert "finished" in json.loads(flushed[0].read_text())
        assert "audit store flushed on worker exit" in server.output()
    finally:
        server.stop(signal.SIGKILL)


def test_sigterm_serves_the_connections_already_queued(tmp_path: Path) -> None:
    """Calls the kernel accepted while the only worker was busy are served after SIGTERM, not reset.

    Plain gunicorn closes the listening socket with its last worker, resetting them (issue 12, item 7);
    `cds.wsgi_server.DrainingSyncWorker` (GUNICORN_WORKER_CLASS=sync) drains the queue first.
    """
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {MARKERS: str(markers), "CDS_DATA_DIR": str(tmp_path / "data")}
    server = Gunicorn(
        "tests.test_graceful_shutdown:slow_app()", workers=1, threads=None, env=env
    ).wait_ready()
    try:
        busy = threading.Thread(
            target=exchange,
            args=(
                server.port,
                request("POST", "/cds-services/slow", json.dumps(pv_request()).encode(), JSON),
            ),
        )
        busy.start()
        _wait_for(markers / "started", server.process)
        queued = []
        for _ in range(5):  # the worker is busy: these wait in the listen queue
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            sock.sendall(request("GET", "/cds-services"))
            queued.append(sock)
        server.process.send_signal(signal.SIGTERM)
        answers = []
        for sock in queued:
            with sock:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            answers.append(parse(data))
        busy.join(timeout=60)
        assert [a.status for a in answers] == [200] * 5
        assert all(len(a.json()["services"]) == len(make_test_services()) + 1 for a in answers)
        assert server.process.wait(timeout=60) == 0
        assert "served 5 queued connection(s) after SIGTERM" in server.output()
    finally:
        server.stop(signal.SIGKILL)
