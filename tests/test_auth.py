"""Issue 5: the CDS client must prove who it is (JWT), and a request can never steer our fetches.

Every rejection test is a real negative case against a service that otherwise accepts the call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds.app import create_app
from cds.authentication import StartupError
from tests.builders import make_test_services, pv_request, searchset, settings

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
FHIR = "https://ehr.example.org/fhir/"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_EC = ec.generate_private_key(ec.SECP384R1())


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algo = (
        jwt.algorithms.ECAlgorithm
        if isinstance(key, ec.EllipticCurvePublicKey)
        else jwt.algorithms.RSAAlgorithm
    )
    return {**json.loads(algo.to_jwk(key)), "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk(EC_KEY.public_key(), "ec-1"), jwk(RSA_KEY.public_key(), "rsa-1")]}


def token(
    path: str = "/cds-services/test-patient-view",
    *,
    key: Any = EC_KEY,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "iss": ISS,
        "aud": BASE + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "sub": "ehr-client",
        **claims,
    }
    header = {"typ": "JWT", **({"kid": kid} if kid else {}), **(headers or {})}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=alg, headers=header)


def trusted_file(tmp_path, **client: Any) -> str:
    path = tmp_path / "trusted.json"
    entry = {"iss": ISS, "jwks": JWKS, "fhir_servers": [FHIR], **client}
    path.write_text(json.dumps([entry]))
    return str(path)


@pytest.fixture
def secure_client(tmp_path):
    app = create_app(
        settings(auth="required", trusted_clients=trusted_file(tmp_path), public_base_url=BASE),
        services=make_test_services(),
    )
    return app.test_client()


def call(client, bearer: str | None, body: dict[str, Any] | None = None, path: str = "test-patient-view"):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    body = body or pv_request({"patient": None, "conditions": searchset(), "observations": None})
    return client.post(f"/cds-services/{path}", json=body, headers=headers)


def assert_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {
        "error": "unauthorized",
        "message": "authentication required",
        "status": 401,
    }


def test_es384_and_rs384_are_accepted(secure_client):
    assert call(secure_client, token()).status_code == 200
    assert call(secure_client, token(key=RSA_KEY, alg="RS384", kid="rsa-1")).status_code == 200
    discovery = secure_client.get(
        "/cds-services", headers={"Authorization": f"Bearer {token('/cds-services')}"}
    )
    assert discovery.status_code == 200 and discovery.get_json()["services"]


def test_missing_token_and_discovery_without_token(secure_client):
    assert_401(call(secure_client, None))
    assert_401(secure_client.get("/cds-services"))


def test_preflight_stays_unauthenticated(secure_client):
    r = secure_client.options(
        "/cds-services/test-patient-view",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200 and "Access-Control-Allow-Origin" in r.headers


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def claims(path: str = "/cds-services/test-patient-view") -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISS, "aud": BASE + path, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}


def test_alg_none_is_rejected(secure_client):
    assert_401(call(secure_client, unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims())))


def test_hs256_signed_with_the_public_key_is_rejected(secure_client):
    pem = EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload = {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}".encode()
    forged = unsigned(header, payload, hmac.new(pem, signing_input, hashlib.sha256).digest())
    assert_401(call(secure_client, forged))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: token(aud=BASE + "/cds-services/other"), id="wrong-aud"),
        pytest.param(
            lambda: token(aud="https://evil.example.com/cds-services/test-patient-view"), id="aud-host"
        ),
        pytest.param(lambda: token(exp=int(time.time()) - 120), id="expired"),
        pytest.param(lambda: token(iat=int(time.time()) + 600, exp=int(time.time()) + 900), id="future-iat"),
        pytest.param(lambda: token(nbf=int(time.time()) + 600), id="nbf-future"),
        pytest.param(lambda: token(kid=None), id="missing-kid"),
        pytest.param(lambda: token(kid="ec-unknown"), id="unknown-kid"),
        pytest.param(lambda: token(key=OTHER_EC), id="wrong-key"),
        pytest.param(lambda: token(iss="https://untrusted.example.com"), id="untrusted-iss"),
        pytest.param(lambda: token(jti=None), id="missing-jti"),
        pytest.param(lambda: token(headers={"typ": "at+jwt"}), id="typ-not-jwt"),
        pytest.param(lambda: token(key=RSA_KEY, alg="RS256", kid="rsa-1"), id="rs256-not-configured"),
    ],
)
def test_rejected_tokens(secure_client, make):
    assert_401(call(secure_client, make()))


def test_tampered_payload_is_rejected(secure_client):
    header, payload, signature = token().split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["sub"] = "someone-else"
    assert_401(call(secure_client, f"{header}.{b64(json.dumps(data).encode())}.{signature}"))


def test_replayed_jti_is_rejected(secure_client):
    reused = token()
    assert call(secure_client, reused).status_code == 200
    assert_401(call(secure_client, reused))


def test_rejection_reason_is_logged_not_returned(secure_client, capsys):
    assert_401(call(secure_client, token(exp=int(time.time()) - 120)))
    out = capsys.readouterr().out
    assert '"reason":"expired"' in out and "eyJ" not in out


@responses.activate
def test_unknown_kid_refetches_jwks_once_then_rejects(tmp_path):
    responses.get(JWKS_URL, json=JWKS)
    path = trusted_file(tmp_path, jwks=None, jwks_url=JWKS_URL)
    app = create_app(
        settings(auth="required", trusted_clients=path, public_base_url=BASE, jwks_refetch_interval_s=30),
        services=make_test_services(),
    )
    client = app.test_client()
    assert call(client, token()).status_code == 200
    assert len(responses.calls) == 1
    assert call(client, token()).status_code == 200
    assert len(responses.calls) == 1, "JWKS is cached"
    assert_401(call(client, token(kid="rotated")))
    assert_401(call(client, token(kid="rotated")))
    assert len(responses.calls) == 1, "refetch is rate-limited within the interval"

    app = create_app(
        settings(auth="required", trusted_clients=path, public_base_url=BASE, jwks_refetch_interval_s=0),
        services=make_test_services(),
    )
    responses.calls.reset()
    assert_401(call(app.test_client(), token(kid="rotated")))
    assert len(responses.calls) == 1, "one fetch, and no second attempt for the same unknown kid"


@responses.activate
def test_untrusted_jku_is_never_fetched(secure_client):
    responses.get("https://attacker.example.com/jwks.json", json=JWKS)
    assert_401(call(secure_client, token(headers={"jku": "https://attacker.example.com/jwks.json"})))
    assert len(responses.calls) == 0


@responses.activate
def test_allowlisted_jku_is_honoured(tmp_path):
    other = "https://keys.ehr.example.org/jwks.json"
    responses.get(other, json=JWKS)
    path = trusted_file(tmp_path, jwks=None, jwks_url=JWKS_URL, jku_allowlist=[other])
    app = create_app(
        settings(auth="required", trusted_clients=path, public_base_url=BASE), services=make_test_services()
    )
    assert call(app.test_client(), token(headers={"jku": other})).status_code == 200
    assert [c.request.url for c in responses.calls] == [other]


def test_audience_aliases(tmp_path):
    app = create_app(
        settings(
            auth="required",
            trusted_clients=trusted_file(tmp_path),
            public_base_url=BASE,
            aud_aliases=["https://cds.internal.example.org"],
        ),
        services=make_test_services(),
    )
    client = app.test_client()
    alias = "https://cds.internal.example.org/cds-services/test-patient-view"
    assert call(client, token(aud=alias)).status_code == 200


# -- where we fetch -------------------------------------------------------------------------------


def fetch_body(server: str) -> dict[str, Any]:
    return pv_request({"patient": None, "observations": None}, fhirServer=server)


@responses.activate
def test_fhir_server_must_belong_to_the_authenticated_client(secure_client):
    r = call(secure_client, token(), fetch_body("https://other-ehr.example.net/fhir"))
    assert r.status_code == 400 and "authenticated client" in r.get_json()["message"]
    r = call(secure_client, token(), fetch_body("https://ehr.example.org/fhirx"))
    assert r.status_code == 400
    assert len(responses.calls) == 0
    responses.get("https://ehr.example.org/fhir/r4/Condition", json=searchset())
    assert call(secure_client, token(), fetch_body("https://ehr.example.org/fhir/r4")).status_code == 200


@pytest.mark.parametrize(
    "server",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/fhir",
        "http://127.0.0.1:5432/fhir",
        "http://localhost/fhir",
        "http://metadata.google.internal/computeMetadata",
        "http://0.0.0.0/fhir",
        "http://[::ffff:169.254.169.254]/fhir",
        "file:///etc/passwd",
    ],
)
@responses.activate
def test_internal_fhir_servers_are_refused(server):
    app = create_app(settings(fhir_allowed_hosts=[]), services=make_test_services())
    r = app.test_client().post("/cds-services/test-patient-view", json=fetch_body(server))
    assert r.status_code == 400 and "fhirServer" in r.get_json()["message"]
    assert len(responses.calls) == 0


def test_host_resolving_to_loopback_is_refused_at_connect_time(monkeypatch):
    """A name resolving to 127.0.0.1 (DNS rebinding): the peer is checked before any byte is sent."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"resourceType": "Bundle", "type": "searchset"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "rebind.example.com":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    try:
        port = server.server_address[1]
        body = fetch_body(f"http://rebind.example.com:{port}/fhir")
        body["fhirServer"] = f"http://rebind.example.com:{port}/fhir"
        body["fhirAuthorization"] = {
            "access_token": "secret",
            "token_type": "Bearer",
            "expires_in": 60,
            "scope": "patient/*.read",
            "subject": "cds",
        }
        refused = create_app(settings(fhir_allowed_hosts=[]), services=make_test_services())
        r = refused.test_client().post("/cds-services/test-patient-view", json=body)
        assert r.status_code == 400 and "forbidden address" in r.get_json()["message"]
        assert hits == [], "nothing, and no token, reached the loopback server"
        allowed = create_app(
            settings(fhir_allowed_hosts=["rebind.example.com"]), services=make_test_services()
        )
        assert allowed.test_client().post("/cds-services/test-patient-view", json=body).status_code == 200
        assert hits == ["Bearer secret"], "an explicitly allowlisted host is reached"
    finally:
        server.shutdown()


