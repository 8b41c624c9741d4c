"""The error contract under real gunicorn (deploy/gunicorn.conf.py), which the test client cannot show.

Issue 12: a malformed chunked body got 500 and a chunked body over the limit 400; 414, 431 and the
worker-timeout 500 were HTML, written by gunicorn itself; a 137 KB report got the worker killed (30 s).
One server serves the module, with a 4 s worker timeout so the last test stays short: the hostile reports
now take a fraction of a second, and took 25-28 s each before the text fixes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from benchmarks.server import Gunicorn
from benchmarks.text_cost import SHAPES, hostile_report_request
from cds.app import create_app
from cds.cards import Card, Source
from cds.config import Settings
from cds.registry import HookInput, Service
from hooks.app import services as clinical_services
from tests.builders import pv_request
from tests.httpraw import chunked, exchange, request

TIMEOUT_S = 4
LIMIT = 1024 * 1024
PV = "/cds-services/l5-radiculopathy-patient-view"


def _stuck(inp: HookInput) -> list[Card]:
    time.sleep(float(os.environ.get("SPINE_CDS_TEST_STUCK_S", "60")))  # past the worker timeout
    return [Card(summary="never", indicator="info", source=Source(label="test"))]


def contract_app() -> Flask:
    """The production services plus one that outlives the worker timeout."""
    settings = Settings.load()
    stuck = Service(id="stuck", hook="patient-view", title="Stuck", description="sleeps", handler=_stuck)
    return create_app(settings, [*clinical_services(settings), stuck])


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    env = {"GUNICORN_TIMEOUT": str(TIMEOUT_S), "CDS_MAX_BODY_BYTES": str(LIMIT), "CDS_LOG_LEVEL": "INFO"}
    server = Gunicorn("tests.test_gunicorn_contract:contract_app()", workers=2, threads=None, env=env)
    with server:
        yield server.port


def _post_json(port: int, path: str, body: object) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    response = exchange(port, request("POST", path, json.dumps(body).encode(), headers))
    return response.status, response.json()


@pytest.mark.parametrize(
    "body",
    [
        hostile_report_request(),  # issue 12's 137 KB request: five 20,000-character attachments
        hostile_report_request(unit=SHAPES["one mention per line"]),
        hostile_report_request(chars=40_000, unit="<a ", content_type="text/html"),
    ],
    ids=["137KB-no-side", "one-mention-per-line", "unclosed-html"],
)
def test_hostile_reports_are_answered_by_the_worker_not_killed(port: int, body: dict) -> None:
    status, answer = _post_json(port, PV, body)
    assert status == 200, answer
    assert isinstance(answer["cards"], list)


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2;a\x00=b\r\n{}\r\n0\r\n\r\n", b"10\r\n{}"],
    ids=["bad-size", "missing-terminator", "bad-extension", "truncated"],
)
def test_malformed_chunked_bodies_get_json_400(port: int, framing: bytes) -> None:
    raw = request("POST", PV, framing, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response = exchange(port, raw)
    assert response.status == 400
    assert response.json()["error"] == "malformed-body"


def test_well_formed_chunked_body_is_read_like_any_other(port: int) -> None:
    body = json.dumps(hostile_report_request(attachments=1, chars=2000)).encode()
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    response = exchange(port, request("POST", PV, chunked(body[:10], body[10:4000], body[4000:]), headers))
    assert response.status == 200 and isinstance(response.json()["cards"], list)


def test_chunked_body_over_the_limit_gets_413_not_400(port: int) -> None:
    over = chunked(*[b" " * 65536] * (LIMIT // 65536 + 1))
    raw = request("POST", PV, over, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response = exchange(port, raw)
    assert response.status == 413
    assert response.json()["error"] == "request-entity-too-large"


def test_long_request_line_and_large_headers_get_json_414_and_431(port: int) -> None:
    long_line = exchange(port, request("GET", "/cds-services?" + "a" * 9000))
    assert long_line.status == 414 and long_line.json()["error"] == "uri-too-long"
    big = exchange(port, request("GET", "/healthz", headers={"X-Big": "a" * 9000}))
    assert big.status == 431 and big.json()["status"] == 431
    many = exchange(port, request("GET", "/healthz", headers={f"X-{i}": "a" for i in range(150)}))
    assert many.status == 431 and many.json()["error"] == "request-header-fields-too-large"


def test_unparsable_request_line_gets_json_400(port: int) -> None:
    response = exchange(port, b"GARBAGE\r\n\r\n")
    assert response.status == 400 and response.json() == {
        "error": "bad-request",
        "message": "malformed HTTP request",
        "status": 400,
    }


def test_405_names_the_allowed_methods(port: int) -> None:
    response = exchange(port, request("PUT", "/cds-services", b""))
    assert response.status == 405 and response.json()["status"] == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "OPTIONS"}


def test_worker_timeout_answers_json_and_the_worker_is_replaced(port: int) -> None:
    """Last in the module: it costs one worker timeout (4 s here, 30 s in production)."""
    started = time.monotonic()
    status, answer = _post_json(port, "/cds-services/stuck", pv_request())
    assert status == 500 and answer["error"] == "worker-timeout", answer
    assert f"({TIMEOUT_S} s)" in answer["message"]
    assert time.monotonic() - started < 30  # the arbiter stopped it; it did not run its 60 s
    healthy = exchange(port, request("GET", "/healthz"))  # a replacement worker serves
    assert healthy.status == 200
