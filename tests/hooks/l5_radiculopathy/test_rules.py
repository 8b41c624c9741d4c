"""hooks/l5_radiculopathy/rules.py on typed evidence, without HTTP: which rules fire and what the cards say.

The rules get a real CardKit (the shipped cards.yaml) and a stub builder that returns the PatientEvidence
each test constructs; windows and terminology are the real ones.
"""

from __future__ import annotations

from functools import cache

import pytest

from hooks.common.cardkit import CardKit, CardsFile
from hooks.common.schema import load_model
from hooks.evidence.care_history import CareEvidence
from hooks.l5_radiculopathy.rules import L5Rules
from tests.hooks.factories import (
    StubBuilder,
    emg_reading,
    ev,
    hook_input,
    mri_study,
    order,
    patient_evidence,
    rule_ids,
    terms,
    windows,
)

W = windows()
RED_FLAG = ev(
    "DocumentReference/ed1",
    2,
    "Bladder scan 740 mL after voiding.",
    "ED Provider Notes",
    what="urinary retention",
)
SEVERE = ev(
    "DocumentReference/n1", 3, "Left ankle dorsiflexion 2/5.", "Clinic note", what="severe L5 weakness"
)
PT_COURSE = CareEvidence(
    pt_course=[ev("Procedure/pt1", 30, "3 PT sessions", "PT sessions", what="course of PT")]
)


@cache
def cards_file() -> CardsFile:
    return load_model(CardsFile, "l5_radiculopathy/cards.yaml")


def rules(evidence, cards: CardsFile | None = None) -> L5Rules:
    return L5Rules(StubBuilder(evidence), CardKit(terms(), cards or cards_file()))


def patient_view(**kw):
    return rules(patient_evidence(**kw)).patient_view(hook_input())


def by_rule(found, rule: str):
    [card] = [c for c in found if c.rule == rule]
    return card


def suggested_codes(card) -> list[str]:
    return [s.actions[0].resource["code"]["coding"][0]["code"] for s in card.suggestions]


def selected(*orders, **kw):
    """order-select rules over these draft orders, all selected."""
    call = hook_input(
        hook="order-select", drafts=orders, selections=[f"ServiceRequest/{o.id}" for o in orders]
    )
    return rules(patient_evidence(**kw)).order_select(call)


# -- red flags and the deciding EMG --------------------------------------------------------------------------


def test_red_flag_suppresses_every_routine_card():
    found = patient_view(red_flags=[RED_FLAG], severe=[SEVERE], onset_ago=100)
    assert rule_ids(found) == ["red-flags"]
    card = found[0]
    assert card.indicator == "critical"
    assert "Urinary retention: ED Provider Notes, 28 Feb 2026" in card.detail
    assert "Bladder scan 740 mL" in card.detail
    assert suggested_codes(card) == ["72148", "308482002"]
    assert {s.actions[0].resource["priority"] for s in card.suggestions} == {"stat"}
    assert card.selectionBehavior == "any"


def test_red_flag_card_fires_even_without_an_emg_and_in_order_select():
    assert rule_ids(patient_view(emg=None, red_flags=[RED_FLAG])) == ["red-flags"]
    assert rule_ids(selected(order("64483", id="esi"), red_flags=[RED_FLAG])) == ["red-flags"]


def test_red_flag_card_does_not_suggest_an_order_already_placed():
    mri = terms().key(terms().uri["cpt"], "72148")
    card = patient_view(red_flags=[RED_FLAG], ordered={mri})[0]
    assert suggested_codes(card) == ["308482002"]


def test_no_positive_emg_no_routine_card():
    assert patient_view(emg=None) == []
    negative = emg_reading(positive=False, text="Normal study.")
    assert patient_view(emg=negative) == []


def test_emg_outside_the_lookback_does_not_fire():
    assert patient_view(emg=emg_reading(ago=W.emg_lookback + 1)) == []
    assert patient_view(emg=emg_reading(ago=W.emg_lookback - 1)) != []


# -- MRI card ------------------------------------------------------------------------------------------------


