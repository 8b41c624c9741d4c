"""Clinical services of spine-cds: value sets, thresholds, card text and rules. No HTTP here.

`services(settings)` is the one place where services are declared. It loads the knowledge files
and the EMG text analyzer once, at start-up, and returns the declarations the engine serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds.config import Settings
    from cds.registry import Service

# Every resource the rules read, so an EHR can send it all up front.
CHART_PREFETCH = {
    "conditions": "Condition?patient={{context.patientId}}",
    "reports": "DiagnosticReport?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "documents": "DocumentReference?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "orders": "ServiceRequest?patient={{context.patientId}}",
}
L5_PREFETCH = {**CHART_PREFETCH, "encounters": "Encounter?patient={{context.patientId}}"}
# Servers that do not hold notes or encounters should not cost the clinician every other card.
OPTIONAL_KEYS = frozenset({"documents", "encounters"})


def services(settings: Settings) -> list[Service]:
    """Every production service, with its knowledge files loaded once."""
    from cds.registry import Service
    from hooks.cardkit import CardKit
    from hooks.emg_necessity import EmgNecessityRules
    from hooks.emg_text import EmgTextAnalyzer
    from hooks.evidence import EvidenceBuilder
    from hooks.knowledge import load_terminology, load_yaml
    from hooks.l5_radiculopathy import L5Rules
    from hooks.prefilter import Prefilter

    directory = settings.knowledge_dir
    terms = load_terminology(directory)
    analyzer = EmgTextAnalyzer.load(directory / "emg_text.yaml" if directory else None)
    evidence_config = load_yaml("evidence.yaml", directory)
    builder = EvidenceBuilder(terms, evidence_config, analyzer)
    relevant = Prefilter(terms, evidence_config).relevant
    l5 = L5Rules(builder, CardKit(terms, load_yaml("l5_cards.yaml", directory)))
    emg = EmgNecessityRules(builder, CardKit(terms, load_yaml("emg_necessity.yaml", directory)))
    l5_usage = "Reads EMG/NCS reports, MRI reports, conditions, exam observations, notes and orders."
    emg_usage = "Reads the draft EMG/NCS orders' diagnoses and the chart evidence payers ask for."
    return [
        Service(
            id="l5-radiculopathy-patient-view",
            hook="patient-view",
            title="EMG-proven L5 radiculopathy: next steps",
            description="When an EMG/NCS report shows L5 radiculopathy with axon loss: lumbar MRI, "
            "conservative care, epidural injection and spine-surgery referral at the right time; "
            "an emergency card for cauda equina red flags.",
            prefetch=L5_PREFETCH,
            optional_prefetch=OPTIONAL_KEYS,
            handler=l5.patient_view,
            relevant=relevant,
            usage_requirements=l5_usage,
        ),
        Service(
            id="l5-radiculopathy-order-select",
            hook="order-select",
            title="EMG-proven L5 radiculopathy: order guidance",
            description="Documentation for lumbar or plexus MRI orders, epidural injection timing and MRI "
            "before surgical referral, from the patient's EMG evidence; red flags are critical.",
            prefetch=L5_PREFETCH,
            optional_prefetch=OPTIONAL_KEYS,
            handler=l5.order_select,
            relevant=relevant,
            usage_requirements=l5_usage,
        ),
        Service(
            id="emg-ncs-necessity-order-select",
            hook="order-select",
            title="EMG/NCS order: diagnosis supports medical necessity?",
            description="Advisory while an EMG/NCS order is built: a lower-limb study whose only diagnosis "
            "is M47.816 (spondylosis without radiculopathy) is likely to be denied; offers one-click fixes.",
            prefetch=CHART_PREFETCH,
            optional_prefetch=OPTIONAL_KEYS & set(CHART_PREFETCH),
            handler=emg.order_select,
            relevant=relevant,
            resolve_references=("reasonReference",),
            usage_requirements=emg_usage,
        ),
        Service(
            id="emg-ncs-necessity-order-sign",
            hook="order-sign",
            title="EMG/NCS order: final diagnosis check before signing",
            description="Final check of every draft EMG/NCS order: a lower-limb study whose only diagnosis "
            "is M47.816 gets a warning with the payer checklist built from the chart and one-click fixes.",
            prefetch=CHART_PREFETCH,
            optional_prefetch=OPTIONAL_KEYS & set(CHART_PREFETCH),
            handler=emg.order_sign,
            relevant=relevant,
            resolve_references=("reasonReference",),
            usage_requirements=emg_usage,
        ),
    ]
