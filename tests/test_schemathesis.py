"""Schemathesis against the served openapi.yaml, under gunicorn with auth required (`make fuzz` only).

Every documented operation gets schema-valid and schema-invalid calls (examples, coverage, fuzzing and
stateful phases), signed with a fresh JWT each (tests/schemathesis_hooks.py). The checks (tests/
schemathesis.toml): no 5xx, every status and header documented, JSON where documented, responses match
their schemas, invalid data refused, calls without auth refused. Skipped when schemathesis is not
installed or SCHEMATHESIS_EXAMPLES is unset (`make test`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.server import Gunicorn

if "SCHEMATHESIS_EXAMPLES" not in os.environ:  # a few minutes: `make fuzz` sets it, `make test` does not
    pytest.skip("set SCHEMATHESIS_EXAMPLES (make fuzz) to run schemathesis", allow_module_level=True)
pytest.importorskip("schemathesis")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "schemathesis.toml"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "300"))  # per operation, per phase


def test_schemathesis_finds_nothing_against_openapi_yaml(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = tmp_path / "fuzz.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    trusted = tmp_path / "trusted.json"
    trusted.write_text(
        json.dumps(
            [
                {
                    "iss": "https://fuzz.example.org",
                    "jwks": {"keys": [{**public, "kid": "fuzz", "use": "sig"}]},
                    "fhir_servers": ["https://ehr.example.org/fhir/"],
                }
            ]
        )
    )
    env = {
        "CDS_AUTH": "required",
        "CDS_TRUSTED_CLIENTS": str(trusted),
        "CDS_DATA_DIR": str(tmp_path / "data"),
        "CDS_LOG_LEVEL": "ERROR",
    }
    # The JWT audience is the URL called: without CDS_PUBLIC_BASE_URL the service takes it from Host.
    with Gunicorn("hooks.app:create_app()", workers=2, threads=None, env=env) as server:
        base = f"http://127.0.0.1:{server.port}"
        st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
        result = subprocess.run(
            [
                st,
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.yaml",
                "--max-examples",
                str(EXAMPLES),
                "--no-color",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                "SPINE_CDS_FUZZ_KEY": str(pem),
                "SPINE_CDS_FUZZ_BASE": base,
                "PYTHONPATH": str(ROOT),
            },
            capture_output=True,
            text=True,
            timeout=3600,
        )
        print(result.stdout[-6000:])
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert server.process.poll() is None, "the server died under the fuzz"
