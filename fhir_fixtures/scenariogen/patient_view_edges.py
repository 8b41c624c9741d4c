"""Rule A patient-view edge cases (issue 3): brief scenarios 14 and 18-20 (corrected reports, range notation,
section scoping, a mimic, chronic findings in HTML) and extras 21-23 (red flags without EMG, prior surgery,
MRI and PT already under way)."""

from __future__ import annotations

from scenariogen.model import CONSERVATIVE_PT, ESI, MRI_INFO, PV, RED_FLAGS, Scenario, card
from scenariogen.resources import (
    NORMAL_NCS_LEFT,
    S6_CONCLUSION,
    condition,
    emg_html,
    emg_report,
    emg_text,
    encounter,
    exam,
    mri_order,
    mri_report,
    procedure,
    referral,
)
from scenariogen.terminology import icd


def s14() -> Scenario:
    p = "pt-s14"
    concl_new = "No electrodiagnostic evidence of radiculopathy."
    form = emg_text(
        "INDICATION: Left leg paresthesias.",
        NORMAL_NCS_LEFT,
        "Needle examination of the left lower limb and lumbar paraspinal muscles shows no spontaneous "
        "activity and normal motor units.",
        concl_new + " Corrected report: the previous version was filed against the wrong study.",
    )
    return Scenario(
        "14-emg-entered-in-error-corrected",
        "14",
        PV,
        p,
        "EMG-L5+ report entered-in-error, corrected version (same identifier) negative: no Rule-A card "
        "(latest valid version is negative).",
    ).add(
        emg_report(
            p,
            "s14-emg-v1",
            "2025-12-10",
            conclusion=S6_CONCLUSION,
            status="entered-in-error",
            accession="EMG-25-1187",
        ),
        emg_report(
            p,
            "s14-emg-v2",
            "2025-12-10",
            conclusion=concl_new,
            status="corrected",
            accession="EMG-25-1187",
            issued="2025-12-12T10:05:00-05:00",
            form=form,
        ),
        condition(p, "s14-sciatica", icd("M54.42"), "2025-11-25"),
    )


def s18() -> Scenario:
    p = "pt-s18"
    concl = "Chronic left L5-S1 radiculopathy with ongoing denervation."
    return (
        Scenario(
            "18-range-notation",
            "18",
            PV,
            p,
            "Range notation 'L5-S1': Rule A positive, confidence low, detail notes 'multi-level/disc-level "
            "notation - confirm root'; EMG coded with a local code only (text path); D = 28 d -> A2 info + "
            "A3.",
        )
        .add(
            emg_report(
                p,
                "s18-emg",
                "2026-01-06",
                conclusion=concl,
                text="EMG/NCS BILATERAL LOWER EXTREMITIES",
                loinc=False,
                local_code="NEU-EMG-BLE",
                category_en=False,
            ),
            condition(p, "s18-sciatica", icd("M54.42"), "2025-12-18"),
        )
        .expect(MRI_INFO, CONSERVATIVE_PT)
    )


def s19() -> Scenario:
    p = "pt-s19"
    form = emg_text(
        "REASON FOR REFERRAL: r/o left L5 radiculopathy. Left lateral calf numbness for 3 weeks.",
        NORMAL_NCS_LEFT,
        "No abnormal spontaneous activity in left L5 or S1 myotomes or lumbar paraspinals. Normal motor unit "
        "potentials and recruitment.",
        "Normal study.",
    )
    return Scenario(
        "19-indication-only-mentions-l5",
        "19",
        PV,
        p,
        "Only the REASON FOR REFERRAL mentions L5; IMPRESSION: Normal study (presentedForm only, no "
        "conclusion): no Rule-A card (section scoping).",
    ).add(
        emg_report(p, "s19-emg", "2026-01-07", conclusion=None, form=form),
        condition(p, "s19-lbp", icd("M54.42"), "2025-12-20"),
    )


def s20a() -> Scenario:
    p = "pt-s20a"
    concl = "Left fibular neuropathy at the fibular head with axon loss; no evidence of L5 radiculopathy."
    return Scenario(
        "20-a-fibular-neuropathy-mimic",
        "20a",
        PV,
        p,
        "Peroneal (fibular) neuropathy mimic: no card.",
    ).add(
        emg_report(p, "s20a-emg", "2025-12-29", conclusion=concl, cpt=["95886", "95910"]),
        condition(p, "s20a-fibular", icd("G57.32"), "2025-12-01"),
    )