def test_no_mri_on_file_the_mri_card_comes_first():
    found = patient_view(onset_ago=20)
    assert rule_ids(found) == ["mri", "conservative-care"]
    mri = found[0]
    assert mri.indicator == "info"
    assert suggested_codes(mri) == ["72148", "72197"]
    assert mri.suggestions[0].isRecommended is True
    assert "**Lumbar MRI:** none on file since symptoms began" in mri.detail
    assert "Left L5 radiculopathy with active denervation" in mri.detail


@pytest.mark.parametrize(
    ("onset_ago", "indicator"), [(W.conservative_min - 1, "info"), (W.conservative_min, "warning")]
)
def test_mri_card_becomes_a_warning_at_six_weeks(onset_ago, indicator):
    assert by_rule(patient_view(onset_ago=onset_ago), "mri").indicator == indicator


def test_mri_card_with_a_motor_deficit_is_an_urgent_warning():
    found = patient_view(onset_ago=10, severe=[SEVERE])
    assert rule_ids(found)[:2] == ["mri", "motor-deficit"]
    mri = by_rule(found, "mri")
    assert mri.indicator == "warning"
    assert mri.suggestions[0].actions[0].resource["priority"] == "urgent"


def test_a_current_mri_or_a_pending_order_silences_the_mri_card():
    assert "mri" not in rule_ids(patient_view(mri=[mri_study(10)]))
    pending = ev("ServiceRequest/o1", 0, "MRI lumbar spine", "MRI order")
    assert "mri" not in rule_ids(patient_view(pending_mri=[pending]))


def test_an_mri_from_before_the_episode_or_over_a_year_old_does_not_count():
    assert "mri" in rule_ids(patient_view(onset_ago=20, mri=[mri_study(40)]))
    assert "mri" in rule_ids(patient_view(onset_ago=None, mri=[mri_study(W.imaging_lookback + 10)]))
    assert "mri" in rule_ids(patient_view(mri=[mri_study(5, plexus=True)]))


def test_prior_surgery_or_tumour_suggests_the_contrast_mri():
    surgery = CareEvidence(prior_surgery=[ev("Procedure/fusion", 900, "", "Procedure", "22612")])
    card = by_rule(patient_view(care=surgery), "mri")
    assert suggested_codes(card)[0] == "72158"
    assert "because of prior lumbar surgery" in card.detail
    tumour = CareEvidence(
        tumor_or_infection=[ev("Condition/ca", 100, "Metastatic breast cancer", "Problem list")]
    )
    card = by_rule(patient_view(care=tumour), "mri")
    assert suggested_codes(card)[0] == "72158" and "because of Metastatic breast cancer" in card.detail


def test_mri_already_ordered_is_not_suggested_again():
    placed = {terms().key(terms().uri["cpt"], "72148")}
    card = by_rule(patient_view(ordered=placed, pending_mri=[]), "mri")
    assert suggested_codes(card) == ["72197"]


def test_multi_level_emg_adds_the_low_confidence_note():
    card = by_rule(patient_view(emg=emg_reading(multi_level=True, confidence="low")), "mri")
    assert "confirm the root with the report" in card.detail
    assert "confirm the root" not in by_rule(patient_view(), "mri").detail


def test_incomplete_report_search_is_said_on_the_mri_card():
    card = by_rule(patient_view(incomplete=("DiagnosticReport",)), "mri")
    assert "the chart search for reports was cut short" in card.detail
    assert "cut short" not in by_rule(patient_view(incomplete=("Encounter",)), "mri").detail


def test_duration_names_the_date_and_the_document_that_dated_it():
    stated = ev(
        "DocumentReference/n9",
        20,
        "Left leg pain x 3 weeks.",
        "Clinic note of 2 Mar 2026",
        what="stated onset",
    )
    card = by_rule(patient_view(onset_ago=20, onset_source=stated), "mri")
    assert "2 weeks (20 days), since 10 Feb 2026, as written in the Clinic note of 2 Mar 2026" in card.detail
    assert "\u201cLeft leg pain x 3 weeks.\u201d" in card.detail
    coded = by_rule(patient_view(onset_ago=20), "mri")
    assert "onset of M54.17 Lumbosacral radiculopathy (problem list)" in coded.detail