def test_http_fhir_server_is_refused_in_prod(tmp_path):
    app = create_app(
        settings(
            profile="prod",
            auth="required",
            trusted_clients=trusted_file(tmp_path, fhir_servers=["http://ehr.example.org/fhir/"]),
            public_base_url=BASE,
        ),
        services=make_test_services(),
    )
    r = call(app.test_client(), token(), fetch_body("http://ehr.example.org/fhir"))
    assert r.status_code == 400 and "https" in r.get_json()["message"]


@responses.activate
def test_redirect_to_another_host_is_not_followed(secure_client):
    responses.get(
        "https://ehr.example.org/fhir/Condition",
        status=307,
        headers={"Location": "https://collector.example.net/Condition"},
    )
    r = call(secure_client, token(), fetch_body("https://ehr.example.org/fhir"))
    assert r.status_code == 412
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        "https://ehr.example.org/fhir/Condition"
    ]


def test_prod_refuses_to_start_without_trusted_clients(tmp_path):
    with pytest.raises(StartupError):
        create_app(settings(profile="prod"), services=make_test_services())
    empty = tmp_path / "empty.yaml"
    empty.write_text("[]\n")
    with pytest.raises(StartupError):
        create_app(settings(profile="prod", trusted_clients=str(empty)), services=make_test_services())


