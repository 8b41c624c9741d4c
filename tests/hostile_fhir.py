"""A hostile FHIR server on 127.0.0.1 for the fallback's isolation tests (issue 12 items 2 and 6).

The first path segment picks the behaviour, so `fhirServer` = `http://127.0.0.1:PORT/<mode>`:
- `drip-body`: headers at once, then a body under Content-Length, one byte every `drip_s` seconds;
- `drip-headers`: the status line, then one header line every `drip_s` seconds, never a blank line;
- `big`: a 1 GB body (Content-Length) streamed as fast as the client reads;
- `bomb`: a gzip bomb, about 1 MB on the wire that inflates to 1 GB;
- `slow`: a Condition for any read or an empty searchset, after `slow_s` seconds;
- `healthy`: an empty searchset (or a Condition for a read) at once.
It counts requests and the connections still open, so a test can see that abandoned transfers were closed.
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
import time
from typing import Any

_SEARCHSET = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
GB = 1024**3


def _bomb_member() -> bytes:
    """64 MiB of zeros, gzip-compressed (about 64 KB); the body repeats this member 16 times."""
    return gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


class HostileFhir:
    def __init__(self, drip_s: float = 0.2, slow_s: float = 0.3) -> None:
        self.drip_s = drip_s
        self.slow_s = slow_s
        self.requests: dict[str, int] = {}
        self.open_connections = 0
        self.dripping = 0  # connections in the middle of a drip
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bomb = b""
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer._lock:
                    outer.open_connections += 1
                try:
                    outer._serve(self.request)
                except OSError:
                    pass  # the client closed the connection: what the fallback must do
                finally:
                    with outer._lock:
                        outer.open_connections -= 1

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def base(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    def __enter__(self) -> HostileFhir:
        self._bomb = _bomb_member()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def count(self, mode: str) -> int:
        with self._lock:
            return self.requests.get(mode, 0)

    def wait_closed(self, timeout: float) -> bool:
        """True once every dripping connection has been closed by its client."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if self.dripping == 0:
                    return True
            time.sleep(0.02)
        return False

    # -- behaviours ---------------------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        reader = sock.makefile("rb")
        while not self._stop.is_set():
            line = reader.readline(65536)
            if not line:
                return
            path = line.split(b" ")[1].decode("latin-1") if line.count(b" ") >= 2 else "/"
            while reader.readline(65536) not in (b"\r\n", b"\n", b""):
                pass
            mode = path.lstrip("/").split("/")[0]
            with self._lock:
                self.requests[mode] = self.requests.get(mode, 0) + 1
            if not self._answer(sock, mode, path):
                return

    def _answer(self, sock: socket.socket, mode: str, path: str) -> bool:
        """Send one response; False when the connection is done."""
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
        if mode == "drip-body":
            sock.sendall(f"{head}Content-Length: 100000\r\n\r\n".encode())
            return self._drip(sock, b"{" + b" " * 99999)
        if mode == "drip-headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            return self._drip(sock, b"".join(b"X-Drip-%d: 1\r\n" % i for i in range(100000)), by_line=True)
        if mode == "big":
            sock.sendall(f"{head}Content-Length: {GB}\r\n\r\n".encode())
            chunk = b" " * 1048576
            for _ in range(1024):
                if self._stop.is_set():
                    return False
                sock.sendall(chunk)
            return False
        if mode == "bomb":
            body = self._bomb * 16
            sock.sendall(f"{head}Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            sock.sendall(body)
            return True
        if mode == "slow":
            time.sleep(self.slow_s)
        resource_read = path.count("/") >= 3 and "?" not in path
        body = _SEARCHSET
        if resource_read:
            rid = path.rstrip("/").rsplit("/", 1)[-1]
            body = json.dumps(
                {
                    "resourceType": "Condition",
                    "id": rid,
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.17"}]},
                }
            ).encode()
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return True

    def _drip(self, sock: socket.socket, payload: bytes, by_line: bool = False) -> bool:
        pieces = payload.split(b"\n") if by_line else [payload[i : i + 1] for i in range(len(payload))]
        with self._lock:
            self.dripping += 1
        try:
            for piece in pieces:
                if self._stop.is_set():
                    return False
                sock.sendall(piece + (b"\n" if by_line else b""))
                time.sleep(self.drip_s)
        finally:
            with self._lock:
                self.dripping -= 1
        return False
