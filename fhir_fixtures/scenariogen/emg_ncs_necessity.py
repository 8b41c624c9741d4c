"""EMG/NCS necessity scenarios (issue 4, Rule B; order-sign and order-select): brief scenarios 9-13 and 15-17
and the extra unit tests 31-35."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scenariogen.model import B_OS, B_SIGN, Scenario, card
from scenariogen.resources import (
    condition,
    edx_order,
    encounter,
    exam,
    mri_report,
    note,
    procedure,
    service_request,
)
from scenariogen.terminology import CPT, LOINC, SCT, coding, concept, icd

LOW_BACK_PAIN_NOTE = (
    "Follow-up for chronic low back pain after L5-S1 fusion (2019). Pain is axial, worse with standing, "
    "5/10. No leg pain, numbness or weakness reported. Exam: strength 5/5 in both legs, reflexes "
    "symmetric. Plan: EMG/NCS of both lower extremities."
)
M47816 = icd("M47.816")


def mismatch(*order_ids: str, codes: Iterable[str] = ()) -> dict[str, Any]:
    """One card per decision (issue 13): every mismatched order of the call in one card.

    Issue 11: a diagnosis change is offered only for codes the chart supports (`codes`, the first one
    recommended); without radicular findings nothing is marked recommended (the next step is the
    clinician's). The referrals replace the orders (each also deletes them), the pain-management one when
    there is room (at most 4 suggestions), and a last suggestion removes the orders.
    """
    codes = list(codes)
    referrals = ["308482002", "306109009"] if len(codes) < 2 else ["308482002"]
    return card(
        "emg-dx-mismatch",
        "warning",
        [*codes, *referrals],
        codes[:1],
        order=f"ServiceRequest/{order_ids[0]}",
        deletes=[f"ServiceRequest/{o}" for o in order_ids],
    )


def link(order_id: str, code: str) -> dict[str, Any]:
    return card("emg-dx-link", "info", [code], order=f"ServiceRequest/{order_id}", deletes=[])


def _b_history(s: Scenario, *, normal_exam: bool = True) -> Scenario:
    """Scenario 9's chart: M47.816 on the problem list, prior EMG 2022, MRI 2025-09-02, post L5-S1 PLIF."""
    p = s.pid
    s.add(
        condition(p, f"{p}-spondylosis", icd("M47.816"), "2021-04-12"),
        condition(p, f"{p}-fusion", icd("Z98.1"), "2019-05-14"),
        procedure(p, f"{p}-plif", "22630", "2019-05-14", text="L5-S1 posterior lumbar interbody fusion"),
        procedure(p, f"{p}-prior-emg", "95886", "2022-03-10"),
        procedure(p, f"{p}-prior-ncs", "95910", "2022-03-10"),
        mri_report(
            p,
            f"{p}-mri",
            "2025-09-02",
            "Post L5-S1 PLIF with intact hardware. Mild L5/S1 disc bulge without foraminal narrowing. "
            "Mild L4-5 facet arthropathy. No canal stenosis.",
        ),
        note(p, f"{p}-note", "2026-01-08", LOW_BACK_PAIN_NOTE),
        encounter(p, f"{p}-enc", "2026-01-08", "Chronic low back pain"),
    )
    if normal_exam:
        s.add(
            exam(
                p,
                f"{p}-exam-2025",
                "2025-10-02",
                "Lower extremity strength 5/5 throughout. Reflexes 2+ and symmetric at knees and ankles. "
                "Sensation intact to light touch. Straight-leg raise negative bilaterally.",
            )
        )
    return s


def _bilateral_edx(p: str, prefix: str, reasons, ncs: str = "95910") -> list[dict[str, Any]]:
    return [
        edx_order(
            p, f"{prefix}-emg", "95886", "EMG BILATERAL LOWER EXTREMITIES", reasons=reasons, quantity=2
        ),
        edx_order(
            p, f"{prefix}-ncs", ncs, "NERVE CONDUCTION STUDIES BILATERAL LOWER EXTREMITIES", reasons=reasons
        ),
    ]


def s09() -> Scenario:
    p = "pt-s09"
    s = Scenario(
        "09-edx-core-mismatch",
        "9",
        B_SIGN,
        p,
        "Core mismatch (95886 x2 + 95910, LE bilateral, reason M47.816 only): one Rule B warning for both "
        "orders (issue 13); needle EMG concurrent yes; prior EMG 2022-03-10 > 12 mo; MRI summary; axial "
        "pain only, no deficits -> no diagnosis change offered (issue 11); referrals and removal offered.",
    )
    _b_history(s).draft(*_bilateral_edx(p, "s09", [M47816]))
    return s.expect(mismatch("s09-emg", "s09-ncs"))


def s10() -> Scenario:
    p = "pt-s10"
    s = Scenario(
        "10-edx-radiculopathy-on-order",
        "10",
        B_SIGN,
        p,
        "reasonCode M47.816 and M54.16 on the order: no card (not 'only M47.816').",
    )
    _b_history(s).draft(*_bilateral_edx(p, "s10", [M47816, icd("M54.16")]))
    return s


def s11() -> Scenario:
    p = "pt-s11"
    s = Scenario(
        "11-edx-radiculopathy-on-problem-list",
        "11",
        B_SIGN,
        p,
        "Order reason M47.816 only, M51.17 active on the problem list: Rule B info 'link M51.17 to the "
        "order' (emg-dx-link, update adding M51.17), no mismatch warning.",
    )
    s.add(
        condition(p, "s11-spondylosis", icd("M47.816"), "2023-02-01"),
        condition(p, "s11-disc-radic", icd("M51.17"), "2025-10-20"),
        mri_report(
            p,
            "s11-mri",
            "2025-11-14",
            "Right paracentral L5-S1 disc protrusion contacting the traversing S1 root.",
        ),
    )
    s.draft(
        edx_order(p, "s11-emg", "95886", "EMG/NCS RIGHT LOWER EXTREMITY", reasons=[M47816], side="24028007")
    )
    return s.expect(link("s11-emg", "M51.17"))


def s12() -> Scenario:
    p = "pt-s12"
    s = Scenario(
        "12-edx-upper-extremity",
        "12",
        B_SIGN,
        p,
        "Upper-extremity EMG (bodySite 53120007, text RIGHT UPPER EXTREMITY) with M47.816: no card (out of "
        "scope).",
    )
    s.add(
        condition(p, "s12-spondylosis", icd("M47.816"), "2022-06-01"),
        condition(p, "s12-dm", icd("E11.9"), "2018-03-15"),
    )
    s.draft(
        edx_order(
            p,
            "s12-emg",
            "95886",
            "EMG/NCS RIGHT UPPER EXTREMITY",
            reasons=[M47816],
            limb="upper",
            side="24028007",
        )
    )
    return s


def s13() -> Scenario:
    p = "pt-s13"
    s = Scenario(
        "13-edx-entered-in-error-radiculopathy",
        "13",
        B_SIGN,
        p,
        "reasonCode M47.816 + reasonReference to Condition M54.16 entered-in-error: effective DX = {M47.816} "
        "-> Rule B warning (the erroneous Condition is not a problem-list rescue either).",
    )
    s.add(
        condition(p, "s13-spondylosis", icd("M47.816"), "2024-01-10"),
        condition(p, "s13-radic-eie", icd("M54.16"), "2025-12-29", verification="entered-in-error"),
    )
    s.draft(
        edx_order(
            p,
            "s13-emg",
            "95886",
            "EMG/NCS LEFT LOWER EXTREMITY",
            reasons=[M47816],
            side="7771000",
            reason_refs=["Condition/s13-radic-eie"],
        )
    )
    return s.expect(mismatch("s13-emg"))


def s15() -> Scenario:
    p = "pt-s15"
    s = Scenario(
        "15-edx-repeat-within-12-months",
        "15",
        B_SIGN,
        p,
        "EDX 95886/95910 done 2025-08-20, draft 95886 + 95911 with M47.816, no new deficits: Rule B warning "
        "(one per order) + line 'repeat EDX within 12 months without documented new/progressive findings'.",
    )
    s.add(
        condition(p, "s15-spondylosis", icd("M47.816"), "2023-09-01"),
        procedure(p, "s15-prior-emg", "95886", "2025-08-20"),
        procedure(p, "s15-prior-ncs", "95910", "2025-08-20"),
        exam(
            p,
            "s15-exam",
            "2026-01-06",
            "Strength 5/5 in all lower extremity myotomes. Knee and ankle reflexes 2+ symmetric. Sensation "
            "intact. Negative straight-leg raise.",
        ),
    )
    s.draft(*_bilateral_edx(p, "s15", [M47816], ncs="95911"))
    return s.expect(mismatch("s15-emg", "s15-ncs"))


def s16() -> Scenario:
    p = "pt-s16"
    s = Scenario(
        "16-edx-new-deficits",
        "16",
        B_SIGN,
        p,
        "As #9 + exam 2026-01-10 'EHL 4/5 left, diminished left medial hamstring reflex, +SLR left at 40°': "
        "Rule B warning with S1 isRecommended=true. Issue 11: only the code the documented findings support "
        "(M54.16: the exam localises a lumbar root lesion; the MRI shows no disc lesion, so no M51.1x).",
    )
    _b_history(s).add(
        exam(
            p,
            "s16-exam",
            "2026-01-10",
            "EHL 4/5 left, diminished left medial hamstring reflex, +SLR left at 40°",
        )
    )
    s.draft(*_bilateral_edx(p, "s16", [M47816]))
    return s.expect(mismatch("s16-emg", "s16-ncs", codes=["M54.16"]))


def s17() -> Scenario:
    p = "pt-s17"
    s = Scenario(
        "17-ncs-only-order",
        "17",
        B_SIGN,
        p,
        "NCS-only draft (95909, no needle EMG) with M47.816 and no EMG in 12 mo: Rule B warning + 'NCS "
        "without "
        "needle EMG not recommended for radiculopathy'; criterion B 'not met'.",
    )
    s.add(condition(p, "s17-spondylosis", icd("M47.816"), "2024-05-20"))
    s.draft(edx_order(p, "s17-ncs", "95909", "NCS LEFT LOWER EXTREMITY", reasons=[M47816], side="7771000"))
    return s.expect(mismatch("s17-ncs"))


def x31() -> Scenario:
    p = "pt-x31"
    s = Scenario(
        "31-edx-reason-code-without-dot",
        "x-b-reason-code-without-dot",
        B_SIGN,
        p,
        "Brief extra test: reasonCode written 'M47816' (no dot) normalises to M47.816 -> Rule B warning.",
    )
    s.add(condition(p, "x31-spondylosis", icd("M47.816"), "2024-11-04"))
    s.draft(
        edx_order(
            p, "x31-emg", "95886", "EMG/NCS LEFT LOWER EXTREMITY", reasons=[icd("M47816")], side="7771000"
        )
    )
    return s.expect(mismatch("x31-emg"))


def x32() -> Scenario:
    p = "pt-x32"
    s = Scenario(
        "32-edx-snomed-only-reason",
        "x-b-snomed-only-reason",
        B_SIGN,
        p,
        "Brief extra test: reason is SNOMED 68859000 only -> no ICD match -> no card (no SNOMED->ICD map).",
    )
    s.add(condition(p, "x32-spondylosis", concept(coding(SCT, "68859000")), "2024-11-04"))
    s.draft(
        edx_order(
            p,
            "x32-emg",
            "95886",
            "EMG/NCS LEFT LOWER EXTREMITY",
            reasons=[concept(coding(SCT, "68859000"))],
            side="7771000",
        )
    )
    return s


def x33() -> Scenario:
    p = "pt-x33"
    s = Scenario(
        "33-edx-revoked-prior-emg-order",
        "x-b-revoked-prior-emg-order",
        B_SIGN,
        p,
        "Brief extra test: a revoked EMG ServiceRequest (2025-09-08) is ignored as 'prior EMG'; needle EMG "
        "criterion met by the draft itself; no 'repeat EDX' line -> Rule B warning.",
    )
    s.add(
        condition(p, "x33-spondylosis", icd("M47.816"), "2024-02-02"),
        service_request(
            p,
            "x33-emg-revoked",
            concept(coding(CPT, "95886"), text="EMG/NCS LEFT LOWER EXTREMITY"),
            status="revoked",
            authored="2025-09-08",
            category="103693007",
            reasons=[M47816],
        ),
    )
    s.draft(
        edx_order(p, "x33-emg", "95886", "EMG/NCS LEFT LOWER EXTREMITY", reasons=[M47816], side="7771000")
    )
    return s.expect(mismatch("x33-emg"))


def x34() -> Scenario:
    p = "pt-x34"
    s = Scenario(
        "34-edx-bundle-with-lab",
        "x-b-bundle-with-lab",
        B_SIGN,
        p,
        "Issue 4 test: EMG 95886 + NCS 95910 + unrelated lab (LOINC 2345-7), each with M47.816 -> exactly "
        "two "
        "mismatch cards (EMG and NCS orders, not the lab).",
    )
    s.add(condition(p, "x34-spondylosis", icd("M47.816"), "2023-07-19"))
    lab = service_request(
        p,
        "x34-glucose",
        concept(coding(LOINC, "2345-7"), text="GLUCOSE, SERUM"),
        category="108252007",
        reasons=[M47816],
    )
    s.draft(*_bilateral_edx(p, "x34", [M47816]), lab)
    return s.expect(mismatch("x34-emg", "x34-ncs"))


def x35() -> Scenario:
    p = "pt-x35"
    s = Scenario(
        "35-edx-order-select-one-selected",
        "x-b-order-select-one-selected",
        B_OS,
        p,
        "Issue 4 test: order-select with two EDX drafts, selections names only the EMG -> exactly one "
        "mismatch "
        "card, for the EMG order.",
    )
    s.add(condition(p, "x35-spondylosis", icd("M47.816"), "2023-03-03"))
    s.draft(*_bilateral_edx(p, "x35", [M47816]), selected=["x35-emg"])
    return s.expect(mismatch("x35-emg"))


SCENARIOS = (s09, s10, s11, s12, s13, s15, s16, s17, x31, x32, x33, x34, x35)
