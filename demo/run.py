"""`make demo`: a FHIR server with the demo patients, the CDS service, and one sandbox link per story.

1. starts the in-memory FHIR engine of the integration tests (`tests/fhir_server`) on 127.0.0.1:8103;
2. loads the demo stories (`fhir_fixtures/demo/`), their dates materialized relative to today;
3. starts `cds serve` on 127.0.0.1:8080 with the real clock ("now", never a fixed date) and auth OFF,
   or, with `--trusted-clients FILE`, verifying the JWTs of the clients listed there (the real sandbox);
4. writes a replay request per story and hook (no prefetch, draft orders read back from the FHIR server)
   for `cds evaluate`, and prints each story with a ready-to-open CDS Hooks sandbox link.

Ctrl-C or SIGTERM stops what it started. The tests start the same stack through `start_stack`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import FrameType
from typing import IO

import requests

from cds.client_trust import load_trusted_clients
from demo.stories import Story, draft_orders, hook_request, load_stories, transaction, utc_today
from tests.fhir_engine import FhirEngine

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
FHIR_PORT = 8103
SERVICE_PORT = 8080
STATE_DIR = ROOT / "data" / "demo"
# A fixed clock would make relative dates lie, and the demo's audit must not land in a real database.
_DROPPED_ENV = ("CDS_CLOCK", "CDS_CONFIG_FILE", "CDS_DATABASE_URL")


class DemoError(RuntimeError):
    """The demo could not start; the message says what to do."""


@dataclass
class DemoStack:
    """The running demo: stop() ends exactly the processes start_stack started."""

    fhir: FhirEngine
    service: subprocess.Popen[bytes]
    service_url: str
    trusted_clients: Path | None  # None: auth is off
    log_path: Path
    stories: list[Story]
    today: date
    requests_dir: Path
    replays: dict[tuple[str, str], Path] = field(default_factory=dict)  # (story key, hook) -> request file

    @property
    def discovery_url(self) -> str:
        return f"{self.service_url}/cds-services"

    def stop(self) -> None:
        _terminate(self.service)
        self.fhir.stop()


def service_env(
    base: dict[str, str] | None = None, trusted_clients: Path | None = None, state_dir: Path = STATE_DIR
) -> dict[str, str]:
    """The service's environment: dev profile, loopback FHIR allowed, real clock, live logs, its own
    audit database in `state_dir` (not `make run`'s); auth off unless a trusted-clients file is given."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _DROPPED_ENV}
    if trusted_clients is None:
        env.pop("CDS_TRUSTED_CLIENTS", None)
    else:
        env["CDS_TRUSTED_CLIENTS"] = str(trusted_clients.resolve())
    env.update(
        CDS_PROFILE="dev",
        CDS_AUTH="off" if trusted_clients is None else "required",
        CDS_FHIR_ALLOWED_HOSTS=HOST,  # the demo FHIR server is on loopback, refused by default (SSRF)
        CDS_DATA_DIR=str(state_dir.resolve()),
        CDS_FHIR_DEADLINE_S="5",  # a first call warms caches; the sandbox user should never see a timeout
        PYTHONUNBUFFERED="1",  # JSON log lines reach the log file as they happen
    )
    return env


def port_is_free(port: int, host: str = HOST) -> bool:
    """True unless something listens there (SO_REUSEADDR: connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _exit_with_parent() -> None:
    """Linux: the service gets SIGTERM if the demo dies, even by SIGKILL, so it never lingers on 8080."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_service(
    port: int, log: IO[bytes], state_dir: Path, trusted_clients: Path | None = None, host: str = HOST
) -> subprocess.Popen[bytes]:
    """`cds serve` as a child in its own session, so a terminal Ctrl-C reaches only us and we stop it."""
    cds = Path(sys.executable).with_name("cds")
    cmd = [str(cds)] if cds.exists() else [sys.executable, "-m", "hooks.app"]
    return subprocess.Popen(
        [*cmd, "serve", "--host", host, "--port", str(port)],
        cwd=ROOT,
        env=service_env(trusted_clients=trusted_clients, state_dir=state_dir),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_exit_with_parent if sys.platform.startswith("linux") else None,
    )


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the CDS service exited with code {process.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise DemoError(
        f"the CDS service did not answer {url}/healthz within {timeout:.0f} s:\n{_tail(log_path)}"
    )


def start_stack(
    fhir_port: int = FHIR_PORT,
    service_port: int = SERVICE_PORT,
    state_dir: Path = STATE_DIR,
    trusted_clients: Path | None = None,
) -> DemoStack:
    """Start the FHIR engine and the service in parallel, load the stories, write the replay requests.

    `fhir_port=0` lets the engine pick a free port (the tests do). On any failure, whatever was
    started is stopped again before the error propagates.
    """
    busy = [p for p in (fhir_port, service_port) if p and not port_is_free(p)]
    if busy:
        raise DemoError(
            f"port {', '.join(map(str, busy))} on {HOST} is in use (is `make run` or another demo running?); "
            "stop it or pass --fhir-port/--port"
        )
    stories = load_stories()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "service.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the file descriptor
        service = start_service(service_port, log, state_dir, trusted_clients)
    fhir: FhirEngine | None = None
    try:
        fhir = FhirEngine.start(port=fhir_port, host=HOST)
        today = utc_today()
        for story in stories:
            fhir.load_bundle(transaction(story, today))
        service_url = f"http://{HOST}:{service_port}"
        wait_healthy(service_url, service, log_path)
        stack = DemoStack(
            fhir, service, service_url, trusted_clients, log_path, stories, today, state_dir / "requests"
        )
        write_replays(stack)
        return stack
    except BaseException:
        _terminate(service)
        if fhir is not None:
            fhir.stop()
        raise


def write_replays(stack: DemoStack) -> None:
    """One request file per story and hook, built from the FHIR server, for `cds evaluate` to replay."""
    stack.requests_dir.mkdir(parents=True, exist_ok=True)
    with requests.Session() as http:
        for story in stack.stories:
            hooks = ["patient-view"]
            writing = story.orders_being_written(stack.today)
            if writing or draft_orders(stack.fhir.base_url, story.patient_id, http):
                hooks += ["order-select", "order-sign"]
            for hook in hooks:
                path = stack.requests_dir / f"{story.key}.{hook}.json"
                body = hook_request(stack.fhir.base_url, story.patient_id, hook, http, writing)
                path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
                stack.replays[(story.key, hook)] = path


def auth_lines(stack: DemoStack) -> list[str]:
    """The loud part: whether anyone at all may call the service, or which signed clients may."""
    if stack.trusted_clients is None:
        return [
            f"  AUTH IS OFF: anyone who reaches {stack.service_url} can call these services unauthenticated.",
            "  Demo data only. To trust the real sandbox, see README 'Trusting the real sandbox'.",
        ]
    clients = load_trusted_clients(stack.trusted_clients)
    lines = [
        f"  AUTH IS ON: only JWTs signed by a client of {_shown(stack.trusted_clients)} are answered:",
        f"  {', '.join(c.iss for c in clients)}",
    ]
    fhir = f"{stack.fhir.base_url}/"
    if not any(c.allows_fhir_server(fhir) for c in clients):
        lines.append(
            f"  WARNING: no trusted client lists {fhir} in fhir_servers: every hook call will get 400."
        )
    return lines


def banner(stack: DemoStack) -> list[str]:
    """What `make demo` prints: the auth status, the endpoints, and each story with its sandbox link."""
    services = requests.get(f"{stack.service_url}/healthz", timeout=5).json()["services"]
    rule = "=" * 100
    lines = [
        rule,
        *auth_lines(stack),
        rule,
        f"FHIR server  {stack.fhir.base_url}   {len(stack.stories)} demo patients, dates relative to "
        f"{stack.today.isoformat()} (UTC)",
        f"CDS service  {stack.discovery_url}   {services} services, clock: now, "
        f"log: {_shown(stack.log_path)}",
        "",
    ]
    for n, story in enumerate(stack.stories, 1):
        lines.append(f"{n}. [{story.screen}] {story.title}")
        link = story.sandbox_url(stack.fhir.base_url, stack.discovery_url)
        if link:
            lines.append(f"   {link}")
        order_link = story.sandbox_order_url(stack.fhir.base_url, stack.discovery_url)
        if order_link:
            lines.append(f"   order screen (PAMA): {order_link}")
            lines.append(f"   there: {story.sandbox_order}")
        else:
            replay = stack.replays.get((story.key, story.replay_hook))
            lines.append(f"   not in the sandbox: {story.sandbox_gap}")
            if replay:
                lines.append(
                    f"   replay: CDS_FHIR_ALLOWED_HOSTS={HOST} .venv/bin/cds evaluate {_shown(replay)}"
                )
            if story.screen != "patient-view":
                lines.append(
                    f"   or in the Da Vinci CRD Request Generator: patient {story.patient_id}, any of its "
                    "draft ServiceRequests (README 'A second client')"
                )
    lines += ["", "Ctrl-C stops the FHIR server and the service."]
    return lines


def _shown(path: Path) -> str:
    """Paths relative to the repository when they are inside it (the commands are run from there)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _tail(path: Path, limit: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    return "<no log>"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves like Ctrl-C, so the same `finally` stops everything in both cases."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fhir-port", type=int, default=FHIR_PORT, help=f"FHIR server port (default {FHIR_PORT})"
    )
    parser.add_argument(
        "--port", type=int, default=SERVICE_PORT, help=f"CDS service port (default {SERVICE_PORT})"
    )
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help="service log and replay requests")
    parser.add_argument(
        "--trusted-clients",
        type=Path,
        help="turn auth on and trust the clients in this file (e.g. demo/trusted-clients.sandbox.json)",
    )
    args = parser.parse_args(argv)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
    stack: DemoStack | None = None
    try:
        started = time.monotonic()
        stack = start_stack(args.fhir_port, args.port, args.state_dir, args.trusted_clients)
        print("\n".join(banner(stack)), flush=True)
        print(f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
        while stack.service.poll() is None and stack.fhir.process.poll() is None:
            time.sleep(0.5)
        print(f"error: a demo process exited; service log:\n{_tail(stack.log_path)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo...", flush=True)
        return 0
    except DemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if stack is not None:
            stack.stop()
