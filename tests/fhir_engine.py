"""Start and stop the in-memory FHIR R4 test server (``tests/fhir_server/server.js``) from Python.

The server is Medplum's FHIR engine behind a small Node wrapper, so integration tests and demos talk
to real FHIR REST semantics (search, paging, transactions) instead of mocks.

Usage::

    with FhirEngine.start(load=["bundle.json"]) as fhir:
        requests.get(f"{fhir.base_url}/Patient/123")
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
SERVER_JS = SERVER_DIR / "server.js"
MIN_NODE_MAJOR = 20
_READY = re.compile(r"^READY (?P<base>https?://\S+)\s*$")


class FhirEngineError(RuntimeError):
    """The FHIR test server could not be installed, started or used."""


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
    match = re.match(r"v(\d+)", out.stdout.strip())
    return int(match.group(1)) if match else 0


class FhirEngine:
    """A running server process; create it with :meth:`start` and stop it with :meth:`stop` (or ``with``)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, stderr_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.root_url = base_url.rsplit("/fhir", 1)[0]
        self.port = int(base_url.split(":")[-1].split("/")[0])
        self._stderr_path = stderr_path
        self._session = requests.Session()

    # -- installation -------------------------------------------------------------------------------

    @staticmethod
    def ensure_installed() -> None:
        """Install the npm packages once (``npm ci``); a file lock keeps parallel test runs from racing."""
        node = shutil.which("node")
        if node is None:
            raise FhirEngineError("`node` is not on PATH: the FHIR test server needs Node.js >= 20")
        major = _node_major(node)
        if major < MIN_NODE_MAJOR:
            raise FhirEngineError(f"the FHIR test server needs Node.js >= {MIN_NODE_MAJOR}, found v{major}")
        if _installed_matches_pins():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise FhirEngineError(f"`npm` is not on PATH: cannot install {SERVER_DIR / 'node_modules'}")
        lock_path = Path(tempfile.gettempdir()) / "spine-cds-fhir-server-npm.lock"
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _installed_matches_pins():  # another process installed it while we waited
                return
            verb = "ci" if (SERVER_DIR / "package-lock.json").exists() else "install"
            cmd = [npm, verb, "--no-audit", "--no-fund", "--loglevel=error"]
            proc = subprocess.run(cmd, cwd=SERVER_DIR, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0 or not _installed_matches_pins():
                raise FhirEngineError(
                    f"`{' '.join(cmd)}` in {SERVER_DIR} failed (exit {proc.returncode}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
                )

    # -- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        port: int = 0,
        delay_ms: int = 0,
        load: Iterable[str | os.PathLike[str]] = (),
        host: str = "127.0.0.1",
        extra_args: Iterable[str] = (),
        timeout: float = 30.0,
    ) -> FhirEngine:
        """Start ``node server.js`` and wait for its READY line.

        ``port=0`` lets the OS pick a free port inside the server itself (the server reports the port it
        got), which avoids the race of probing a port in Python and handing it over.
        """
        cls.ensure_installed()
        node = shutil.which("node")
        assert node is not None  # checked by ensure_installed
        cmd = [node, str(SERVER_JS), "--port", str(port), "--host", host, "--delay-ms", str(delay_ms)]
        cmd.append("--exit-with-stdin")  # the server exits when this process dies and the pipe closes
        for path in load:
            cmd += ["--load", str(Path(path).resolve())]
        cmd += list(extra_args)

        fd, stderr_name = tempfile.mkstemp(prefix="fhir-server-", suffix=".log")
        stderr_path = Path(stderr_name)
        with os.fdopen(fd, "w") as stderr_file:
            process = subprocess.Popen(
                cmd,
                cwd=SERVER_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                text=True,
                bufsize=1,
            )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process, lines), daemon=True).start()

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(process)
                raise FhirEngineError(
                    f"FHIR test server did not print READY within {timeout:.0f} s\n"
                    f"command: {' '.join(cmd)}\nstderr:\n{_tail(stderr_path)}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                process.wait(timeout=5)
                raise FhirEngineError(
                    f"FHIR test server exited with code {process.returncode} before READY\n"
                    f"command: {' '.join(cmd)}\nstderr:\n{_tail(stderr_path)}"
                )
            match = _READY.match(line)
            if match:
                return cls(process, match.group("base"), stderr_path)

    def stop(self) -> None:
        """Terminate the server, killing it if it has not exited after 5 s."""
        self._session.close()
        _kill(self.process)
        with contextlib.suppress(OSError):
            self._stderr_path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def stderr(self) -> str:
        """What the server has logged so far (errors it caught are written there)."""
        return _tail(self._stderr_path, limit=None)

    # -- data ---------------------------------------------------------------------------------------

    def load_bundle(self, bundle: dict[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
        """POST a transaction/batch Bundle (dict or JSON file) and return the response Bundle."""
        if not isinstance(bundle, dict):
            bundle = json.loads(Path(bundle).read_text(encoding="utf-8"))
        resp = self._session.post(
            self.base_url, json=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=120
        )
        if resp.status_code >= 300:
            raise FhirEngineError(f"loading bundle failed: {resp.status_code} {resp.text[:2000]}")
        result: dict[str, Any] = resp.json()
        return result

    def reset(self) -> None:
        """Delete every resource (POST /admin/reset)."""
        self._session.post(f"{self.root_url}/admin/reset", timeout=30).raise_for_status()

    def set_delay(self, delay_ms: int, resource_type: str | None = None) -> None:
        """Change the per-response delay at run time (POST /admin/delay), or only for one resource type."""
        params: dict[str, Any] = {"ms": delay_ms}
        if resource_type:
            params["type"] = resource_type
        self._session.post(f"{self.root_url}/admin/delay", params=params, timeout=30).raise_for_status()

    def set_binary_format(self, mode: str) -> None:
        """'negotiate' (raw content unless FHIR JSON is preferred) or 'json' (always the Binary resource)."""
        self._session.post(
            f"{self.root_url}/admin/binary-format", params={"mode": mode}, timeout=30
        ).raise_for_status()

    def status(self) -> dict[str, Any]:
        """Resource counts, delay and memory use of the server (GET /admin/status)."""
        resp = self._session.get(f"{self.root_url}/admin/status", timeout=30)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result


def _installed_matches_pins() -> bool:
    """True when node_modules holds exactly the versions package.json pins (so a version bump reinstalls)."""
    pins: dict[str, str] = json.loads((SERVER_DIR / "package.json").read_text(encoding="utf-8"))[
        "dependencies"
    ]
    for name, version in pins.items():
        installed = SERVER_DIR / "node_modules" / name / "package.json"
        try:
            if json.loads(installed.read_text(encoding="utf-8")).get("version") != version:
                return False
        except (OSError, ValueError):
            return False
    return True


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Drain the server's stdout so it can never block on a full pipe; None marks EOF."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def _kill(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tail(path: Path, limit: int | None = 4000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "<no stderr>"
    return text if limit is None else text[-limit:]