def test_dev_without_auth_warns_loudly(capsys):
    create_app(settings(), services=make_test_services())
    assert '"event":"auth.disabled"' in capsys.readouterr().out


def test_trusted_clients_yaml_is_accepted(tmp_path):
    path = tmp_path / "trusted.yaml"
    path.write_text(f"- iss: {ISS}\n  jwks: {json.dumps(JWKS)}\n  fhir_servers: ['{FHIR}']\n")
    app = create_app(
        settings(auth="required", trusted_clients=str(path), public_base_url=BASE),
        services=make_test_services(),
    )
    assert call(app.test_client(), token()).status_code == 200


# -- the replay cache shared through Redis -----------------------------------------------------------


def redis_url() -> str:
    url = os.environ.get("CDS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} is required in CI")
        pytest.skip(f"Redis at {url} is not reachable")
    return url


def test_replay_is_detected_across_two_app_instances_sharing_redis(tmp_path):
    url = redis_url()
    path = trusted_file(tmp_path)
    apps = [
        create_app(
            settings(auth="required", trusted_clients=path, public_base_url=BASE, redis_url=url),
            services=make_test_services(),
        )
        for _ in range(2)
    ]
    reused = token()
    assert call(apps[0].test_client(), reused).status_code == 200
    assert_401(call(apps[1].test_client(), reused))
    assert call(apps[1].test_client(), token()).status_code == 200


def test_only_the_demo_trusts_the_public_sandbox():
    """The sandbox's private key is published: the production example never trusts it, the demo file does."""
    from cds.client_trust import load_trusted_clients
    from tests.builders import ROOT

    example = {c.iss for c in load_trusted_clients(ROOT / "deploy" / "trusted-clients.example.json")}
    assert example and "https://sandbox.cds-hooks.org" not in example
    clients = {c.iss: c for c in load_trusted_clients(ROOT / "demo" / "trusted-clients.sandbox.json")}
    sandbox = clients["https://sandbox.cds-hooks.org"]
    assert sandbox.jwks_url == "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    assert sandbox.allows_jku("https://sandbox.cds-hooks.org/.well-known/jwks.json")
    assert sandbox.allows_fhir_server("https://launch.smarthealthit.org/v/r4/fhir")
    assert not sandbox.allows_fhir_server("https://launch.smarthealthit.org/v/r2/fhir")
