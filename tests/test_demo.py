"""`make demo`: its stories hold today, and its stack answers them from the FHIR server.

The unit tests check the templates (relative dates, valid FHIR on any day, one patient per story).
The integration tests start the stack exactly as `make demo` does (`demo.run.start_stack`, on free
ports) and call every service for every demo patient with prefetch absent, so the service fetches the
chart from the FHIR engine, as it does when the sandbox leaves a prefetch key out. Order hooks carry the
draft ServiceRequests read back from that server. The expected cards live in each story's template.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fhir.resources.R4B import get_fhir_model_class

from cds.config import Settings
from cds.validator import validate_response
from demo.run import ROOT, DemoStack, auth_lines, port_is_free, service_env, start_stack
from demo.stories import (
    ExpectedCard,
    ago,
    hook_request,
    load_stories,
    materialize,
    pdf_binaries,
    transaction,
)
from hooks.app import services
from tests.builders import card_order, suggestion_codes

STORIES = load_stories()
# The service catalogue, read from the registry (rule ids are declared once, on their service); the
# discovery test checks the running service serves exactly these.
DECLARED = services(Settings())
SERVICE_HOOKS = {s.id: s.hook for s in DECLARED}
RULES = {s.id: {r.id for r in s.rules} for s in DECLARED}
# Where the service disagrees with the story's clinical expectation: reported, not bent to pass.
# (story, service) pairs where the service is known to disagree with the story: none at present.
KNOWN_DISAGREEMENTS: dict[tuple[str, str], str] = {}
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
TRUSTED_EXAMPLE = ROOT / "demo" / "trusted-clients.sandbox.json"
ABSOLUTE_DATE = re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b")


# -- templates ---------------------------------------------------------------------------------------


def test_iso_durations_count_back_from_today() -> None:
    today = date(2026, 3, 31)
    assert ago("P0D", today) == today
    assert ago("P2W", today) == date(2026, 3, 17)
    assert ago("P58D", today) == date(2026, 2, 1)
    assert ago("P1M", today) == date(2026, 2, 28)  # month ends clamp
    assert ago("P1Y1M2D", date(2028, 3, 29)) == date(2027, 2, 26)
    assert ago("P1Y", date(2028, 2, 29)) == date(2027, 2, 28)
    for bad in ("P", "14", "P1H", "-P1D", "P1.5D"):
        with pytest.raises(ValueError):
            ago(bad, today)


def test_directives_become_dates_and_base64() -> None:
    template = {
        "onsetDateTime": {"$ago": "P1W"},
        "issued": {"$ago": "P1D", "time": "16:30:00Z"},
        "presentedForm": [{"data": {"$base64": "IMPRESSION: L5."}}],
        "status": "final",
    }
    out = materialize(template, date(2026, 11, 22))
    assert out["onsetDateTime"] == "2026-11-15"
    assert out["issued"] == "2026-11-21T16:30:00Z"
    assert base64.b64decode(out["presentedForm"][0]["data"]) == b"IMPRESSION: L5."
    assert out["status"] == "final"
    with pytest.raises(ValueError):
        materialize({"$ago": "P1D", "at": "noon"}, date(2026, 11, 22))


def test_pdf_directive_points_at_a_binary_holding_a_generated_pdf() -> None:
    template = {"presentedForm": [{"$pdf": {"binary": "b-1", "text": "IMPRESSION: L5.", "title": "r.pdf"}}]}
    out = materialize(template, date(2026, 11, 22))
    assert out["presentedForm"] == [{"contentType": "application/pdf", "url": "Binary/b-1", "title": "r.pdf"}]
    (binary,) = pdf_binaries(template)
    assert binary["id"] == "b-1" and base64.b64decode(binary["data"]).startswith(b"%PDF-")
    with pytest.raises(ValueError):
        materialize({"$pdf": {"binary": "b-1"}}, date(2026, 11, 22))


def test_at_least_two_stories_keep_their_emg_report_as_a_binary_pdf() -> None:
    """The sandbox path must exercise fetching and reading a PDF (issue 14)."""
    with_pdf = [
        s.key for s in STORIES if any(r["resourceType"] == "Binary" for r in s.resources(date.today()))
    ]
    assert len(with_pdf) >= 2, with_pdf
    for story in STORIES:
        for report in (r for r in story.resources(date.today()) if r["resourceType"] == "DiagnosticReport"):
            if any("url" in a for a in report.get("presentedForm", [])):
                assert "conclusion" not in report, f"{story.key}: the PDF must be where the finding is"


@pytest.mark.parametrize(
    "today", [date.today(), date.today() + timedelta(days=366)], ids=["today", "next-year"]
)
def test_every_story_is_valid_fhir_on_any_day(today: date) -> None:
    """The stories must stay true (and loadable) next year: nothing in them may be an absolute date."""
    ids: set[str] = set()
    for story in STORIES:
        for resource in story.resources(today):
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            rid = f"{resource['resourceType']}/{resource['id']}"
            assert rid not in ids, rid
            assert resource["id"].startswith(story.patient_id), f"{story.key}: {rid} is not namespaced"
            ids.add(rid)
            subject = resource.get("subject", {"reference": f"Patient/{story.patient_id}"})
            assert subject == {"reference": f"Patient/{story.patient_id}"}, f"{story.key}: {rid}"
        assert not ABSOLUTE_DATE.search(str(story.template)), f"{story.key} holds an absolute date"
        assert len(transaction(story, today)["entry"]) <= 50  # Medplum's limit of updates per transaction


def test_every_expected_card_states_its_wording() -> None:
    """Each demo card has its summary and key phrases written in its story (issue 13's wording check)."""
    unstated = [
        f"{story.key}/{service}/{card.rule}"
        for story in STORIES
        for service, cards in story.expect.items()
        for card in cards
        if card.summary is None or not card.reads
    ]
    assert unstated == []


def test_stories_cover_the_issue_and_name_real_rules() -> None:
    assert len(STORIES) >= 8
    assert len({s.patient_id for s in STORIES}) == len(STORIES)
    fired: set[str] = set()
    for story in STORIES:
        assert set(story.expect) <= set(SERVICE_HOOKS), story.key
        for service, cards in story.expect.items():
            assert {c.rule for c in cards} <= RULES[service], (story.key, service)
            fired |= {c.rule for c in cards}
        assert story.sandbox_order or story.sandbox_gap, story.key
    # Every patient-view card and both EMG/NCS cards appear in at least one story.
    assert RULES["l5-radiculopathy-patient-view"] | RULES["emg-ncs-necessity-order-sign"] <= fired
    assert "mri-documentation" in fired


def test_sandbox_links_open_the_right_screen() -> None:
    """The sandbox sends the URL's `hook` to every service its screen triggers: the patient-view screen
    triggers the patient-view services, PAMA only the order-select ones (it has no sign button). So a link
    may only name the hook its screen's services are registered for, and order-hook stories (EMG/NCS
    orders, which PAMA cannot pick) get no link but a replay."""
    fhir, discovery = "http://127.0.0.1:8103/fhir", "http://127.0.0.1:8080/cds-services"
    triggered = {"patient-view": "patient-view", "pama": "order-select"}
    for story in STORIES:
        links = [story.sandbox_url(fhir, discovery), story.sandbox_order_url(fhir, discovery)]
        if story.screen != "patient-view":
            assert links[0] is None and story.sandbox_gap, story.key
        for url in filter(None, links):
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://sandbox.cds-hooks.org/"
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            assert query["fhirServiceUrl"] == fhir and query["serviceDiscoveryURL"] == discovery
            assert query["patientId"] == story.patient_id
            screen = query.get("screen", "patient-view")
            assert query.get("hook", triggered[screen]) == triggered[screen], (story.key, url)
        assert (links[1] is None) == (story.sandbox_order is None), story.key
    local = STORIES[0].sandbox_url(fhir, discovery, sandbox="http://127.0.0.1:3001/")
    assert local and local.startswith("http://127.0.0.1:3001/?fhirServiceUrl=")


def test_every_coding_in_the_demo_data_has_a_display() -> None:
    """Clients show a coding's display (the CRD Request Generator shows "Unknown" without one), and our
    update suggestions echo the order's codings back."""

    def codings(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(value, dict):
            if "system" in value and "code" in value and "value" not in value:  # a Quantity has no display
                yield path, value
            for key, item in value.items():
                yield from codings(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from codings(item, f"{path}[{i}]")

    missing = [
        f"{story.key}: {path}"
        for story in STORIES
        for path, coding in codings(list(story.template), "resources")
        if not str(coding.get("display") or "").strip()
    ]
    assert missing == []
    assert sum(1 for story in STORIES for _ in codings(list(story.template), "")) > 100


def test_service_runs_with_the_real_clock_and_auth_off_unless_clients_are_trusted() -> None:
    inherited = {
        "CDS_CLOCK": "2026-01-15T00:00:00",
        "CDS_AUTH": "required",
        "CDS_TRUSTED_CLIENTS": "x.json",
        "CDS_DATABASE_URL": "postgresql://prod/cds",
    }
    env = service_env(inherited, state_dir=Path("/tmp/demo-state"))
    assert not {"CDS_CLOCK", "CDS_TRUSTED_CLIENTS", "CDS_DATABASE_URL"} & set(env)
    assert env["CDS_DATA_DIR"] == "/tmp/demo-state"  # its own SQLite audit, not make run's
    assert env["CDS_AUTH"] == "off" and env["CDS_PROFILE"] == "dev"
    assert "127.0.0.1" in env["CDS_FHIR_ALLOWED_HOSTS"].split(",")
    trusted = service_env(inherited, trusted_clients=TRUSTED_EXAMPLE)
    assert trusted["CDS_AUTH"] == "required" and trusted["CDS_TRUSTED_CLIENTS"] == str(TRUSTED_EXAMPLE)


# -- the running stack -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    running = start_stack(fhir_port=0, service_port=free_port(), state_dir=tmp_path_factory.mktemp("demo"))
    try:
        yield running
    finally:
        running.stop()


def as_expected(card: dict[str, Any]) -> ExpectedCard:
    suggestions = card.get("suggestions", [])
    return ExpectedCard(
        rule=card["source"]["topic"]["code"],
        indicator=card["indicator"],
        suggests=tuple(sorted(c for s in suggestions for c in suggestion_codes(s))),
        recommended=tuple(
            sorted(c for s in suggestions if s.get("isRecommended") for c in suggestion_codes(s))
        ),
        order=card_order(card),
    )


def _cases() -> list[Any]:
    cases = []
    for story in STORIES:
        for service in SERVICE_HOOKS:
            reason = KNOWN_DISAGREEMENTS.get((story.key, service))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(story, service, id=f"{story.key}:{service}", marks=marks))
    return cases


@pytest.mark.integration
def test_discovery_serves_the_four_services(stack: DemoStack) -> None:
    services = requests.get(stack.discovery_url, timeout=5).json()["services"]
    assert {s["id"]: s["hook"] for s in services} == SERVICE_HOOKS


@pytest.mark.integration
@pytest.mark.parametrize(("story", "service"), _cases())
def test_every_service_answers_every_story_from_the_fhir_server(
    stack: DemoStack, story: Any, service: str
) -> None:
    writing = story.orders_being_written(stack.today)
    body = hook_request(stack.fhir.base_url, story.patient_id, SERVICE_HOOKS[service], writing=writing)
    assert "prefetch" not in body
    if service != "l5-radiculopathy-patient-view":
        assert body["context"]["draftOrders"]["entry"], f"{story.key}: no draft order on the FHIR server"
    response = requests.post(f"{stack.discovery_url}/{service}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert validate_response(response.json()) == []
    cards = response.json()["cards"]
    got = sorted(map(as_expected, cards), key=repr)
    assert got == sorted(story.expect.get(service, ()), key=repr), story.title
    # The wording check: the story states what a clinician reads on each card.
    for expected in story.expect.get(service, ()):
        [card] = [c for c in cards if c["source"]["topic"]["code"] == expected.rule]
        if expected.summary is not None:
            assert card["summary"] == expected.summary
        missing = [phrase for phrase in expected.reads if phrase not in card.get("detail", "")]
        assert missing == [], f"{story.key}/{expected.rule}: detail lacks {missing}"
    # The chart came from the FHIR engine: the service logged every prefetch key as fetched.
    line = _log_line(stack.log_path, body["hookInstance"])
    assert line and set(line["prefetch"].values()) == {"fetched"}, line


def _log_line(path: Path, hook_instance: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The service's `hook.call` log entry for one call (it is written just after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in path.read_text(encoding="utf-8").splitlines():
            if hook_instance in raw and '"hook.call"' in raw:
                entry: dict[str, Any] = json.loads(raw)
                return entry
        time.sleep(0.05)
    return None


@pytest.mark.integration
def test_the_fhir_server_answers_what_the_sandbox_asks(stack: DemoStack) -> None:
    base = stack.fhir.base_url
    headers = {"Origin": SANDBOX_ORIGIN, "Accept": "application/fhir+json"}
    assert (
        requests.get(f"{base}/metadata", headers=headers, timeout=5).json()["fhirVersion"].startswith("4.0")
    )
    listed = requests.get(f"{base}/Patient", params={"_count": 100}, headers=headers, timeout=5).json()
    assert {s.patient_id for s in STORIES} <= {e["resource"]["id"] for e in listed.get("entry", [])}
    for story in STORIES:
        patient = requests.get(f"{base}/Patient/{story.patient_id}", headers=headers, timeout=5)
        assert patient.status_code == 200 and patient.json()["birthDate"] < date.today().isoformat()
    # Prefetch as the sandbox fills it: POST [type]/_search, form-encoded.
    found = requests.post(
        f"{base}/Condition/_search", data={"patient": STORIES[0].patient_id}, headers=headers, timeout=5
    )
    assert found.status_code == 200 and found.json()["total"] >= 1
    assert found.headers["Access-Control-Allow-Origin"] == SANDBOX_ORIGIN


@pytest.mark.integration
@pytest.mark.parametrize("target", ["service", "fhir"])
def test_private_network_access_preflight(stack: DemoStack, target: str) -> None:
    """Chrome lets the https sandbox call http://127.0.0.1 only if each preflight allows a private network."""
    url = (
        f"{stack.discovery_url}/l5-radiculopathy-patient-view"
        if target == "service"
        else (f"{stack.fhir.base_url}/Patient/{STORIES[0].patient_id}")
    )
    response = requests.options(
        url,
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST" if target == "service" else "GET",
            "Access-Control-Request-Headers": "authorization, content-type",
            "Access-Control-Request-Private-Network": "true",
        },
        timeout=5,
    )
    assert response.status_code in (200, 204)
    assert response.headers.get("Access-Control-Allow-Private-Network") == "true"
    assert response.headers.get("Access-Control-Allow-Origin") in (SANDBOX_ORIGIN, "*")
    allowed = {h.strip().lower() for h in response.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert {"authorization", "content-type"} <= allowed


@pytest.mark.integration
def test_make_demo_prints_every_story_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    """`python -m demo` as `make demo` runs it: the loud auth warning, one link per story, clean exit."""
    fhir_port, service_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo", "--fhir-port", str(fhir_port), "--port", str(service_port),
         "--state-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops"):
                break
        output = "\n".join(lines)
        assert "AUTH IS OFF" in output, output
        fhir, discovery = (
            f"http://127.0.0.1:{fhir_port}/fhir",
            f"http://127.0.0.1:{service_port}/cds-services",
        )
        for story in STORIES:
            assert story.title in output
            for link in (story.sandbox_url(fhir, discovery), story.sandbox_order_url(fhir, discovery)):
                assert link is None or link in output
        assert "hook=order-sign" not in output
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, "\n".join(lines)
    deadline = time.monotonic() + 10
    while not (port_is_free(fhir_port) and port_is_free(service_port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(fhir_port) and port_is_free(service_port), "a demo process outlived SIGTERM"


@pytest.mark.integration
def test_with_trusted_clients_the_demo_refuses_unsigned_calls(tmp_path: Path) -> None:
    """`python -m demo --trusted-clients demo/trusted-clients.sandbox.json`: the real sandbox's signed
    calls are the only way in; an unsigned call gets 401, and the browser's preflight still passes."""
    stack = start_stack(0, free_port(), tmp_path, trusted_clients=TRUSTED_EXAMPLE)
    try:
        body = hook_request(stack.fhir.base_url, STORIES[0].patient_id, "patient-view")
        unsigned = requests.post(
            f"{stack.discovery_url}/l5-radiculopathy-patient-view", json=body, timeout=10
        )
        assert unsigned.status_code == 401
        assert requests.get(stack.discovery_url, timeout=10).status_code == 401
        preflight = requests.options(
            stack.discovery_url,
            headers={
                "Origin": SANDBOX_ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
                "Access-Control-Request-Private-Network": "true",
            },
            timeout=10,
        )
        assert preflight.headers.get("Access-Control-Allow-Private-Network") == "true"
        assert "https://sandbox.cds-hooks.org" in "\n".join(auth_lines(stack))
    finally:
        stack.stop()
