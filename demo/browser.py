"""What `make sandbox-check` drives real clients with: headless Chromium, a static file server, the log.

- `chromium()`: Debian's `chromium` + `chromium-driver` through Selenium, with the flags that keep a
  headless run quiet and reproducible (no sync, no component updates, a fresh profile every time).
- `StaticSite`: serves a built single-page client (the CDS Hooks sandbox's `build/`) on a free loopback
  port, over http or, with a throw-away self-signed certificate, https.
- `ServiceLog`: reads the service's JSON log lines as they are written, so a check waits for the hook
  call to be answered instead of sleeping.
- `Network`: what the page really sent to and got from a server (Chromium's DevTools network events),
  so the report can say exactly what a client does: which hook, which prefetch, which feedback body.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium(profile: Path, *extra: str, width: int = 1280, height: int = 2400) -> WebDriver:
    """A headless Chromium with a fresh profile (`profile` must be a new directory)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", *extra):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the check prints its own report
        pass


class StaticSite:
    """A built single-page app on 127.0.0.1, in a thread; `tls=True` serves it over https."""

    def __init__(self, directory: Path, tls: bool = False) -> None:
        self.directory = directory
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.scheme = "https" if tls else "http"
        if tls:
            self.server.socket = _tls_context().wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tls_context() -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1, made fresh (the browser is told to ignore its issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="sandbox-tls-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


class ServiceLog:
    """The service's JSON log lines; `mark()` then `wait(...)` finds what happened after the mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mark = 0

    def events(self) -> list[dict[str, Any]]:
        out = []
        with self.path.open("rb") as log:
            for line in log.read().splitlines():
                if line.startswith(b"{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue  # a line being written
        return out

    def mark(self) -> None:
        self._mark = len(self.events())

    def since_mark(self) -> list[dict[str, Any]]:
        return self.events()[self._mark :]

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        return wait_until(lambda: [e for e in self.since_mark() if predicate(e)], timeout, what)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.events())


class Exchange:
    """One HTTP request the page made, with its body and, once answered, status and response body."""

    def __init__(self, request_id: str, method: str, url: str, body: str | None) -> None:
        self.request_id = request_id
        self.method = method
        self.url = url
        self.request_body = body
        self.status: int | None = None
        self.response_body: str | None = None
        self.done = False  # the response was read to the end (or the request failed)

    def json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    def __repr__(self) -> str:
        return f"<{self.method} {self.url} {self.status}>"


class Network:
    """The page's requests to URLs starting with `prefix`, read from Chromium's performance log."""

    def __init__(self, driver: WebDriver, prefix: str) -> None:
        self.driver = driver
        self.prefix = prefix
        self.exchanges: list[Exchange] = []
        self._by_id: dict[str, Exchange] = {}

    def poll(self) -> list[Exchange]:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                request = params["request"]
                if request["url"].startswith(self.prefix) and request["method"] != "OPTIONS":
                    body = request.get("postData")
                    if body is None and request.get("hasPostData"):
                        body = self._post_data(params["requestId"])
                    exchange = Exchange(params["requestId"], request["method"], request["url"], body)
                    self.exchanges.append(exchange)
                    self._by_id[params["requestId"]] = exchange
            elif message["method"] == "Network.responseReceived" and params["requestId"] in self._by_id:
                self._by_id[params["requestId"]].status = params["response"]["status"]
            elif message["method"] == "Network.loadingFinished" and params["requestId"] in self._by_id:
                exchange = self._by_id[params["requestId"]]
                try:
                    reply = self.driver.execute_cdp_cmd(
                        "Network.getResponseBody", {"requestId": exchange.request_id}
                    )
                    exchange.response_body = reply.get("body")
                except Exception:  # noqa: BLE001 - a body the browser already dropped: status is still known
                    exchange.response_body = None
                exchange.done = True
            elif message["method"] == "Network.loadingFailed" and params["requestId"] in self._by_id:
                self._by_id[params["requestId"]].done = True
        return self.exchanges

    def _post_data(self, request_id: str) -> str | None:
        try:
            return self.driver.execute_cdp_cmd("Network.getRequestPostData", {"requestId": request_id})[
                "postData"
            ]
        except Exception:  # noqa: BLE001 - not available any more
            return None

    def wait(self, predicate: Callable[[Exchange], bool], timeout: float, what: str) -> list[Exchange]:
        """Exchanges (answered, body read) matching `predicate`, polling until there is at least one."""

        def ready() -> list[Exchange]:
            self.poll()
            return [e for e in self.exchanges if e.done and predicate(e)]

        return wait_until(ready, timeout, what)

    def clear(self) -> None:
        self.poll()
        self.exchanges.clear()
        self._by_id.clear()
