"""Run the service under gunicorn exactly as deployed (deploy/gunicorn.conf.py), on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from benchmarks.loadgen import HOST, get_json

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Gunicorn:
    """A gunicorn master with its workers; `env` adds to (and overrides) the current environment."""

    def __init__(
        self,
        app: str,
        workers: int | None,
        threads: int | None,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """`workers`/`threads` None: what deploy/gunicorn.conf.py chooses. `command`: another server's
        command line instead of gunicorn's (`{port}` is replaced), with the same environment."""
        self.port = free_port()
        self.metrics_dir = tempfile.mkdtemp(prefix="spine-cds-bench-metrics-")
        fd, log_name = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
        self.log_path = Path(log_name)
        full_env = {
            **os.environ,
            "GUNICORN_BIND": f"{HOST}:{self.port}",
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "CDS_LOG_LEVEL": "INFO",  # as deployed (deploy/k8s/configmap.yaml): one JSON line per hook call
            "CDS_AUTH": "off",
            "CDS_DATA_DIR": tempfile.mkdtemp(prefix="spine-cds-bench-data-"),
            **(env or {}),
        }
        for name, value in (("GUNICORN_WORKERS", workers), ("GUNICORN_THREADS", threads)):
            if value is not None:
                full_env[name] = str(value)
            else:
                full_env.pop(name, None)
        self.workers = workers or 1
        self.process = subprocess.Popen(
            [a.replace("{port}", str(self.port)) for a in command]
            if command
            else [str(GUNICORN), "-c", str(CONFIG), app],
            cwd=ROOT,
            env=full_env,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(fd)

    def wait_ready(self, timeout: float = 60.0) -> Self:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                get_json(self.port, "/healthz")
                if len(self.worker_pids()) >= self.workers:
                    return self
            except (OSError, RuntimeError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready in {timeout} s:\n{self.output()[-3000:]}")

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) used by each worker so far: a request's cost, whatever else runs."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def rss(self) -> dict[int, int]:
        return {pid: rss_kib(pid) for pid in self.worker_pids()}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self.wait_ready()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