def s20b() -> Scenario:
    p = "pt-s20b"
    impression = "Chronic left L5 radiculopathy without active denervation; chronic neurogenic MUAP changes."
    form = emg_html(
        "Chronic left leg pain since September 2025; evaluate for L5 radiculopathy.",
        "Left fibular and tibial motor and sural and superficial fibular sensory responses are normal.",
        "Long-duration, high-amplitude polyphasic motor units with reduced recruitment in the left tibialis "
        "anterior, tibialis posterior and gluteus medius. No fibrillation potentials or positive sharp "
        "waves.",
        impression,
    )
    return (
        Scenario(
            "20-b-chronic-l5-no-active-denervation",
            "20b",
            PV,
            p,
            "Chronic L5 without active denervation (text/html presentedForm only): Rule A positive, "
            "chronicity chronic; D = 136 d >= 84, PT done, MRI compressive, no ESI -> A4 info + A5 warning.",
        )
        .add(
            emg_report(p, "s20b-emg", "2025-12-15", conclusion=None, form=form, form_type="text/html"),
            condition(p, "s20b-radic", icd("M54.17"), "2025-09-01"),
            procedure(p, "s20b-pt-eval", "97162", "2025-10-01"),
            procedure(p, "s20b-pt-ex", "97110", "2025-10-29"),
            mri_report(
                p,
                "s20b-mri",
                "2025-11-20",
                "Left subarticular L4-5 disc protrusion with moderate lateral recess stenosis compressing "
                "the "
                "traversing left L5 nerve root.",
            ),
            referral(
                p, "s20b-pt-ref", "306170007", "Physical therapy", status="completed", authored="2025-09-24"
            ),
        )
        .expect(ESI, card("surgical-referral", "warning", ["308482002"]))
    )


def x21() -> Scenario:
    p = "pt-x21"
    return (
        Scenario(
            "21-pv-red-flags-without-emg",
            "x-pv-red-flags-without-emg",
            PV,
            p,
            "Brief 4.1 A0 'any patient, EMG or not': coded cauda equina syndrome G83.4 2 days ago, no EMG -> "
            "red-flags critical only.",
        )
        .add(
            condition(p, "x21-ces", icd("G83.4"), "2026-01-14", category="encounter-diagnosis"),
            condition(p, "x21-lbp", icd("M54.50"), "2025-12-30"),
            exam(
                p,
                "x21-exam",
                "2026-01-14",
                "Saddle anesthesia to pinprick, decreased rectal tone. PVR 650 mL.",
            ),
            encounter(p, "x21-ed", "2026-01-14", "Urinary retention and perineal numbness", emergency=True),
        )
        .expect(RED_FLAGS)
    )


def x22() -> Scenario:
    p = "pt-x22"
    concl = (
        "Right L5 radiculopathy with active denervation (fibrillation potentials in the right tibialis "
        "anterior and tibialis posterior, positive sharp waves in the right L5 paraspinal muscles)."
    )
    return (
        Scenario(
            "22-pv-prior-lumbar-surgery",
            "x-pv-prior-lumbar-surgery",
            PV,
            p,
            "Issue 3 A2: prior lumbar surgery (63030 in 2021) -> MRI suggestion is 72158 instead of 72148; "
            "D = 26 d -> A2 info + A3 info.",
        )
        .add(
            emg_report(p, "x22-emg", "2025-12-30", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY"),
            condition(p, "x22-radic", icd("M54.16"), "2025-12-20"),
            procedure(p, "x22-laminotomy", "63030", "2021-06-14", text="Right L4-5 microdiscectomy"),
        )
        .expect(card("mri", "info", ["72158", "72197"], ["72158"]), CONSERVATIVE_PT)
    )


def x23() -> Scenario:
    p = "pt-x23"
    concl = (
        "Electrodiagnostic findings support a left L5 radiculopathy with acute denervation in L5-innervated "
        "muscles (tibialis anterior, peroneus longus, tibialis posterior)."
    )
    return (
        Scenario(
            "23-pv-mri-ordered-pt-started",
            "x-pv-mri-ordered-pt-started",
            PV,
            p,
            "Issue 3 A2/A3: lumbar MRI already ordered (active) and PT started 6 days ago -> no mri card; A3 "
            "info without a PT suggestion.",
        )
        .add(
            emg_report(p, "x23-emg", "2026-01-07", conclusion=concl, cpt=["95886"]),
            condition(p, "x23-radic", icd("M54.17"), "2025-12-26"),
            procedure(p, "x23-pt-eval", "97161", "2026-01-09"),
            mri_order(p, "x23-mri-order", status="active", authored="2026-01-12", reasons=[icd("M54.17")]),
        )
        .expect(card("conservative-care", "info"))
    )


SCENARIOS = (s14, s18, s19, s20a, s20b, x21, x22, x23)
