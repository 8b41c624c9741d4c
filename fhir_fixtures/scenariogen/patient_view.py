"""Rule A patient-view scenarios (issue 3, rules A0-A5): brief scenarios 1-8."""

from __future__ import annotations

from scenariogen.model import CONSERVATIVE_PT, ESI, MRI_INFO, MRI_WARN, PV, RED_FLAGS, Scenario, card
from scenariogen.resources import (
    NORMAL_NCS_LEFT,
    S6_CONCLUSION,
    condition,
    emg_report,
    emg_text,
    encounter,
    exam,
    mri_order,
    mri_report,
    note,
    procedure,
    referral,
)
from scenariogen.terminology import icd


def s01() -> Scenario:
    p = "pt-s01"
    s = Scenario(
        "01-l5-no-mri",
        "1",
        PV,
        p,
        "52 M, 4 wk left leg pain, EMG 2 wk ago L5 with active denervation, no MRI, no PT: A2 info "
        "(72148; plexus 72197 second line) + A3 info (PT 306170007); no A0/A1; the negated second sentence "
        "must not cancel the first.",
    )
    form = emg_text(
        "INDICATION: 52-year-old man with left buttock and lateral leg pain radiating to the dorsum of the "
        "foot for about 2 weeks. Evaluate for left lumbosacral radiculopathy versus fibular neuropathy.",
        NORMAL_NCS_LEFT,
        "Fibrillation potentials and positive sharp waves (2+) in the left tibialis anterior, tibialis "
        "posterior and gluteus medius, and in the left low lumbar paraspinal muscles. Reduced recruitment "
        "in the left tibialis anterior. Left medial gastrocnemius and vastus lateralis are normal.",
        S6_CONCLUSION,
    )
    s.add(
        emg_report(p, "s01-emg", "2026-01-01", conclusion=S6_CONCLUSION, cpt=["95886"], form=form),
        condition(p, "s01-radic", icd("M54.17"), "2025-12-15", recorded="2025-12-22"),
        encounter(p, "s01-enc", "2025-12-22", "Left leg pain"),
    )
    return s.expect(MRI_INFO, CONSERVATIVE_PT)


def s02() -> Scenario:
    p = "pt-s02"
    concl = "No electrodiagnostic evidence of lumbosacral radiculopathy. Normal study."
    form = emg_text(
        "REASON FOR STUDY: Right posterior thigh and calf pain for 5 weeks.",
        "Right fibular and tibial motor and sural and superficial fibular sensory responses are normal.",
        "No spontaneous activity in any muscle tested, including the right lumbar paraspinals. Motor unit "
        "morphology and recruitment are normal throughout.",
        concl,
    )
    return Scenario(
        "02-emg-normal",
        "2",
        PV,
        p,
        "EMG normal: no Rule-A card.",
    ).add(
        emg_report(
            p, "s02-emg", "2025-12-18", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY", form=form
        ),
        condition(p, "s02-sciatica", icd("M54.41"), "2025-12-05"),
    )


def s03() -> Scenario:
    p = "pt-s03"
    concl = (
        "Right S1 radiculopathy with active denervation in medial gastrocnemius and soleus; absent right "
        "H-reflex."
    )
    return Scenario(
        "03-s1-not-l5",
        "3",
        PV,
        p,
        "S1 not L5: no L5 card (the optional generic-radiculopathy variant is not configured).",
    ).add(
        emg_report(
            p,
            "s03-emg",
            "2025-12-22",
            conclusion=concl,
            text="EMG/NCS RIGHT LOWER EXTREMITY",
            cpt=["95886", "95910"],
        ),
        condition(p, "s03-radic", icd("M54.17"), "2025-11-30"),
    )


def s04() -> Scenario:
    p = "pt-s04"
    concl = S6_CONCLUSION.replace("left L5", "right L5")
    return Scenario(
        "04-emg-too-old",
        "4",
        PV,
        p,
        "EMG too old (2024-10-01, 15.5 mo > 365 d): no A-card; the brief's optional 'last EMG > 12 mo' info "
        "card is not expected (cards: []).",
    ).add(
        emg_report(
            p, "s04-emg", "2024-10-01", conclusion=concl, text="EMG/NCS RIGHT LOWER EXTREMITY", cpt=["95886"]
        ),
        condition(p, "s04-radic", icd("M54.16"), "2024-09-05"),
    )


def s05() -> Scenario:
    p = "pt-s05"
    concl = (
        "Left L5 radiculopathy, subacute, with axon loss: fibrillation potentials and positive sharp waves "
        "in "
        "the left tibialis anterior, extensor hallucis longus and L5 paraspinal muscles. Sensory responses "
        "are preserved."
    )
    return (
        Scenario(
            "05-red-flags",
            "5",
            PV,
            p,
            "Red flags (R33.9 onset 2026-01-13 + exam 'new saddle anesthesia, decreased rectal tone'): A0 "
            "critical only (emergency MRI 72148 + neurosurgery referral 308482002); A3/A4 suppressed and, "
            "per "
            "issue 3 ('suppresses the routine cards'), A2 as well.",
        )
        .add(
            emg_report(p, "s05-emg", "2026-01-05", conclusion=concl, category_en=False),
            condition(p, "s05-sciatica", icd("M54.42"), "2025-12-22"),
            condition(p, "s05-retention", icd("R33.9"), "2026-01-13", category="encounter-diagnosis"),
            exam(p, "s05-exam", "2026-01-13", "new saddle anesthesia, decreased rectal tone"),
            encounter(p, "s05-ed", "2026-01-13", "Urinary retention, perineal numbness", emergency=True),
        )
        .expect(RED_FLAGS)
    )


