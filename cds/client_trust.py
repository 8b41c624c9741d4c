"""Who may call us: JWT verification of CDS clients (CDS Hooks 2.0 "Trusting CDS Clients").

PyJWT (with cryptography) does the cryptography; this module decides which keys to trust. Keys come
only from a trusted client's configured JWKS (inline or URL); a `jku` header is honoured only when
that client allowlists it, so a token can never make us fetch an arbitrary URL. Failures raise
`AuthError(reason)`: the reason is logged and counted, never returned to the caller.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jwt
import requests
import yaml

ASYMMETRIC = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}


class AuthError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TrustUnavailable(Exception):
    """A dependency of verification (the Redis replay cache) is down: the caller's credentials may be fine,
    so this is a 503 with Retry-After, never a 401 that tells an EHR its credentials are bad."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TrustedClient:
    iss: str
    fhir_servers: tuple[str, ...]
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku: tuple[str, ...] = ()  # extra JWKS URLs this client may name in a token header
    tenant: str | None = None

    def allows_jku(self, url: str) -> bool:
        return url == self.jwks_url or url in self.jku

    def allows_fhir_server(self, url: str) -> bool:
        """Prefix match on whole path segments: https://ehr/fhir/ allows https://ehr/fhir/r4, not https://ehr/fhirx."""
        target = url.rstrip("/") + "/"
        return any(target.startswith(base.rstrip("/") + "/") for base in self.fhir_servers)


def load_trusted_clients(path: str | Path) -> list[TrustedClient]:
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if isinstance(data, dict) and "clients" in data:
        data = data["clients"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: trusted clients must be a list")
    clients = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("iss"), str):
            raise ValueError(f"{path}: client {i} needs an iss")
        if not (item.get("jwks_url") or isinstance(item.get("jwks"), dict)):
            raise ValueError(f"{path}: client {item['iss']} needs jwks_url or an inline jwks")
        servers = item.get("fhir_servers") or []
        if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
            raise ValueError(f"{path}: client {item['iss']} fhir_servers must be a list of URLs")
        clients.append(
            TrustedClient(
                iss=item["iss"],
                fhir_servers=tuple(servers),
                jwks_url=item.get("jwks_url"),
                jwks=item.get("jwks"),
                jku=tuple(item.get("jku_allowlist") or ()),
                tenant=item.get("tenant"),
            )
        )
    return clients


class ReplayCache(Protocol):
    def seen(self, key: str, ttl_s: int, issued_at: float | None = None) -> bool:
        """Record key; True if it was already recorded and not yet expired, or if the cache cannot tell
        (it lost its memory after the token was issued: see RedisReplayCache)."""


class MemoryReplayCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def seen(self, key: str, ttl_s: int, issued_at: float | None = None) -> bool:
        now = time.monotonic()
        with self._lock:
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                return True
            if len(self._entries) >= self._max:
                self._entries = {k: v for k, v in self._entries.items() if v > now}
            self._entries[key] = now + max(ttl_s, 1)
            return False


# One round trip, atomic: record the jti (SET NX EX) and read the cache's epoch, the Redis time (whole
# seconds) at which this cache started remembering. A Redis that restarts empty has no epoch: the first call
# after it sets a new one, and tokens issued before that second are refused: their jti may be forgotten.
_SEEN_SCRIPT = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = redis.call('TIME')[1]
  redis.call('SET', KEYS[2], epoch)
