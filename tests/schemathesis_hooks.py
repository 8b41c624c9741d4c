"""Schemathesis hooks for `make fuzz` (loaded by `st run` through SCHEMATHESIS_HOOKS): every generated call
is signed like a CDS client's, with a fresh JWT for its exact URL, so the auth checks are meaningful."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import jwt
import schemathesis
from cryptography.hazmat.primitives import serialization

ISS = "https://fuzz.example.org"


@schemathesis.auth()
class CdsClientJwt:
    """A fresh ES384 JWT per call (the service refuses a replayed jti), audience = the URL called."""

    def __init__(self) -> None:
        pem = Path(os.environ["SPINE_CDS_FUZZ_KEY"]).read_bytes()
        self.key = serialization.load_pem_private_key(pem, password=None)
        self.base = os.environ["SPINE_CDS_FUZZ_BASE"].rstrip("/")

    def get(self, case, ctx):
        return "unused"  # minted per call in set()

    def set(self, case, data, ctx):
        now = int(time.time())
        claims = {"iss": ISS, "aud": self.base + case.formatted_path, "iat": now, "exp": now + 300}
        claims["jti"] = str(uuid.uuid4())
        token = jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": "fuzz", "typ": "JWT"})
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
