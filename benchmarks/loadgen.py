"""A closed-loop HTTP/1.1 load generator that costs the client as little CPU as possible.

Client and server share this machine's CPUs, so every microsecond the client spends is taken from
the server. Each client thread keeps one keep-alive connection, sends a request whose bytes were
built once, and reads the response with a minimal parser (status line, Content-Length). Threads
block in socket calls, which release the GIL. Loopback only: the host is always 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


def build_request(path: str, body: bytes | None, method: str = "POST") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: keep-alive"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in range(2):  # a kept-alive socket the server closed meanwhile: retry once
            if self.sock is None:
                self.sock = self._connect()
            try:
                self.sock.sendall(raw)
                return self._read()
            except (ConnectionError, OSError, ValueError):
                self.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def _read(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            rest += self._recv()
        body, self.buffer = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    wall_s: float = 0.0  # including the warm-up, for the client's CPU share
    client_cpu_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.count,
            "rps": round(self.throughput, 1),
            "p50": round(self.pct(50), 1),
            "p95": round(self.pct(95), 1),
            "p99": round(self.pct(99), 1),
            "mean": round(statistics.fmean(self.latencies_ms), 1) if self.latencies_ms else None,
            "errors": dict(self.errors),
            "client_cpu_pct": round(100 * self.client_cpu_s / self.wall_s, 1) if self.wall_s else 0,
        }


def run_load(
    port: int,
    requests_raw: list[bytes],
    concurrency: int,
    duration_s: float = 5.0,
    warmup_s: float = 1.0,
    max_requests: int | None = None,
    check: bool = True,
    unique: bytes | None = None,
) -> LoadResult:
    """`concurrency` clients, each sending the raw requests in turn, for warmup + duration seconds.

    With `unique` (an 8-byte placeholder in the requests), every request gets its own value there: a
    counter in hex, so the Content-Length does not change. Only responses that complete after the
    warm-up are counted. With `max_requests` the run stops
    after that many counted responses (or the duration, whichever comes first).
    """
    result = LoadResult()
    lock = threading.Lock()
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    done = threading.Event()
    counted = [0]  # responses counted by all clients, for max_requests

    def client(index: int) -> None:
        conn = Connection(port)
        i = index
        local: list[float] = []
        errors: dict[str, int] = {}
        try:
            while not done.is_set():
                raw = requests_raw[i % len(requests_raw)]
                if unique:
                    raw = raw.replace(unique, b"%08x" % (index << 24 | i))
                i += 1
                t0 = time.perf_counter()
                try:
                    status, body = conn.request(raw)
                except (OSError, ValueError, RuntimeError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    time.sleep(0.01)
                    continue
                t1 = time.perf_counter()
                if t1 > stop_at:
                    break
                ok = status == 200 and (not check or body.startswith(b"{"))
                if t0 >= measure_from:
                    if ok:
                        local.append((t1 - t0) * 1000)
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1
                    if max_requests:
                        with lock:
                            counted[0] += 1
                            if counted[0] >= max_requests:
                                done.set()
        finally:
            conn.close()
            with lock:
                result.latencies_ms.extend(local)
                for k, v in errors.items():
                    result.errors[k] = result.errors.get(k, 0) + v

    cpu0 = os.times()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = os.times()
    result.elapsed_s = min(time.perf_counter(), stop_at) - measure_from
    result.wall_s = time.perf_counter() - start
    result.client_cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return result


def get_json(port: int, path: str) -> Any:
    conn = Connection(port)
    try:
        status, body = conn.request(build_request(path, None, "GET"))
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return json.loads(body)
