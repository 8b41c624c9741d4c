"""Edge cases of the two rule sets beyond the brief's scenarios: other vendors' codes and wording,
configuration modes, and what the suggestions actually change."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from hooks.app import create_app as production_app
from tests.builders import FIXTURES, post, settings

SCEN = FIXTURES / "scenarios"
NOW = datetime(2026, 1, 15, 15, tzinfo=UTC)
SIGN = "emg-ncs-necessity-order-sign"
PV = "l5-radiculopathy-patient-view"


def load(name: str) -> dict[str, Any]:
    return json.loads((SCEN / name).read_text())


@pytest.fixture(scope="module")
def client():
    with production_app(settings(clock=NOW)).test_client() as c:
        yield c


def cards(client, service: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = post(client, service, body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def rules(found: list[dict[str, Any]]) -> list[str]:
    return sorted(c["source"]["topic"]["code"] for c in found)


def emg_order(body: dict[str, Any]) -> dict[str, Any]:
    return body["context"]["draftOrders"]["entry"][0]["resource"]


def only_emg(body: dict[str, Any]) -> dict[str, Any]:
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][:1]
    return body


# -- EMG/NCS necessity ---------------------------------------------------------------------------------


def test_icd_system_given_as_oid_still_matches(client):
    body = only_emg(load("09-edx-core-mismatch.json"))
    emg_order(body)["reasonCode"][0]["coding"][0]["system"] = "urn:oid:2.16.840.1.113883.6.90"
    assert rules(cards(client, SIGN, body)) == ["emg-dx-mismatch"]


def test_local_order_code_found_by_text(client):
    body = only_emg(load("09-edx-core-mismatch.json"))
    emg_order(body)["code"] = {
        "coding": [{"system": "urn:oid:1.2.3.local", "code": "EMG123"}],
        "text": "Electromyography w/ nerve conduction, bilateral legs",
    }
    assert rules(cards(client, SIGN, body)) == ["emg-dx-mismatch"]


def test_limb_from_text_upper_only_gets_no_card(client):
    body = only_emg(load("09-edx-core-mismatch.json"))
    order = emg_order(body)
    order.pop("bodySite")
    order["code"]["text"] = "EMG/NCS bilateral upper extremities (carpal tunnel)"
    assert cards(client, SIGN, body) == []


def test_unknown_limb_goes_on_and_says_so(client):
    body = only_emg(load("09-edx-core-mismatch.json"))
    order = emg_order(body)
    order.pop("bodySite")
    order["code"]["text"] = "EMG"
    (card,) = cards(client, SIGN, body)
    assert "does not name the limb" in card["detail"]


def test_update_suggestion_replaces_the_reason_and_keeps_the_order(client):
    body = only_emg(load("16-edx-new-deficits.json"))  # radicular findings documented: M54.16 is offered
    original = copy.deepcopy(emg_order(body))
    (card,) = cards(client, SIGN, body)
    assert card["selectionBehavior"] == "at-most-one"
    update = next(s for s in card["suggestions"] if "M54.16" in s["label"])["actions"][0]
    assert update["type"] == "update"
    resource = update["resource"]
    assert [c["code"] for rc in resource["reasonCode"] for c in rc["coding"]] == ["M54.16"]
    assert resource["reasonCode"][0]["coding"][0]["display"] == "Radiculopathy, lumbar region"
    for key in ("id", "status", "intent", "code", "subject", "bodySite", "authoredOn"):
        assert resource[key] == original[key], key
    delete = card["suggestions"][-1]["actions"][0]
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": "ServiceRequest/s16-emg",
    }
    referral = next(s for s in card["suggestions"] if "306109009" in s["label"])["actions"][0]["resource"]
    assert referral["status"] == "draft" and referral["intent"] == "order"
    assert referral["subject"] == {"reference": "Patient/pt-s16"}
    assert {o["code"] for o in card["overrideReasons"]} >= {"exam-supports-radiculopathy", "other"}


def test_prior_emg_and_mri_are_in_the_checklist(client):
    (card,) = cards(client, SIGN, load("09-edx-core-mismatch.json"))
    assert "needle EMG is part of this order" in card["detail"]
    assert "2 Sep 2025" in card["detail"] and "PLIF" in card["detail"], "MRI date and conclusion"
    body = load("09-edx-core-mismatch.json")
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][1:]  # the NCS alone
    (ncs,) = cards(client, SIGN, body)
    assert "10 Mar 2022, over 12 months ago" in ncs["detail"], "the old prior EMG is shown with its date"


def test_ncs_only_and_repeat_lines(client):
    (card,) = cards(client, SIGN, load("17-ncs-only-order.json"))
    assert "NCS without needle EMG" in card["detail"] and "**not met**" in card["detail"]
    (repeat,) = cards(client, SIGN, load("15-edx-repeat-within-12-months.json"))
    assert "already done within 12 months" in repeat["detail"]


def test_extended_mode_flags_other_no_radiculopathy_codes(tmp_path):
    knowledge = tmp_path / "site"
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "hooks" / "emg_necessity", knowledge / "emg_necessity"
    )
    policy = yaml.safe_load((knowledge / "emg_necessity/policy.yaml").read_text())
    body = only_emg(load("09-edx-core-mismatch.json"))
    emg_order(body)["reasonCode"][0]["coding"][0]["code"] = "M54.50"
    default = production_app(settings(clock=NOW)).test_client()
    assert cards(default, SIGN, body) == [], "default mode: only {M47.816} is a mismatch"
    policy["mode"] = "extended"
    (knowledge / "emg_necessity/policy.yaml").write_text(yaml.safe_dump(policy))
    extended = production_app(settings(clock=NOW, knowledge_dir=knowledge)).test_client()
    assert rules(cards(extended, SIGN, body)) == ["emg-dx-mismatch"]
    emg_order(body)["reasonCode"].append(
        {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.16"}]}
    )
    assert cards(extended, SIGN, body) == [], "a radiculopathy code on the order is never a mismatch"


def test_policy_wording_is_site_editable(tmp_path):
    knowledge = tmp_path / "site"
    shutil.copytree(
        Path(__file__).resolve().parent.parent / "hooks" / "emg_necessity", knowledge / "emg_necessity"
    )
    policy = yaml.safe_load((knowledge / "emg_necessity/cards.yaml").read_text())
    policy["sources"]["policy"] = {
        "label": "Site policy MP-123",
        "url": "https://intranet.example.org/mp-123",
    }
    (knowledge / "emg_necessity/cards.yaml").write_text(yaml.safe_dump(policy))
    client = production_app(settings(clock=NOW, knowledge_dir=knowledge)).test_client()
    (card,) = cards(client, SIGN, only_emg(load("09-edx-core-mismatch.json")))
    assert card["source"]["label"] == "Site policy MP-123"


def test_unresolved_reason_reference_is_reported(client):
    body = only_emg(load("09-edx-core-mismatch.json"))
    emg_order(body)["reasonReference"] = [{"reference": "Condition/not-anywhere"}]
    (card,) = cards(client, SIGN, body)
    assert "could not be read" in card["detail"] and "Condition/" not in card["detail"]


# -- L5 radiculopathy -------------------------------------------------------------------------------------


def test_emg_report_as_document_reference_is_read(client):
    body = load("01-l5-no-mri.json")
    report = body["prefetch"]["reports"]["entry"].pop(0)["resource"]
    note_text = "INDICATION: leg pain.\nIMPRESSION: " + report["conclusion"]
    import base64

    body["prefetch"]["documents"]["entry"].append(
        {
            "resource": {
                "resourceType": "DocumentReference",
                "id": "emg-note",
                "status": "current",
                "type": {
                    "coding": [{"system": "http://loinc.org", "code": "11505-5"}],
                    "text": "Procedure note",
                },
                "subject": {"reference": f"Patient/{body['context']['patientId']}"},
                "date": "2026-01-01T10:00:00Z",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "data": base64.b64encode(("EMG/NCS REPORT\n" + note_text).encode()).decode(),
                        }
                    }
                ],
            }
        }
    )
    found = cards(client, PV, body)
    assert rules(found) == ["conservative-care", "mri"]
    mri = next(c for c in found if c["source"]["topic"]["code"] == "mri")
    assert "EMG/NCS report, 1 Jan 2026" in mri["detail"] and "DocumentReference/" not in mri["detail"]
    assert mri["suggestions"][0]["actions"][0]["resource"]["reasonReference"] == [
        {"reference": "DocumentReference/emg-note"}
    ], "the suggested order still links the evidence"


def test_newest_emg_decides_even_when_older_one_was_positive(client):
    body = load("01-l5-no-mri.json")
    entries = body["prefetch"]["reports"]["entry"]
    newer = copy.deepcopy(entries[0]["resource"])
    newer.update(
        id="emg-newer",
        effectiveDateTime="2026-01-10",
        identifier=[{"value": "other"}],
        conclusion="Normal study. No electrodiagnostic evidence of lumbosacral radiculopathy.",
    )
    newer.pop("presentedForm", None)
    entries.append({"resource": newer})
    assert cards(client, PV, body) == []


def test_suggested_orders_are_complete_drafts_citing_the_emg(client):
    found = cards(client, PV, load("01-l5-no-mri.json"))
    mri = next(c for c in found if c["source"]["topic"]["code"] == "mri")
    resource = mri["suggestions"][0]["actions"][0]["resource"]
    assert resource["status"] == "draft" and resource["intent"] == "order"
    assert resource["subject"]["reference"].startswith("Patient/")
    assert resource["reasonCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    assert resource["reasonReference"][0]["reference"].startswith("DiagnosticReport/")


@pytest.mark.parametrize(
    "exam,severe",
    [
        ("L ankle dorsiflexion 3/5", True),
        ("EHL 2/5 on the left", True),
        ("3-/5 left tibialis anterior", True),
        ("L ankle dorsiflexion 3+/5", False),
        ("EHL 4-/5", False),
        ("Strength 5/5 throughout; no foot drop", False),
        ("Denies weakness. Ankle dorsiflexion 5/5.", False),
        ("Progressive left foot drop over 3 days", True),
    ],
)
def test_severe_motor_deficit_reading(client, exam, severe):
    body = load("01-l5-no-mri.json")
    pid = body["context"]["patientId"]
    body["prefetch"]["observations"]["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "exam-x",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "exam",
                            }
                        ]
                    }
                ],
                "code": {"text": "Motor exam"},
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": "2026-01-12",
                "valueString": exam,
            }
        }
    )
    assert ("motor-deficit" in rules(cards(client, PV, body))) is severe


def test_suspected_tumor_switches_to_contrast_mri(client):
    body = load("01-l5-no-mri.json")
    pid = body["context"]["patientId"]
    body["prefetch"]["conditions"]["entry"].append(
        {
            "resource": {
                "resourceType": "Condition",
                "id": "ca",
                "subject": {"reference": f"Patient/{pid}"},
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.911"}],
                    "text": "Malignant neoplasm of right female breast",
                },
            }
        }
    )
    mri = next(c for c in cards(client, PV, body) if c["source"]["topic"]["code"] == "mri")
    codes = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in mri["suggestions"]]
    assert codes[0] == "72158" and "because of Malignant neoplasm of right female breast" in mri["detail"]
