"""l5-radiculopathy-order-select scenarios (issue 3): extras 24-30 (MRI documentation, ESI timing, MRI before
surgery, red flags)."""

from __future__ import annotations

from scenariogen.model import L5_OS, RED_FLAGS, Scenario, card
from scenariogen.resources import (
    condition,
    emg_report,
    exam,
    mri_order,
    mri_report,
    note,
    procedure,
    referral,
    service_request,
)
from scenariogen.terminology import CPT, coding, concept, icd


def _l5_chart(s: Scenario, emg_date: str, onset: str, concl: str, code: str = "M54.17") -> Scenario:
    p = s.pid
    return s.add(
        emg_report(p, f"{p}-emg", emg_date, conclusion=concl, cpt=["95886"]),
        condition(p, f"{p}-radic", icd(code), onset),
    )


def x24() -> Scenario:
    p = "pt-x24"
    s = Scenario(
        "24-os-lumbar-mri-documentation",
        "x-os-mri-documentation",
        L5_OS,
        p,
        "Issue 3 order-select: draft lumbar MRI 72148 selected with an EMG-proven L5 radiculopathy on file "
        "-> "
        "mri-documentation info card (EMG date, duration, neuro findings); no suggestions.",
    )
    _l5_chart(
        s,
        "2026-01-05",
        "2025-11-20",
        "Electrodiagnostic evidence of a right L5 radiculopathy with fibrillation potentials and positive "
        "sharp waves in the right tibialis anterior, peroneus longus and tibialis posterior; normal right "
        "superficial fibular SNAP.",
        "M54.16",
    )
    s.add(
        exam(
            p,
            "x24-exam",
            "2026-01-05",
            "Right EHL 4/5, ankle dorsiflexion 4+/5, decreased pinprick over the dorsum of the right foot; "
            "reflexes symmetric.",
        ),
        procedure(p, "x24-pt-eval", "97161", "2025-12-01"),
    )
    s.draft(
        mri_order(p, "x24-mri", reasons=[icd("M54.16")], reason_refs=[f"DiagnosticReport/{p}-emg"]),
        selected=["x24-mri"],
    )
    return s.expect(card("mri-documentation", "info"))


def x25() -> Scenario:
    p = "pt-x25"
    s = Scenario(
        "25-os-plexus-mri-documentation",
        "x-os-plexus-mri-documentation",
        L5_OS,
        p,
        "Issue 3 order-select: plexus MRI 72197 selected (PT referral in the bundle, not selected) -> "
        "mri-documentation info only.",
    )
    _l5_chart(
        s,
        "2025-12-20",
        "2025-12-01",
        "Left L5 radiculopathy with axonal loss (fibrillations 1+ in tibialis anterior and gluteus medius).",
    )
    s.draft(
        mri_order(p, "x25-plexus-mri", "72197", reasons=[icd("M54.17")]),
        referral(
            p, "x25-pt-ref", "306170007", "Physical therapy evaluation and treatment", reasons=[icd("M54.17")]
        ),
        selected=["x25-plexus-mri"],
    )
    return s.expect(card("mri-documentation", "info"))


def x26() -> Scenario:
    p = "pt-x26"
    s = Scenario(
        "26-os-esi-before-6-weeks",
        "x-os-esi-before-6-weeks",
        L5_OS,
        p,
        "Issue 3 order-select: TFESI 64483 selected at 26 d of symptoms (PT started 13 d ago) -> esi-timing "
        "info.",
    )
    _l5_chart(
        s,
        "2025-12-29",
        "2025-12-20",
        "Acute left L5 radiculopathy with active denervation in the tibialis anterior and extensor hallucis "
        "longus.",
    )
    s.add(procedure(p, "x26-pt-eval", "97161", "2026-01-02"))
    s.draft(
        service_request(
            p,
            "x26-tfesi",
            concept(coding(CPT, "64483"), text="LEFT L5 TRANSFORAMINAL EPIDURAL STEROID INJECTION"),
            category="387713003",
            reasons=[icd("M54.17")],
        ),
        selected=["x26-tfesi"],
    )
    return s.expect(card("esi-timing", "info"))


