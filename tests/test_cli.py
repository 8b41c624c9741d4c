"""The `cds` command: discovery and offline evaluation print exactly what the HTTP API returns."""

from __future__ import annotations

import json

import pytest

from cds import cli
from cds.validator import validate_response
from tests.builders import PV_PREFETCH, condition, make_test_services, pv_request, searchset


def main(argv: list[str]) -> int:
    return cli.main(argv, services=lambda settings: make_test_services())


@pytest.fixture
def test_registry():
    """The command is handed test services (as `hooks.app.main` hands it the production ones)."""


def write(tmp_path, body) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_services_prints_discovery(test_registry, capsys):
    assert main(["services"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{") :])
    assert {s["id"] for s in doc["services"]} >= {"test-patient-view", "test-order-sign"}
    assert next(s for s in doc["services"] if s["id"] == "test-patient-view")["prefetch"] == PV_PREFETCH


def test_evaluate_json_is_the_exact_response(test_registry, tmp_path, capsys):
    body = pv_request(
        {"patient": None, "conditions": searchset(condition("c1", "M54.17")), "observations": None}
    )
    assert main(["evaluate", write(tmp_path, body), "--service", "test-patient-view", "--json"]) == 0
    out = capsys.readouterr().out
    response = json.loads(out[out.index("{") :])
    assert validate_response(response) == []
    assert response["cards"][0]["summary"] == "1 condition(s)"


def test_evaluate_text_output_and_errors(test_registry, tmp_path, capsys):
    body = pv_request({"patient": None, "conditions": searchset(), "observations": None})
    assert main(["evaluate", write(tmp_path, body), "--service", "test-patient-view"]) == 0
    assert "[INFO] 0 condition(s)  (rule count)" in capsys.readouterr().out
    assert main(["evaluate", write(tmp_path, pv_request({})), "--service", "test-patient-view"]) == 1
    assert "HTTP 412" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.json")]) == 2
    assert main(["evaluate", write(tmp_path, body), "--service", "nope"]) == 2