end
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1])
if fresh then return {1, epoch} end
return {0, epoch}
"""


class RedisReplayCache:
    """The jti cache shared by every worker and replica (SET NX EX), with an epoch that survives nothing.

    Redis persistence decides what a restart keeps (README "Production": AOF with appendfsync always,
    maxmemory-policy noeviction). When Redis comes back empty anyway, the missing epoch says so, and every
    token issued before the new epoch is refused until it expires: a replay across the restart fails
    closed, at the price of a 401 for a call whose token was signed just before the restart.
    Unreachable or slow (0.5 s), it raises TrustUnavailable (503), never a 401.
    """

    def __init__(self, url: str, prefix: str = "spine-cds:jti:") -> None:
        import redis  # imported only when a Redis replay cache is configured

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._script = self._redis.register_script(_SEEN_SCRIPT)
        # An epoch from the start, so the very first token is not older than it. Unreachable now: the
        # first call sets it, or answers 503.
        with contextlib.suppress(Exception):
            self._redis.set(prefix + "epoch", self._redis.time()[0], nx=True)

    def seen(self, key: str, ttl_s: int, issued_at: float | None = None) -> bool:
        try:
            fresh, epoch = self._script(
                keys=[self._prefix + key, self._prefix + "epoch"], args=[max(ttl_s, 1)]
            )
        except Exception as exc:  # a replay cache we cannot reach must fail closed, as "try again"
            raise TrustUnavailable("replay-cache-unavailable") from exc
        if issued_at is not None and issued_at < int(epoch):
            # Issued in a second before the cache's memory began. (iat has whole seconds: a token of the
            # epoch's own second passes, so a replay across a data loss is possible for that one second.)
            return True
        return not fresh


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched: float = 0.0
    attempted: float = 0.0


class JwksCache:
    """JWKS per URL with a TTL; an unknown kid triggers at most one refetch per interval (key rotation)."""

    def __init__(self, session: requests.Session, ttl_s: float, refetch_interval_s: float) -> None:
        self.session = session
        self.ttl = ttl_s
        self.interval = refetch_interval_s
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _parse(document: Any) -> dict[str, jwt.PyJWK]:
        keys = {}
        for item in (document or {}).get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(item, dict) or not item.get("kid") or item.get("use", "sig") != "sig":
                continue
            try:
                keys[item["kid"]] = jwt.PyJWK(item)
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
        return keys

    def _fetch(self, url: str) -> dict[str, jwt.PyJWK]:
        response = self.session.get(url, timeout=(1.0, 2.0), allow_redirects=False)
        response.raise_for_status()
        if len(response.content) > 256 * 1024:
            raise ValueError("JWKS too large")
        return self._parse(response.json())

    def key(self, client: TrustedClient, kid: str, jku: str | None) -> jwt.PyJWK:
        if jku is None and client.jwks is not None:
            found = self._parse(client.jwks).get(kid)
            if found is None:
                raise AuthError("unknown-kid")
            return found
        url = jku or client.jwks_url
        if not url:
            raise AuthError("no-jwks")
        now = time.monotonic()
        with self._lock:
            entry = self._sets.setdefault(url, _KeySet())
            stale = now - entry.fetched > self.ttl
            missing = kid not in entry.keys
            may_fetch = now - entry.attempted >= self.interval
            if (stale or missing) and (may_fetch or not entry.fetched):
                entry.attempted = now
                try:
                    entry.keys = self._fetch(url)
                    entry.fetched = now
                except (requests.RequestException, ValueError) as exc:
                    if not entry.keys:
                        raise AuthError("jwks-unavailable") from exc
            found = entry.keys.get(kid)
        if found is None:
            raise AuthError("unknown-kid")
        return found


@dataclass(frozen=True)
class Caller:
    client: TrustedClient
    subject: str | None


class Authenticator:
    def __init__(
        self,
        clients: list[TrustedClient],
        jwks: JwksCache,
        replay: ReplayCache,
        algorithms: list[str],
        leeway_s: int,
        max_lifetime_s: int = 3600,
    ) -> None:
        self.clients = {c.iss: c for c in clients}
        self.jwks = jwks
        self.replay = replay
        self.algorithms = [a for a in algorithms if a in ASYMMETRIC]
        self.leeway = leeway_s
        self.max_lifetime = max_lifetime_s  # exp at most this far ahead: the replay cache keeps jti until exp

    def verify(self, authorization: str | None, audiences: list[str]) -> Caller:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing-token")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError("malformed-token") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthError(f"algorithm-not-allowed:{str(alg)[:10]}")
        if str(header.get("typ", "")).upper() != "JWT":
            raise AuthError("typ-not-jwt")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("missing-kid")
        client = self.clients.get(unverified.get("iss")) if isinstance(unverified.get("iss"), str) else None
        if client is None:
            raise AuthError("untrusted-issuer")
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or not client.allows_jku(jku)):
            raise AuthError("untrusted-jku")
        key = self.jwks.key(client, kid, jku)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audiences,
                issuer=client.iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"], "verify_aud": True},
            )
        except jwt.InvalidAudienceError as exc:
            raise AuthError("wrong-audience") from exc
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("not-yet-valid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"missing-claim:{exc.claim}") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("bad-signature") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid-token") from exc
        now = time.time()
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or iat > now + self.leeway:
            raise AuthError("iat-in-future")
        if client.tenant is not None and claims.get("tenant") != client.tenant:
            raise AuthError("wrong-tenant")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp - now > self.max_lifetime + self.leeway:
            raise AuthError("exp-too-far")  # its jti could not be remembered until it expires
        ttl = int(exp - now + self.leeway) + 1  # the jti is kept until the token expires, leeway included
        if self.replay.seen(f"{client.iss}|{claims['jti']}", max(ttl, 1), issued_at=iat):
            raise AuthError("replayed-jti")
        return Caller(client, claims.get("sub"))