# -- conservative care, motor deficit ------------------------------------------------------------------------


def test_conservative_care_only_under_six_weeks_and_without_a_deficit():
    assert "conservative-care" in rule_ids(patient_view(onset_ago=W.conservative_min - 1))
    assert "conservative-care" not in rule_ids(patient_view(onset_ago=W.conservative_min))
    assert "conservative-care" not in rule_ids(patient_view(onset_ago=10, severe=[SEVERE]))
    assert "conservative-care" not in rule_ids(patient_view(onset_ago=None))


def test_conservative_care_suggests_pt_unless_pt_is_under_way():
    card = by_rule(patient_view(onset_ago=20), "conservative-care")
    assert suggested_codes(card) == ["306170007"]
    assert f"none in the last {W.pt_recent} days; referral suggested" in card.detail
    recent = CareEvidence(pt=[ev("Procedure/pt", 10, "PT evaluation", "Procedure", "97161")])
    card = by_rule(patient_view(onset_ago=20, care=recent), "conservative-care")
    assert card.suggestions == []
    assert "in progress (Procedure, 20 Feb 2026: PT evaluation)" in card.detail


def test_motor_deficit_card_quotes_the_exam():
    card = by_rule(patient_view(severe=[SEVERE]), "motor-deficit")
    assert card.indicator == "warning"
    assert (
        "severe L5 weakness. Clinic note, 27 Feb 2026: \u201cLeft ankle dorsiflexion 2/5.\u201d"
        in card.detail
    )


# -- epidural steroid injection ------------------------------------------------------------------------------


def test_esi_needs_six_weeks_and_persisting_symptoms():
    assert "esi" not in rule_ids(patient_view(onset_ago=W.conservative_min - 1, mri=[mri_study(10)]))
    assert "esi" in rule_ids(patient_view(onset_ago=W.conservative_min, mri=[mri_study(10)]))
    not_persisting = patient_view(onset_ago=60, mri=[mri_study(10)], symptom_conditions=[])
    assert "esi" not in rule_ids(not_persisting)
    recent_note = ev(
        "DocumentReference/n", 5, "Pain down the left leg.", "Clinic note", what="radicular symptoms"
    )
    persisting_in_notes = patient_view(
        onset_ago=60, mri=[mri_study(10)], symptom_conditions=[], radicular_symptoms=[recent_note]
    )
    assert "esi" in rule_ids(persisting_in_notes)


def test_no_esi_card_within_six_months_of_an_injection():
    recent = CareEvidence(esi=[ev("Procedure/esi", W.esi_recent - 10, "", "Procedure", "64483")])
    old = CareEvidence(esi=[ev("Procedure/esi", W.esi_recent + 10, "", "Procedure", "64483")])
    assert "esi" not in rule_ids(patient_view(onset_ago=300, mri=[mri_study(10)], care=recent))
    assert "esi" in rule_ids(patient_view(onset_ago=300, mri=[mri_study(10)], care=old))


def test_one_click_esi_only_with_a_qualifying_mri():
    with_mri = by_rule(patient_view(onset_ago=60, mri=[mri_study(10)]), "esi")
    assert suggested_codes(with_mri) == ["64483"]
    assert (
        "Lumbar spine MRI, 20 Feb 2026: “L4-5 left paracentral disc extrusion compressing" in with_mri.detail
    )
    without = patient_view(onset_ago=60)
    assert rule_ids(without) == ["mri", "esi"]
    assert by_rule(without, "esi").suggestions == []
    assert "order the MRI first" in by_rule(without, "esi").detail


# -- surgical referral ---------------------------------------------------------------------------------------


