"""Where the FHIR fallback may connect: never loopback, link-local or cloud-metadata addresses.

Two layers: `refuse()` rejects a URL by its literal address or host name before anything happens,
and `GuardedAdapter` checks the address each socket actually connected to, before a byte (or the
bearer token) is sent. The second layer makes DNS tricks (a name resolving to 127.0.0.1, rebinding)
useless and costs no extra DNS lookup.

A hook request names its own `fhirServer` and hands us a bearer token for it; without this guard a
crafted request could make the service send a live EHR token to an internal endpoint (SSRF).
Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: hospital FHIR servers live there.
Hosts in `allowed` (e.g. 127.0.0.1 for tests and the demo) bypass the address check.
The same connection classes register their sockets with the running transfer (`cds.transfer`), so a
hook call's deadline can cut a response that a server drips out byte by byte.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cds.transfer import track_socket

METADATA_NAMES = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "metadata.azure.com",
}
METADATA_IPS = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
}


def _forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA_IPS:
        return "cloud-metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "non-routable address"
    return None


class NetGuard:
    def __init__(self, allowed_hosts: list[str] | None = None) -> None:
        self.allowed = {h.strip().lower().strip("[]") for h in allowed_hosts or [] if h.strip()}

    def refuse(self, url: str) -> str | None:
        """Why `url` must not be fetched, judged from its literal address or host name, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "not an http(s) URL"
        host = parts.hostname.lower()
        if host in self.allowed:
            return None
        try:
            return _forbidden_ip(ipaddress.ip_address(host))
        except ValueError:
            pass
        if host in METADATA_NAMES or host == "localhost" or host.endswith(".localhost"):
            return "internal host name"
        return None

    def refuse_peer(self, host: str | None, address: str) -> str | None:
        """Why a socket connected to `address` (for `host`) must not be used, or None."""
        if (host or "").lower().strip("[]") in self.allowed or address in self.allowed:
            return None
        try:
            reason = _forbidden_ip(ipaddress.ip_address(address.split("%")[0]))
        except ValueError:
            return "unparseable peer address"
        return f"{host} resolves to a {reason}" if reason else None


class ForbiddenAddress(Exception):
    """Raised from inside the connection (not an OSError, so urllib3 does not retry or wrap it)."""


def _guarded(base: type, guard: NetGuard) -> type:
    class Guarded(base):  # type: ignore[misc, valid-type]
        def _new_conn(self):
            sock = super()._new_conn()
            try:
                peer = sock.getpeername()[0]
            except OSError:
                peer = ""
            reason = guard.refuse_peer(self.host, peer)
            if reason:
                sock.close()
                raise ForbiddenAddress(reason)
            track_socket(sock, new=True)  # the call's deadline also bounds the TLS handshake
            return sock

        def getresponse(self):
            track_socket(self.sock)  # a reused connection: the deadline bounds headers and body
            return super().getresponse()

    return Guarded


class GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: NetGuard, **kwargs) -> None:
        self._guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_pool = type(
            "GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _guarded(HTTPConnection, self._guard)}
        )
        https_pool = type(
            "GuardedHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": _guarded(HTTPSConnection, self._guard)},
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
