"""The EMG/NCS necessity services: their ids, hooks, prefetch and the rules they may fire."""

from __future__ import annotations

from cds.registry import Rule, Service
from hooks.common.cardkit import CardKit, CardsFile
from hooks.common.chart import OPTIONAL_KEYS, chart_prefetch
from hooks.common.context import ClinicalContext
from hooks.common.suppression import suppression_settings
from hooks.emg_necessity.rules import EmgNecessityRules, PolicyFile

USAGE = "Reads the draft EMG/NCS orders' diagnoses and the chart evidence payers ask for."
RULES_DECLARED = (
    Rule("emg-dx-mismatch", ("warning",), "Sole diagnosis excludes radiculopathy: likely denied"),
    Rule("emg-dx-link", ("info",), "Radiculopathy on the chart but not on the order: link it"),
)
RULES = {r.id: r for r in RULES_DECLARED}

#: This service's own knowledge files and the models that check them (`cds knowledge check`).
KNOWLEDGE = {"emg_necessity/cards.yaml": CardsFile, "emg_necessity/policy.yaml": PolicyFile}


def declare(context: ClinicalContext) -> list[Service]:
    cards = context.file(CardsFile, "emg_necessity/cards.yaml")
    policy = context.file(PolicyFile, "emg_necessity/policy.yaml")
    rules = EmgNecessityRules(
        context.evidence, CardKit(context.terms, cards, {r.id: r.title for r in RULES_DECLARED}), policy
    )
    prefetch = chart_prefetch(context.evidence)
    common = dict(
        prefetch=prefetch,
        optional_prefetch=OPTIONAL_KEYS & set(prefetch),
        # Feedback silences a rule for a patient for the periods of cards.yaml.
        **suppression_settings(cards, "emg_necessity/cards.yaml"),
        relevant=context.prefilter.relevant,
        wants_attachments=context.prefilter.wants_attachments,
        resolve_references=("reasonReference",),
        usage_requirements=USAGE,
        rules=RULES_DECLARED,
    )
    return [
        Service(
            id="emg-ncs-necessity-order-select",
            hook="order-select",
            title="EMG/NCS order: diagnosis supports medical necessity?",
            description="Advisory while an EMG/NCS order is built: a lower-limb study whose only diagnosis "
            "is M47.816 (spondylosis without radiculopathy) is likely to be denied; offers one-click fixes.",
            handler=rules.order_select,
            **common,
        ),
        Service(
            id="emg-ncs-necessity-order-sign",
            hook="order-sign",
            title="EMG/NCS order: final diagnosis check before signing",
            description="Final check of every draft EMG/NCS order: a lower-limb study whose only diagnosis "
            "is M47.816 gets a warning with the payer checklist built from the chart and one-click fixes.",
            handler=rules.order_sign,
            **common,
        ),
    ]