def test_surgical_referral_after_failed_conservative_care():
    card = by_rule(
        patient_view(onset_ago=60, mri=[mri_study(10, compressive=False)], care=PT_COURSE),
        "surgical-referral",
    )
    assert card.indicator == "info"
    assert "despite conservative care" in card.detail
    assert suggested_codes(card) == ["308482002"]


@pytest.mark.parametrize(
    ("onset_ago", "indicator"), [(W.conservative_max - 1, "info"), (W.conservative_max, "warning")]
)
def test_surgical_referral_becomes_a_warning_at_twelve_weeks(onset_ago, indicator):
    card = by_rule(
        patient_view(onset_ago=onset_ago, mri=[mri_study(10)], care=PT_COURSE), "surgical-referral"
    )
    assert card.indicator == indicator


def test_surgical_referral_for_a_compressive_lesion_or_a_deficit_even_early():
    compressive = by_rule(patient_view(onset_ago=20, mri=[mri_study(10)]), "surgical-referral")
    assert "the MRI shows a compressive lesion" in compressive.detail and compressive.indicator == "info"
    deficit = by_rule(
        patient_view(onset_ago=10, severe=[SEVERE], mri=[mri_study(5, compressive=False)]),
        "surgical-referral",
    )
    assert deficit.indicator == "warning" and "severe or progressive motor deficit" in deficit.detail
    assert deficit.suggestions[0].actions[0].resource["priority"] == "urgent"


def test_no_surgical_referral_without_a_reason():
    assert "surgical-referral" not in rule_ids(
        patient_view(onset_ago=20, mri=[mri_study(10, compressive=False)])
    )
    untreated = patient_view(onset_ago=60, mri=[mri_study(10, compressive=False)])
    assert "surgical-referral" not in rule_ids(untreated)


def test_referral_withheld_without_a_qualifying_mri():
    card = by_rule(patient_view(onset_ago=60, care=PT_COURSE), "surgical-referral")
    assert card.suggestions == []
    assert "order the lumbar MRI first" in card.detail and "none on file since symptoms began" in card.detail


def test_no_surgical_referral_within_six_months_of_one():
    referred = CareEvidence(
        pt_course=PT_COURSE.pt_course, spine_referral=[ev("ServiceRequest/ref", 30, "", "Order", "308482002")]
    )
    assert "surgical-referral" not in rule_ids(patient_view(onset_ago=60, mri=[mri_study(10)], care=referred))


# -- unreadable report ---------------------------------------------------------------------------------------


def test_unreadable_newest_report_gives_the_info_card():
    scan = ev("DiagnosticReport/scan", 5, "", "EMG/NCS report", what="no-text-layer")
    [card] = patient_view(emg=None, unreadable=[scan])
    assert (card.rule, card.indicator) == ("emg-unreadable", "info")
    assert "**EMG/NCS report, 25 Feb 2026:** a scanned PDF without a text layer." in card.detail


def test_unreadable_card_can_be_switched_off_and_ignores_old_reports():
    old = ev("DiagnosticReport/scan", W.emg_lookback + 5, "", "EMG/NCS report", what="encrypted")
    assert patient_view(emg=None, unreadable=[old]) == []
    text = cards_file()
    off = text.model_copy(
        update={
            "cards": {
                **text.cards,
                "emg-unreadable": text.cards["emg-unreadable"].model_copy(update={"enabled": False}),
            }
        }
    )
    scan = ev("DiagnosticReport/scan", 5, "", "EMG/NCS report", what="encrypted")
    assert rules(patient_evidence(emg=None, unreadable=[scan]), off).patient_view(hook_input()) == []


# -- order-select --------------------------------------------------------------------------------------------


def test_esi_timing_before_six_weeks_only():
    esi = order("64483", id="esi")
    assert rule_ids(selected(esi, onset_ago=W.conservative_min - 1)) == ["esi-timing"]
    assert selected(esi, onset_ago=W.conservative_min) == []
    assert selected(esi, onset_ago=20, severe=[SEVERE]) == []
    assert selected(esi, onset_ago=None) == []