def x27() -> Scenario:
    p = "pt-x27"
    s = Scenario(
        "27-os-esi-after-8-weeks",
        "x-os-esi-after-8-weeks",
        L5_OS,
        p,
        "Issue 3 order-select: TFESI selected after 92 d of symptoms and 80 d of PT, MRI on file -> no card.",
    )
    _l5_chart(
        s,
        "2025-11-10",
        "2025-10-15",
        "Left L5 radiculopathy with ongoing denervation and reduced recruitment in L5 myotome muscles.",
    )
    s.add(
        procedure(p, "x27-pt-eval", "97162", "2025-10-27"),
        mri_report(
            p,
            "x27-mri",
            "2025-12-15",
            "Left paracentral L4-5 disc protrusion contacting and displacing the traversing left L5 nerve "
            "root.",
        ),
    )
    s.draft(
        service_request(
            p,
            "x27-tfesi",
            concept(coding(CPT, "64483"), text="LEFT L5 TRANSFORAMINAL EPIDURAL STEROID INJECTION"),
            category="387713003",
            reasons=[icd("M54.17")],
        ),
        selected=["x27-tfesi"],
    )
    return s


def x28() -> Scenario:
    p = "pt-x28"
    s = Scenario(
        "28-os-surgery-referral-without-mri",
        "x-os-surgery-referral-without-mri",
        L5_OS,
        p,
        "Issue 3 order-select: neurosurgery referral 308482002 selected with no MRI on file -> "
        "mri-before-surgery info ('MRI comes first') suggesting a lumbar MRI 72148.",
    )
    _l5_chart(
        s,
        "2025-11-18",
        "2025-10-20",
        "Left L5 radiculopathy with active denervation; chronic reinnervation changes in tibialis anterior.",
    )
    s.add(procedure(p, "x28-pt-eval", "97162", "2025-11-03"))
    s.draft(
        referral(
            p, "x28-ns-ref", "308482002", "Referral to spine surgery (neurosurgery)", reasons=[icd("M54.17")]
        ),
        selected=["x28-ns-ref"],
    )
    return s.expect(card("mri-before-surgery", "info", ["72148"]))


def x29() -> Scenario:
    p = "pt-x29"
    s = Scenario(
        "29-os-mri-with-normal-emg",
        "x-os-mri-with-normal-emg",
        L5_OS,
        p,
        "Issue 3 order-select: lumbar MRI selected but the EMG is normal -> no card.",
    )
    s.add(
        emg_report(
            p,
            "x29-emg",
            "2025-12-16",
            conclusion="Normal study. No electrodiagnostic evidence of a left lumbosacral radiculopathy, "
            "plexopathy or peripheral neuropathy.",
        ),
        condition(p, "x29-sciatica", icd("M54.42"), "2025-11-01"),
    )
    s.draft(mri_order(p, "x29-mri", reasons=[icd("M54.42")]), selected=["x29-mri"])
    return s


def x30() -> Scenario:
    p = "pt-x30"
    s = Scenario(
        "30-os-red-flags",
        "x-os-red-flags",
        L5_OS,
        p,
        "Issue 3: red flags produce the critical card in the order-select service too (new urinary "
        "retention + perineal numbness); the selected PT referral has no rule of its own.",
    )
    _l5_chart(
        s,
        "2026-01-06",
        "2025-12-28",
        "Left L5 radiculopathy with fibrillation potentials in the tibialis anterior and tibialis posterior.",
        "M54.42",
    )
    s.add(
        condition(p, "x30-retention", icd("R33.9"), "2026-01-14", category="encounter-diagnosis"),
        note(
            p,
            "x30-note",
            "2026-01-14",
            "Telephone triage: reports new difficulty initiating urination since yesterday and numbness in "
            "the perineum when wiping. Advised to present to the emergency department.",
            "Telephone encounter note",
        ),
    )
    s.draft(
        referral(
            p, "x30-pt-ref", "306170007", "Physical therapy evaluation and treatment", reasons=[icd("M54.42")]
        ),
        selected=["x30-pt-ref"],
    )
    return s.expect(RED_FLAGS)


SCENARIOS = (x24, x25, x26, x27, x28, x29, x30)
