"""Where the FHIR fallback may connect: never loopback, link-local or cloud-metadata addresses.

A hook request names its own `fhirServer` and hands us a bearer token for it; without this guard a
crafted request could make the service send a live EHR token to an internal endpoint (SSRF).
Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: hospital FHIR servers live there.
Hosts in `allowed` (e.g. 127.0.0.1 for tests and the demo) bypass the address check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

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

    def refuse(self, url: str, *, resolve: bool) -> str | None:
        """Why `url` must not be fetched, or None. `resolve` also checks what the host name resolves to."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "not an http(s) URL"
        host = parts.hostname.lower()
        if host in self.allowed:
            return None
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            return _forbidden_ip(literal)
        if host in METADATA_NAMES or host == "localhost" or host.endswith(".localhost"):
            return "internal host name"
        if not resolve:
            return None
        try:
            infos = socket.getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError):
            return None  # unresolvable: the fetch itself fails with connection-error
        for info in infos:
            address = info[4][0]
            if address in self.allowed:
                continue
            reason = _forbidden_ip(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                return f"{host} resolves to a {reason}"
        return None