def test_order_select_reads_only_selected_orders():
    esi = order("64483", id="esi")
    call = hook_input(hook="order-select", drafts=[esi], selections=[])
    assert rules(patient_evidence(onset_ago=20)).order_select(call) == []


def test_mri_documentation_lists_the_evidence_for_prior_authorization():
    deficit = ev("DocumentReference/n", 5, "Absent left ankle reflex.", "Clinic note", what="reflex change")
    [card] = selected(order("72148", id="mri"), deficits=[deficit], care=PT_COURSE)
    assert card.rule == "mri-documentation"
    assert "reflex change (Clinic note, 25 Feb 2026)" in card.detail
    assert "Left L5 radiculopathy with active denervation" in card.detail
    assert "PT sessions" in card.detail
    assert selected(order("72148", id="mri"), emg=None) == []


def test_mri_before_surgery_uses_the_same_mri_window_as_patient_view():
    referral = order("308482002", system="snomed", id="ref")
    before_episode = {"onset_ago": 20, "mri": [mri_study(40, ref="DiagnosticReport/old")]}
    [card] = selected(referral, **before_episode)
    assert card.rule == "mri-before-surgery"
    assert "the last one, Lumbar spine MRI, 21 Jan 2026, predates this episode" in card.detail
    assert suggested_codes(card) == ["72148"]
    assert "mri" in rule_ids(patient_view(**before_episode))  # the same answer in both services
    current = {"onset_ago": 20, "mri": [mri_study(10)]}
    assert selected(referral, **current) == []
    assert "mri" not in rule_ids(patient_view(**current))


def test_mri_before_surgery_says_none_and_a_cut_search():
    [card] = selected(order("308482002", system="snomed", id="ref"), incomplete=("DocumentReference",))
    assert "**Lumbar MRI:** none on file (the chart search for notes was cut short" in card.detail


def test_orders_of_other_kinds_get_no_card():
    assert selected(order("97110", id="pt"), onset_ago=10) == []


# -- the diagnosis a suggested order carries ---------------------------------------------------------------


def reason_codes(card) -> list[str]:
    return [
        s.actions[0].resource.get("reasonCode", [{"coding": [{"code": None}]}])[0]["coding"][0]["code"]
        for s in card.suggestions
    ]


def test_suggested_orders_carry_the_charts_own_radiculopathy_diagnosis():
    disc = ev("Condition/d1", 60, "Lumbar disc herniation with radiculopathy", "Problem list", "M51.16")
    found = patient_view(onset_ago=60, radiculopathy=[disc])
    assert set(reason_codes(by_rule(found, "mri"))) == {"M51.16"}


def test_without_a_coded_diagnosis_the_emg_proven_default_is_used():
    found = patient_view(onset_ago=20)
    assert set(reason_codes(by_rule(found, "mri"))) == {"M54.17"}


def test_emergency_orders_carry_the_coded_red_flag():
    retention = ev(
        "Condition/r1", 2, "Retention of urine", "Encounter diagnosis", "R33.9", "urinary retention"
    )
    [card] = patient_view(red_flags=[retention], onset_ago=20)
    assert set(reason_codes(card)) == {"R33.9"}
    # without an EMG or any coded diagnosis, no code is invented
    [card] = patient_view(red_flags=[RED_FLAG], emg=None, onset_ago=None)
    assert set(reason_codes(card)) == {None}


def test_a_red_flag_card_does_not_offer_again_what_was_done_since():
    mri = mri_study(1, levels=())  # a lumbar MRI the day after the red flag (2 days ago)
    [card] = patient_view(red_flags=[RED_FLAG], mri=[mri], onset_ago=20)
    assert card.indicator == "critical"
    assert suggested_codes(card) == ["308482002"]  # the referral only; the MRI is done
    assert "**Lumbar MRI since the red flag:** Lumbar spine MRI" in card.detail
    older = mri_study(10, levels=())  # before the red flag: still offered
    [card] = patient_view(red_flags=[RED_FLAG], mri=[older], onset_ago=20)
    assert suggested_codes(card) == ["72148", "308482002"]