def s06() -> Scenario:
    p = "pt-s06"
    concl = (
        "Findings are consistent with an acute left L5 radiculopathy with ongoing denervation (fibrillations "
        "and positive sharp waves in tibialis anterior, tibialis posterior and gluteus medius). The left "
        "superficial fibular sensory response is normal, which argues against a fibular neuropathy."
    )
    return (
        Scenario(
            "06-red-flags-negated",
            "6",
            PV,
            p,
            "As #1 plus a note 'Denies saddle anesthesia, bowel or bladder incontinence. No urinary "
            "retention.': "
            "no A0; A2 + A3 as in #1.",
        )
        .add(
            emg_report(p, "s06-emg", "2026-01-02", conclusion=concl, cpt=["95886"]),
            condition(p, "s06-radic", icd("M54.17"), "2025-12-15"),
            note(
                p,
                "s06-note",
                "2026-01-14",
                "Follow-up of left L5 radiculopathy. Left leg pain 6/10, radiating to the dorsum of the "
                "foot. "
                "Denies saddle anesthesia, bowel or bladder incontinence. No urinary retention. "
                "Strength 5/5 except left EHL 4+/5. Plan: discuss imaging and therapy.",
            ),
            encounter(p, "s06-enc", "2026-01-14", "Left leg pain"),
        )
        .expect(MRI_INFO, CONSERVATIVE_PT)
    )


def s07() -> Scenario:
    p = "pt-s07"
    concl = (
        "Severe left L5 radiculopathy with active axon loss: profuse fibrillation potentials in the tibialis "
        "anterior and extensor hallucis longus with markedly reduced recruitment. Normal sural and "
        "superficial fibular sensory responses and no conduction block across the fibular head."
    )
    form = emg_text(
        "HISTORY: Left foot drop noticed 1 week ago, preceded by left sciatica.",
        "Left fibular motor response recorded at tibialis anterior is reduced in amplitude (1.1 mV) without "
        "conduction block at the fibular head. Sural and superficial fibular sensory responses are normal.",
        "Profuse fibrillation potentials and positive sharp waves in the left tibialis anterior, extensor "
        "hallucis longus and tibialis posterior; few in the L5 paraspinals. Markedly reduced recruitment.",
        concl,
        header="EMG / NERVE CONDUCTION REPORT",
    )
    return (
        Scenario(
            "07-progressive-foot-drop",
            "7",
            PV,
            p,
            "Progressive foot drop: A1 warning (urgent MRI + spine-surgery referral), A2 upgraded to "
            "warning, "
            "A3 suppressed, no A0; A5 fires as warning because issue 3 lists 'or A1' ('warning ... with "
            "A1'); "
            "issue 11: with no MRI on file the referral is not one click away (order-select would answer "
            "'MRI first'); the MRI card comes first.",
        )
        .add(
            emg_report(p, "s07-emg", "2026-01-08", conclusion=concl, cpt=["95886"], form=form),
            condition(p, "s07-footdrop", icd("M21.372"), "2026-01-08", category="encounter-diagnosis"),
            exam(
                p, "s07-exam", "2026-01-12", "L ankle dorsiflexion 2/5, worsening over 1 week", "Motor exam"
            ),
            encounter(p, "s07-enc", "2026-01-12", "Left foot drop"),
        )
        .expect(
            # The A1 card explains the urgency; the orders sit on the MRI and referral cards, never twice.
            card("motor-deficit", "warning", []),
            MRI_WARN,
            card("surgical-referral", "warning", []),
        )
    )


def s08() -> Scenario:
    p = "pt-s08"
    concl = (
        "Left L5 radiculopathy with evidence of ongoing denervation (positive sharp waves in tibialis "
        "anterior "
        "and tibialis posterior) and early reinnervation. No evidence of a peripheral polyneuropathy."
    )
    return (
        Scenario(
            "08-eight-weeks-pt-done-mri-herniation",
            "8",
            PV,
            p,
            "8 wk (onset 2025-11-18 = 58 d), PT done, MRI L4-5 extrusion compressing L5, no ESI: A4 info "
            "(TFESI "
            "64483) + A5 info (spine referral; microdiscectomy 63030 named in detail only); no A2 (MRI "
            "present).",
        )
        .add(
            emg_report(p, "s08-emg", "2025-12-01", conclusion=concl, cpt=["95886", "95910"]),
            condition(p, "s08-radic", icd("M51.16"), "2025-11-18"),
            procedure(p, "s08-pt-eval", "97162", "2025-12-05"),
            procedure(p, "s08-pt-ex", "97110", "2025-12-19"),
            mri_report(
                p,
                "s08-mri",
                "2026-01-05",
                "Left paracentral L4-5 extrusion compressing the traversing left L5 nerve root. "
                "Mild facet arthropathy at L4-5 and L5-S1. No high-grade canal stenosis.",
            ),
            referral(
                p, "s08-pt-ref", "306170007", "Physical therapy", status="completed", authored="2025-12-02"
            ),
            mri_order(p, "s08-mri-order", status="completed", authored="2025-12-30"),
            encounter(p, "s08-enc", "2026-01-09", "Persistent left leg pain after physical therapy"),
        )
        .expect(ESI, card("surgical-referral", "info", ["308482002"]))
    )


SCENARIOS = (s01, s02, s03, s04, s05, s06, s07, s08)
