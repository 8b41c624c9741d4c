"""hooks/emg_necessity/rules.py on typed evidence, without HTTP: lower-limb EMG/NCS orders whose only
diagnosis excludes radiculopathy.

The rules get a real CardKit and policy (the shipped cards.yaml and policy.yaml) and a stub builder that
returns the PatientEvidence each test constructs; which draft orders are EDX orders, of which limb and with
which diagnoses is read from real parsed ServiceRequests.
"""

from __future__ import annotations

from functools import cache

import pytest

from hooks.common.cardkit import CardKit, CardsFile
from hooks.common.schema import load_model
from hooks.emg_necessity.rules import EmgNecessityRules, PolicyFile
from hooks.evidence.model import EdxStudy
from tests.hooks.factories import (
    SNOMED,
    StubBuilder,
    condition,
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
LEG = {"coding": [{"system": SNOMED, "code": "61685007", "display": "Lower limb structure"}]}
ARM = {"coding": [{"system": SNOMED, "code": "53120007", "display": "Upper limb structure"}]}
SYMPTOMS = ev(
    "DocumentReference/n1", 5, "Pain shoots down the left leg.", "Clinic note", what="radicular symptoms"
)
DEFICIT = ev("DocumentReference/n2", 5, "Absent left ankle reflex.", "Clinic note", what="reflex change")
RADICULOPATHY = ev(
    "Condition/radic",
    30,
    "Lumbosacral radiculopathy",
    "Problem list",
    "M54.17",
    "radiculopathy",
    "Radiculopathy, lumbosacral region",
)


@cache
def cards_file() -> CardsFile:
    return load_model(CardsFile, "emg_necessity/cards.yaml")


@cache
def policy() -> PolicyFile:
    return load_model(PolicyFile, "emg_necessity/policy.yaml")


def rules(evidence=None, mode: str | None = None) -> EmgNecessityRules:
    chosen = policy() if mode is None else policy().model_copy(update={"mode": mode})
    evidence = evidence if evidence is not None else patient_evidence(emg=None, onset_ago=None)
    return EmgNecessityRules(StubBuilder(evidence), CardKit(terms(), cards_file()), chosen)


def needle(dx=("M47.816",), **kw):
    return order(
        "95886", text="Needle EMG, one extremity", body_site=kw.pop("body_site", LEG), reason_codes=dx, **kw
    )


def ncs(dx=("M47.816",), **kw):
    return order(
        "95910",
        text="Nerve conduction studies, 7-8",
        body_site=kw.pop("body_site", LEG),
        reason_codes=dx,
        **kw,
    )


def sign(*drafts, chart=(), evidence=None, mode=None):
    """order-sign over these draft orders (every one is checked)."""
    return rules(evidence, mode).order_sign(hook_input(*chart, hook="order-sign", drafts=drafts))


def evidence(**kw):
    kw.setdefault("emg", None)
    kw.setdefault("onset_ago", None)
    return patient_evidence(**kw)


def code_changes(card) -> list[str]:
    return [s.label for s in card.suggestions if s.label.startswith("Change the diagnosis")]


# -- which orders ------------------------------------------------------------------------------------------


def test_lower_limb_edx_order_with_only_m47816_gets_the_warning():
    [card] = sign(needle(id="o1"))
    assert (card.rule, card.indicator) == ("emg-dx-mismatch", "warning")
    assert "M47.816" in card.summary
    assert "M47.816 Spondylosis without myelopathy or radiculopathy, lumbar region" in card.detail


def test_several_orders_get_one_card_with_every_order():
    [card] = sign(needle(id="o1"), ncs(id="o2"))
    assert (
        "**Orders:** Needle EMG, one extremity (95886) and Nerve conduction studies, 7-8 (95910)"
        in card.detail
    )
    remove = card.suggestions[-1]
    assert remove.label == "Remove the EMG/NCS orders"
    assert [a.resourceId for a in remove.actions] == ["ServiceRequest/o1", "ServiceRequest/o2"]


@pytest.mark.parametrize("dx", [("M54.17",), ("M47.816", "M54.16"), ()])
def test_an_order_with_a_radiculopathy_code_or_no_icd_code_gets_no_card(dx):
    assert sign(needle(dx=dx)) == []


def test_upper_limb_orders_are_skipped():
    assert sign(needle(body_site=ARM)) == []
    by_text = order(
        "95886", text="EMG/NCS bilateral upper extremities (carpal tunnel)", reason_codes=["M47.816"]
    )
    assert sign(by_text) == []
    # the limb comes from the order, never from unrelated words elsewhere in the chart
    assert sign(by_text, chart=[condition("M47.816", text="Lumbar spondylosis")]) == []


def test_surface_emg_biofeedback_90901_is_not_an_edx_order():
    biofeedback = order(
        "90901", text="Biofeedback training by EMG, legs", body_site=LEG, reason_codes=["M47.816"]
    )
    assert sign(biofeedback) == []
    # any CPT code that is not an EDX code decides, whatever the order's text says
    pt_with_emg = order(
        "97112", text="Neuromuscular re-education with EMG feedback, leg", reason_codes=["M47.816"]
    )
    assert sign(pt_with_emg) == []


def test_order_without_a_cpt_code_is_an_edx_order_by_its_text():
    local = order(
        "EMG123",
        system="urn:oid:1.2.3",
        text="Electromyography w/ nerve conduction, bilateral legs",
        reason_codes=["M47.816"],
    )
    assert rule_ids(sign(local)) == ["emg-dx-mismatch"]


def test_unknown_limb_is_judged_lower_and_says_so():
    [card] = sign(needle(body_site=None, id="o1"))
    assert "_The order does not name the limb; judged as a lower-limb study._" in card.detail
    assert "(limb not stated)" in card.detail


def test_order_select_checks_only_the_selected_orders():
    first, second = needle(id="o1"), ncs(id="o2")
    call = hook_input(hook="order-select", drafts=[first, second], selections=["ServiceRequest/o2"])
    [card] = rules().order_select(call)
    assert "Nerve conduction studies" in card.detail and "Needle EMG" not in card.detail.split("\n")[0]
    assert rules().order_select(hook_input(hook="order-select", drafts=[first], selections=[])) == []


def test_diagnosis_given_as_a_reason_reference():
    spondylosis = condition("M47.816", text="Lumbar spondylosis", id="c1")
    referenced = order("95886", body_site=LEG, reason_refs=["Condition/c1"], id="o1")
    [card] = sign(referenced, chart=[spondylosis], evidence=evidence(radicular_symptoms=[SYMPTOMS]))
    [change] = [s for s in card.suggestions if s.label.startswith("Change")]
    updated = change.actions[0].resource
    assert "reasonReference" not in updated  # the M47.816-only reference is replaced
    assert updated["reasonCode"][0]["coding"][0]["code"] == "M54.16"


def test_unresolved_reason_reference_is_noted():
    unresolved = order("95886", body_site=LEG, reason_codes=["M47.816"], reason_refs=["Condition/missing"])
    [card] = sign(unresolved)
    assert "could not be read" in card.detail


# -- diagnosis codes only when the chart supports them -------------------------------------------------------


def test_no_radicular_findings_no_code_change_and_a_referral_replaces_the_orders():
    [card] = sign(needle(id="o1"), ncs(id="o2"))
    assert code_changes(card) == []
    assert "**No radicular findings are documented**" in card.detail
    referral = card.suggestions[0]
    assert referral.label.startswith("Instead of the EMG/NCS: Referral to neurosurgeon")
    assert referral.isRecommended is None  # the next step is the clinician's call
    assert [a.type for a in referral.actions] == ["create", "delete", "delete"]
    assert [a.resourceId for a in referral.actions[1:]] == ["ServiceRequest/o1", "ServiceRequest/o2"]


@pytest.mark.parametrize(
    ("found", "named"),
    [
        ({"radicular_symptoms": [SYMPTOMS]}, "radicular symptoms (Clinic note, 25 Feb 2026)"),
        ({"deficits": [DEFICIT]}, "reflex change (Clinic note, 25 Feb 2026)"),
        ({"emg": emg_reading(ago=100)}, "radiculopathy on EMG (EMG/NCS report, 22 Nov 2025)"),
        ({"mri": [mri_study(30, levels=())]}, "compressive lesion on MRI (Lumbar spine MRI, 31 Jan 2026)"),
    ],
)
def test_documented_findings_support_m5416_and_are_named(found, named):
    [card] = sign(needle(), evidence=evidence(**found))
    assert code_changes(card) == ["Change the diagnosis to M54.16 Radiculopathy, lumbar region"]
    assert card.suggestions[0].isRecommended is True
    assert f"**The chart supports a radiculopathy code:** {named}" in card.detail


@pytest.mark.parametrize(
    ("levels", "code"), [(("lumbar",), "M51.16"), (("lumbosacral",), "M51.17"), (("unspecified",), "M54.16")]
)
def test_a_disc_lesion_on_mri_supports_the_disc_code_of_its_level(levels, code):
    [card] = sign(needle(), evidence=evidence(mri=[mri_study(30, levels=levels)]))
    assert [label.split()[4] for label in code_changes(card)] == [code]


def test_a_non_compressive_mri_supports_no_code():
    [card] = sign(needle(), evidence=evidence(mri=[mri_study(30, compressive=False)]))
    assert code_changes(card) == []
    assert "Lumbar spine MRI, 31 Jan 2026" in card.detail  # still shown for the imaging criterion


def test_the_code_change_replaces_the_diagnosis_on_every_order():
    [card] = sign(needle(id="o1"), ncs(id="o2"), evidence=evidence(radicular_symptoms=[SYMPTOMS]))
    change = card.suggestions[0]
    assert [a.type for a in change.actions] == ["update", "update"]
    assert [a.resource["id"] for a in change.actions] == ["o1", "o2"]
    assert {a.resource["reasonCode"][0]["coding"][0]["code"] for a in change.actions} == {"M54.16"}
    assert all(len(a.resource["reasonCode"]) == 1 for a in change.actions)  # M47.816 is gone


def test_at_most_four_suggestions_and_removal_is_always_offered():
    both_levels = evidence(
        mri=[mri_study(30, levels=("lumbar", "lumbosacral"))], radicular_symptoms=[SYMPTOMS]
    )
    [card] = sign(needle(), evidence=both_levels)
    labels = [s.label for s in card.suggestions]
    assert len(labels) == policy().max_suggestions == 4
    assert labels[:2] == [
        "Change the diagnosis to M51.16 Intervertebral disc disorders with radiculopathy, lumbar region",
        "Change the diagnosis to M51.17 Intervertebral disc disorders with radiculopathy, lumbosacral region",
    ]
    assert labels[-1] == "Remove the EMG/NCS order"
    assert [s.isRecommended for s in card.suggestions] == [True, None, None, None]


def test_referral_already_ordered_is_not_suggested_again():
    spine = terms().key(terms().uri["snomed"], "308482002")
    [card] = sign(needle(), evidence=evidence(ordered={spine}))
    assert not any("neurosurgeon" in s.label for s in card.suggestions)
    assert any("pain management" in s.label for s in card.suggestions)


# -- the link card -------------------------------------------------------------------------------------------


def test_confirmed_radiculopathy_on_the_chart_gives_the_link_card():
    [card] = sign(
        needle(id="o1"), evidence=evidence(radiculopathy=[RADICULOPATHY], symptom_conditions=[RADICULOPATHY])
    )
    assert (card.rule, card.indicator) == ("emg-dx-link", "info")
    assert card.summary.startswith("Radiculopathy is on the chart (M54.17)")
    [add] = card.suggestions
    assert add.label == "Add M54.17 Radiculopathy, lumbosacral region to the order"
    resource = add.actions[0].resource
    assert [c["coding"][0]["code"] for c in resource["reasonCode"]] == [
        "M47.816",
        "M54.17",
    ]  # added, not replaced
    assert {"reference": "Condition/radic"} in resource["reasonReference"]


def test_an_unconfirmed_radiculopathy_is_only_a_symptom_no_link_card():
    provisional = ev("Condition/r", 30, "R/O radiculopathy", "Problem list", "M54.17", "radiculopathy")
    assert rule_ids(sign(needle(), evidence=evidence(symptom_conditions=[provisional]))) == [
        "emg-dx-mismatch"
    ]


# -- the payer checklist -------------------------------------------------------------------------------------


def study(ago: int, limb: str = "lower", needle_emg: bool = True) -> EdxStudy:
    return EdxStudy(ev(f"Procedure/emg{ago}{limb}", ago, "", "EMG/NCS procedure"), needle_emg, limb)


def test_needle_criterion_counts_only_a_recent_lower_limb_needle_study():
    [card] = sign(ncs(), evidence=evidence(studies=[study(100)]))
    assert (
        "Needle EMG in this order or within 12 months: **yes**, EMG/NCS procedure, 22 Nov 2025" in card.detail
    )
    [card] = sign(ncs(), evidence=evidence(studies=[study(100, limb="upper")]))
    assert "**not met**: no leg needle EMG in this order or on file" in card.detail
    [card] = sign(ncs(), evidence=evidence(studies=[study(W.emg_lookback + 30)]))
    assert (
        "**not met**: the last needle EMG was EMG/NCS procedure" in card.detail
        and "over 12 months ago" in card.detail
    )
    [card] = sign(ncs(), evidence=evidence(studies=[study(100, needle_emg=False)]))
    assert "**not met**" in card.detail


def test_ncs_only_order_is_flagged_but_not_with_a_needle_study_in_the_order():
    [ncs_only] = sign(ncs())
    assert "NCS without needle EMG is not recommended" in ncs_only.detail
    [both] = sign(ncs(), needle())
    assert "NCS without needle EMG" not in both.detail


def test_sibling_draft_of_the_same_encounter_is_counted():
    selected = ncs(id="o1", encounter="Encounter/e1")
    sibling = order("95886", text="Needle EMG, left leg", status="draft", id="o9", encounter="Encounter/e1")
    other_visit = order(
        "95886", text="Needle EMG, left leg", status="draft", id="o8", encounter="Encounter/e2"
    )
    [card] = sign(selected, chart=[sibling])
    # the NCS is not itself a needle EMG: the card names the draft that is
    assert "**yes**, ordered with it (Needle EMG, left leg (95886))" in card.detail
    assert "part of this order" not in card.detail
    assert (
        "_Counted with it: Needle EMG, left leg (95886), a draft order of the same encounter" in card.detail
    )
    [alone] = sign(ncs(id="o2", encounter="Encounter/e1"), chart=[other_visit])
    assert "Counted with it" not in alone.detail and "**not met**" in alone.detail


def test_recent_study_without_a_new_deficit_is_called_a_likely_repeat():
    [card] = sign(needle(), evidence=evidence(studies=[study(60)]))
    assert "**A lower-limb study was already done within 12 months**" in card.detail
    [card] = sign(needle(), evidence=evidence(studies=[study(60)], deficits=[DEFICIT]))
    assert "already done within 12 months" not in card.detail


def test_incomplete_search_is_said_on_the_card():
    [card] = sign(needle(), evidence=evidence(incomplete=("DocumentReference", "Observation")))
    assert "_The chart search for notes, flowsheets was cut short" in card.detail


# -- extended mode -------------------------------------------------------------------------------------------


def test_extended_mode_covers_every_no_radiculopathy_code():
    low_back_pain = needle(dx=("M54.50",))
    assert sign(low_back_pain) == []
    assert rule_ids(sign(low_back_pain, mode="extended")) == ["emg-dx-mismatch"]
    mixed = needle(dx=("M54.50", "M47.816"))
    assert sign(mixed) == []  # default: only exactly the mismatch codes
    assert rule_ids(sign(mixed, mode="extended")) == ["emg-dx-mismatch"]
    with_radiculopathy = needle(dx=("M54.50", "M54.17"))
    assert sign(with_radiculopathy, mode="extended") == []


def test_a_non_limb_study_is_out_of_scope():
    thoracic = order("95869", text="EMG thoracic paraspinal muscles", reason_codes=["M47.816"])
    assert sign(thoracic) == []
    by_text = order(None, text="Needle EMG, thoracic paraspinals T8-T11", reason_codes=["M47.816"])
    assert sign(by_text) == []
    # a non-limb code on an order that names a leg is a leg study
    named = order("95869", text="EMG paraspinals and left leg", reason_codes=["M47.816"])
    assert [c.rule for c in sign(named)] == ["emg-dx-mismatch"]


def test_radicular_words_in_an_old_note_support_no_code_change():
    old = ev(
        "DocumentReference/n9", 100, "Pain radiating down the left leg.", "ED note", what="radicular symptoms"
    )
    [card] = sign(needle(), evidence=evidence(radicular_symptoms=[old]))
    assert code_changes(card) == []
    recent = ev(
        "DocumentReference/n9", 60, "Pain radiating down the left leg.", "ED note", what="radicular symptoms"
    )
    [card] = sign(needle(), evidence=evidence(radicular_symptoms=[recent]))
    assert code_changes(card) == ["Change the diagnosis to M54.16 Radiculopathy, lumbar region"]
