"""The L5 radiculopathy services: their ids, hooks, prefetch and the rules they may fire."""

from __future__ import annotations

from cds.registry import Rule, Service
from hooks.common.cardkit import CardKit, CardsFile
from hooks.common.chart import OPTIONAL_KEYS, chart_prefetch, encounters_prefetch
from hooks.common.context import ClinicalContext
from hooks.common.suppression import suppression_settings
from hooks.l5_radiculopathy.rules import L5Rules

USAGE = "Reads EMG/NCS reports, MRI reports, conditions, exam observations, notes and orders."

RED_FLAGS = Rule("red-flags", ("critical",), "Cauda equina red flags: emergency evaluation")
PATIENT_VIEW_RULES = (
    RED_FLAGS,
    Rule("motor-deficit", ("warning",), "Severe or progressive L5 motor deficit"),
    Rule("mri", ("info", "warning"), "No lumbar MRI on file"),
    Rule("conservative-care", ("info",), "Under 6 weeks: conservative care"),
    Rule("esi", ("info",), "Over 6 weeks: consider an epidural steroid injection"),
    Rule("surgical-referral", ("info", "warning"), "Consider spine-surgery referral"),
    Rule("emg-unreadable", ("info",), "EMG/NCS report on file but not machine-readable"),
)
ORDER_SELECT_RULES = (
    RED_FLAGS,
    Rule("mri-documentation", ("info",), "Lumbar or plexus MRI order: document the EMG"),
    Rule("esi-timing", ("info",), "Epidural injection before 6 weeks"),
    Rule("mri-before-surgery", ("info",), "Spine-surgery referral with no lumbar MRI"),
)
RULES = {r.id: r for r in PATIENT_VIEW_RULES + ORDER_SELECT_RULES}

#: This service's own knowledge files and the models that check them (`cds knowledge check`).
KNOWLEDGE = {"l5_radiculopathy/cards.yaml": CardsFile}


def declare(context: ClinicalContext) -> list[Service]:
    cards = context.file(CardsFile, "l5_radiculopathy/cards.yaml")
    rules = L5Rules(context.evidence, CardKit(context.terms, cards, {r.id: r.title for r in RULES.values()}))
    prefetch = {**chart_prefetch(context.evidence), "encounters": encounters_prefetch(context.evidence)}
    # Feedback silences a rule for a patient for the periods of cards.yaml; red flags always show.
    suppression = dict(
        **suppression_settings(cards, "l5_radiculopathy/cards.yaml"), never_suppress=frozenset({RED_FLAGS.id})
    )
    return [
        Service(
            id="l5-radiculopathy-patient-view",
            hook="patient-view",
            title="EMG-proven L5 radiculopathy: next steps",
            description="When an EMG/NCS report shows L5 radiculopathy with axon loss: lumbar MRI, "
            "conservative care, epidural injection and spine-surgery referral at the right time; "
            "an emergency card for cauda equina red flags.",
            prefetch=prefetch,
            optional_prefetch=OPTIONAL_KEYS,
            handler=rules.patient_view,
            relevant=context.prefilter.relevant,
            wants_attachments=context.prefilter.wants_attachments,
            usage_requirements=USAGE,
            rules=PATIENT_VIEW_RULES,
            **suppression,
        ),
        Service(
            id="l5-radiculopathy-order-select",
            hook="order-select",
            title="EMG-proven L5 radiculopathy: order guidance",
            description="Documentation for lumbar or plexus MRI orders, epidural injection timing and MRI "
            "before surgical referral, from the patient's EMG evidence; red flags are critical.",
            prefetch=prefetch,
            optional_prefetch=OPTIONAL_KEYS,
            handler=rules.order_select,
            relevant=context.prefilter.relevant,
            wants_attachments=context.prefilter.wants_attachments,
            usage_requirements=USAGE,
            rules=ORDER_SELECT_RULES,
            **suppression,
        ),
    ]
