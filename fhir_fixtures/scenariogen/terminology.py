"""Code systems and display names of the scenario fixtures (displays from the brief, section 2; CPT
descriptors paraphrased), plus the coding/concept helpers every builder uses."""

from __future__ import annotations

from typing import Any

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL_PROC = "https://ehr.example.org/fhir/CodeSystem/local-procedure-codes"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
US_CORE_DOC_CAT = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
EMG_ACCESSION = "https://ehr.example.org/fhir/sid/emg-accession"

DISPLAY = {
    (ICD, "M54.16"): "Radiculopathy, lumbar region",
    (ICD, "M54.17"): "Radiculopathy, lumbosacral region",
    (ICD, "M51.16"): "Intervertebral disc disorders with radiculopathy, lumbar region",
    (ICD, "M51.17"): "Intervertebral disc disorders with radiculopathy, lumbosacral region",
    (ICD, "M54.42"): "Lumbago with sciatica, left side",
    (ICD, "M54.41"): "Lumbago with sciatica, right side",
    (ICD, "M47.816"): "Spondylosis without myelopathy or radiculopathy, lumbar region",
    (ICD, "M47816"): "Spondylosis without myelopathy or radiculopathy, lumbar region",
    (ICD, "M21.372"): "Foot drop, left foot",
    (ICD, "R33.9"): "Retention of urine, unspecified",
    (ICD, "G83.4"): "Cauda equina syndrome",
    (ICD, "G57.32"): "Lesion of lateral popliteal nerve, left lower limb",
    (ICD, "Z98.1"): "Arthrodesis status",
    (ICD, "M54.50"): "Low back pain, unspecified",
    (ICD, "E11.9"): "Type 2 diabetes mellitus without complications",
    (SCT, "68859000"): "Spondylosis without myelopathy (disorder)",
    (SCT, "61685007"): "Lower limb structure (body structure)",
    (SCT, "53120007"): "Upper limb structure (body structure)",
    (SCT, "7771000"): "Left (qualifier value)",
    (SCT, "24028007"): "Right (qualifier value)",
    (SCT, "51440002"): "Right and left (qualifier value)",
    (SCT, "308482002"): "Referral to neurosurgeon (procedure)",
    (SCT, "306170007"): "Referral to physiotherapy service (procedure)",
    (SCT, "103693007"): "Diagnostic procedure (procedure)",
    (SCT, "363679005"): "Imaging (procedure)",
    (SCT, "108252007"): "Laboratory procedure (procedure)",
    (SCT, "3457005"): "Patient referral (procedure)",
    (SCT, "387713003"): "Surgical procedure (procedure)",
    (SCT, "185345009"): "Encounter for symptom (procedure)",
    (SCT, "50849002"): "Emergency room admission (procedure)",
    (LOINC, "18749-2"): "Electromyogram study",
    (LOINC, "30679-5"): "MR Lumbar spine WO contrast",
    (LOINC, "29545-1"): "Physical findings Narrative",
    (LOINC, "11506-3"): "Progress note",
    (LOINC, "2345-7"): "Glucose [Mass/volume] in Serum or Plasma",
    (CPT, "95886"): "Needle EMG, each extremity with related paraspinal areas, with NCS; complete",
    (CPT, "95909"): "Nerve conduction studies; 5-6 studies",
    (CPT, "95910"): "Nerve conduction studies; 7-8 studies",
    (CPT, "95911"): "Nerve conduction studies; 9-10 studies",
    (CPT, "72148"): "MRI spinal canal and contents, lumbar; without contrast",
    (CPT, "72197"): "MRI pelvis without contrast, followed by contrast and further sequences",
    (CPT, "64483"): "Transforaminal epidural injection, lumbar or sacral, single level, with imaging",
    (CPT, "97161"): "Physical therapy evaluation, low complexity",
    (CPT, "97162"): "Physical therapy evaluation, moderate complexity",
    (CPT, "97110"): "Therapeutic exercises, each 15 minutes",
    (CPT, "63030"): "Laminotomy with nerve root decompression and/or excision of disc, 1 interspace, lumbar",
    (CPT, "22630"): "Arthrodesis, posterior interbody technique, single interspace; lumbar",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    display = display or DISPLAY.get((system, code))
    if display:
        out["display"] = display
    return out


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def icd(code: str, text: str | None = None) -> dict[str, Any]:
    return concept(coding(ICD, code), text=text)
