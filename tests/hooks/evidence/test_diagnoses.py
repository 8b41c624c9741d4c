"""hooks/evidence/diagnoses.py: radiculopathy diagnoses (confirmed or not) and radicular symptoms.

A provisional, differential or rule-out radiculopathy is never offered for linking to an order (outpatient
coding does not code "rule out"), but it still counts as a symptom of the current episode.
"""

from __future__ import annotations

import pytest

from tests.hooks.factories import (
    builder,
    chart,
    condition,
    day_of,
    days_ago,
    document,
    observation,
    questionnaire,
)


def dx(*resources):
    b = builder()
    ch = chart(*resources)
    return b.diagnoses.read(ch, b.narratives(ch, set()))


def codes(items) -> list[str]:
    return [e.code for e in items]


def test_confirmed_active_radiculopathy_is_on_the_chart_with_its_display():
    found = dx(condition("M54.17", text="Lumbosacral radiculopathy", onset=days_ago(20), id="c1"))
    [item] = found.radiculopathy
    assert (item.ref, item.code, item.when, item.label) == (
        "Condition/c1",
        "M54.17",
        day_of(20),
        "Problem list",
    )
    assert item.display == "Radiculopathy, lumbosacral region"
    assert codes(found.symptom_conditions) == ["M54.17"]


def test_missing_verification_status_counts_as_confirmed():
    assert codes(dx(condition("M54.16", text="Lumbar radiculopathy", verification=None)).radiculopathy) == [
        "M54.16"
    ]


def test_snomed_radiculopathy_counts():
    found = dx(condition("128196005", system="snomed", text="Lumbar radiculopathy"))
    assert codes(found.radiculopathy) == ["128196005"]


@pytest.mark.parametrize("status", ["provisional", "differential", "unconfirmed"])
def test_unconfirmed_radiculopathy_is_not_linkable_but_is_a_symptom(status):
    found = dx(condition("M54.17", text="Lumbosacral radiculopathy", verification=status))
    assert found.radiculopathy == []
    assert codes(found.symptom_conditions) == ["M54.17"]


@pytest.mark.parametrize(
    "text",
    [
        "R/O lumbar radiculopathy",
        "Possible lumbar radiculopathy",
        "Rule out L5 radiculopathy",
        "Lumbar radiculopathy?",
    ],
)
def test_rule_out_wording_makes_a_coded_radiculopathy_unconfirmed(text):
    found = dx(condition("M54.16", text=text))
    assert found.radiculopathy == [] and codes(found.symptom_conditions) == ["M54.16"]


@pytest.mark.parametrize(
    "kw", [{"verification": "refuted"}, {"verification": "entered-in-error"}, {"clinical": "resolved"}]
)
def test_refuted_withdrawn_or_resolved_radiculopathy_is_nothing(kw):
    found = dx(condition("M54.16", text="Lumbar radiculopathy", **kw))
    assert found.radiculopathy == [] and found.symptom_conditions == []


def test_sciatica_code_is_a_radicular_symptom_not_a_radiculopathy():
    found = dx(condition("M54.42", text="Lumbago with sciatica, left side"))
    assert found.radiculopathy == []
    assert codes(found.symptom_conditions) == ["M54.42"]
    assert [e.what for e in found.radicular_symptoms] == ["radicular symptoms"]


def test_unrelated_diagnoses_are_ignored():
    found = dx(condition("M47.816", text="Spondylosis without myelopathy or radiculopathy, lumbar region"))
    assert (found.radiculopathy, found.symptom_conditions, found.radicular_symptoms) == ([], [], [])


@pytest.mark.parametrize(
    "text",
    [
        "Pain shoots down the left leg to the foot.",
        "Burning pain into the left calf.",
        "Left-sided sciatica.",
        "Numbness and tingling in the left foot.",
    ],
)
def test_radicular_symptoms_in_notes_including_patients_words(text):
    [found] = dx(document(text)).radicular_symptoms
    assert found.text == text and found.what == "radicular symptoms"


@pytest.mark.parametrize(
    "text",
    [
        "Denies radiating leg pain. Axial back pain only.",
        "No sciatica.",
        "Return if pain radiates down the leg.",
    ],
)
def test_denied_or_hypothetical_radicular_symptoms_do_not_count(text):
    assert dx(document(text)).radicular_symptoms == []


def test_radicular_symptoms_answered_on_forms():
    yes = questionnaire([("Does the pain radiate down your leg?", {"valueString": "Yes"})])
    no = questionnaire([("Does the pain radiate down your leg?", {"valueString": "No"})])
    assert [e.text for e in dx(yes).radicular_symptoms] == ["Does the pain radiate down your leg?: Yes"]
    assert dx(no).radicular_symptoms == []
    assert len(dx(observation("Leg pain radiating", valueBoolean=True)).radicular_symptoms) == 1
