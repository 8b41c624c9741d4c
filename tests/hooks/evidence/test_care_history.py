"""hooks/evidence/care_history.py: PT (and whether it was a course), injections, referrals, prior surgery.

"Failed conservative care" needs a documented course, not one visit; prior lumbar surgery means the MRI
needs contrast (72158).
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
    encounter,
    order,
    procedure,
)


def care(*resources):
    b = builder()
    ch = chart(*resources)
    return b.care.read(ch, b.narratives(ch, set()))


def refs(items) -> list[str]:
    return [e.ref for e in items]


# -- physical therapy ----------------------------------------------------------------------------------------


def test_one_evaluation_is_pt_but_not_a_course():
    found = care(procedure("97161", id="eval", when=days_ago(30)))
    assert refs(found.pt) == ["Procedure/eval"]
    assert found.pt_course == []


def test_sessions_on_three_days_over_two_weeks_are_a_course():
    sessions = [
        procedure("97161", id="p1", when=days_ago(40)),
        procedure("97110", id="p2", when=days_ago(30)),
        procedure("97112", id="p3", when=days_ago(20)),
    ]
    found = care(*sessions)
    assert refs(found.pt) == ["Procedure/p1", "Procedure/p2", "Procedure/p3"]  # oldest first
    [course] = found.pt_course
    assert course.what == "course of PT" and course.when == day_of(20)
    assert course.text == f"3 PT sessions from {day_of(40).isoformat()} to {day_of(20).isoformat()}"


def test_three_sessions_within_a_week_are_not_yet_a_course():
    sessions = [procedure("97110", when=days_ago(d)) for d in (10, 8, 6)]
    assert care(*sessions).pt_course == []


def test_two_sessions_far_apart_are_not_a_course():
    assert care(procedure("97110", when=days_ago(60)), procedure("97110", when=days_ago(10))).pt_course == []


@pytest.mark.parametrize("code", ["97110", "97112", "97140", "97530"])
def test_pt_treatment_codes_count_as_pt(code):
    assert len(care(procedure(code)).pt) == 1


def test_pt_visits_named_by_text_count_as_a_course():
    visits = [encounter(text="Physical therapy visit", when=days_ago(d)) for d in (40, 30, 20)]
    found = care(*visits)
    assert len(found.pt) == 3 and len(found.pt_course) == 1
    planned = encounter(text="Physical therapy visit", status="planned")
    assert care(planned).pt == []


def test_pt_referral_order_is_pt_but_not_a_session():
    found = care(order("306170007", system="snomed", status="active", id="ref"))
    assert refs(found.pt) == ["ServiceRequest/ref"] and found.pt_course == []


@pytest.mark.parametrize(
    "text",
    [
        "Patient completed 6 weeks of physical therapy without improvement.",
        "Failed conservative management including NSAIDs.",
        "Symptoms persist despite a course of formal physical therapy.",
    ],
)
def test_a_documented_course_in_a_note(text):
    [course] = care(document(text)).pt_course
    assert course.what == "course of PT" and course.text == text


@pytest.mark.parametrize(
    "text",
    ["Had one PT visit last week.", "Will start physical therapy next week.", "Declined physical therapy."],
)
def test_one_visit_or_a_plan_is_not_a_course(text):
    assert care(document(text)).pt_course == []


# -- injections and referrals --------------------------------------------------------------------------------


def test_injection_done_counts_an_injection_only_ordered_does_not():
    assert refs(care(procedure("64483", id="esi")).esi) == ["Procedure/esi"]
    assert refs(care(order("64483", status="completed", id="done")).esi) == ["ServiceRequest/done"]
    assert care(order("64483", status="active")).esi == []


def test_injection_with_a_local_code_named_by_text():
    assert len(care(procedure(None, text="Left L5 transforaminal epidural steroid injection")).esi) == 1


def test_spine_referral_by_code_and_by_visit():
    assert len(care(order("308482002", system="snomed", status="active")).spine_referral) == 1
    assert len(care(encounter(text="Neurosurgery consultation", status="finished")).spine_referral) == 1
    assert care(encounter(text="Neurosurgery consultation", status="planned")).spine_referral == []


# -- prior surgery -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["22612", "22630", "22633", "63030", "63047"])
def test_prior_fusion_or_decompression_procedure_codes(code):
    assert len(care(procedure(code, when=days_ago(2000))).prior_surgery) == 1


@pytest.mark.parametrize("code", ["Z98.1", "Z98.890"])
def test_prior_surgery_status_codes(code):
    assert len(care(condition(code, text="Post-procedural status")).prior_surgery) == 1


def test_prior_surgery_named_by_a_local_procedure_text():
    assert len(care(procedure(None, text="L4-5 TLIF")).prior_surgery) == 1


@pytest.mark.parametrize(
    "text",
    [
        "Past surgical history: s/p L4-5 laminectomy in 2019.",
        "History of L5-S1 microdiscectomy.",
        "Status post lumbar fusion, hardware intact.",
    ],
)
def test_prior_surgery_in_history_text(text):
    [found] = care(document(text)).prior_surgery
    assert found.what == "prior lumbar surgery" and found.text == text


@pytest.mark.parametrize(
    "text",
    [
        "Discussed possible L4-5 microdiscectomy if no improvement.",
        "Not a candidate for lumbar fusion at this time.",
        "Cervical fusion in 2015.",
    ],
)
def test_planned_declined_or_non_lumbar_surgery_is_not_prior_lumbar_surgery(text):
    assert care(document(text)).prior_surgery == []


# -- tumour or infection: contrast MRI -----------------------------------------------------------------------


def test_active_cancer_or_infection_calls_for_contrast_history_of_does_not():
    assert len(care(condition("C50.911", text="Malignant neoplasm of right breast")).tumor_or_infection) == 1
    assert (
        len(care(condition("M46.26", text="Osteomyelitis of vertebra, lumbar region")).tumor_or_infection)
        == 1
    )
    assert (
        care(condition("Z85.3", text="Personal history of malignant neoplasm of breast")).tumor_or_infection
        == []
    )
    resolved = condition("C50.911", text="Malignant neoplasm of right breast", clinical="resolved")
    assert care(resolved).tumor_or_infection == []
