"""The facts a tumour board was given, as a person reads them: one summary of the
patient document by section, with unknowns shown as 'unknown' (never 'no').

Used by the printable report and the web assessment page, so both show the same record.
"""
from __future__ import annotations

from typing import Any

# (section, dotted field, label, unit)
PATIENT_FIELDS: list[tuple[str, str, str, str]] = [
    ("General", "id", "Identifier", ""),
    ("General", "age_years", "Age", "years"),
    ("General", "ecog", "ECOG performance status", ""),
    ("General", "fit_for_major_surgery", "Fit for major surgery", ""),
    ("General", "right_heart_insufficiency", "Right heart insufficiency", ""),
    ("General", "transplant_contraindication", "Other contraindication to transplantation", ""),
    ("Primary tumour", "primary.site", "Site", ""),
    ("Primary tumour", "primary.resected", "Resected", ""),
    ("Pathology", "pathology.differentiation", "Differentiation", ""),
    ("Pathology", "pathology.ki67_percent", "Ki-67", "%"),
    ("Pathology", "pathology.mitoses_per_10hpf", "Mitoses", "per 10 HPF"),
    ("Function", "functional_syndrome", "Functional syndrome", ""),
    ("Function", "symptomatic", "Symptomatic (hormonal or bulk)", ""),
    ("Function", "sstr_imaging", "Somatostatin-receptor imaging", ""),
    ("Liver", "liver.timing", "Timing", ""),
    ("Liver", "liver.burden_percent", "Hepatic tumour burden", "%"),
    ("Liver", "liver.lesion_count", "Number of lesions", ""),
    ("Liver", "liver.largest_lesion_cm", "Largest lesion", "cm"),
    ("Liver", "liver.lobes", "Lobes", ""),
    ("Liver", "liver.pattern", "Pattern", ""),
    ("Liver", "liver.resectable_fraction_percent", "Removable share of hepatic tumour", "%"),
    ("Liver", "liver.portal_vein_thrombosis", "Portal vein thrombosis", ""),
    ("Liver", "liver.liver_function", "Liver function", ""),
    ("Extrahepatic disease", "extrahepatic.present", "Present", ""),
    ("Extrahepatic disease", "extrahepatic.sites", "Sites", ""),
    ("Extrahepatic disease", "extrahepatic.resectable", "All resectable", ""),
    ("Extrahepatic disease", "extrahepatic.peritoneal_carcinomatosis", "Peritoneal carcinomatosis", ""),
    ("Course", "course.status", "Status", ""),
    ("Course", "course.stable_months", "Stable for", "months"),
    ("Course", "course.progression_within_12_months", "Progression within 12 months", ""),
    ("Course", "prior_therapies", "Prior therapies", ""),
]



def as_dict(patient: Any) -> dict[str, Any]:
    if patient is None:
        return {}
    if isinstance(patient, dict):
        return patient
    if hasattr(patient, "model_dump"):
        return patient.model_dump()
    raise TypeError(f"patient must be a Patient or a mapping, not {type(patient).__name__}")


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def show(value: Any, unit: str = "") -> str:
    """A value as the report prints it; None is 'unknown', never 'no'."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        value = f"{value:g}"
    text = str(value).replace("_", " ")
    return f"{text} {unit}" if unit else text


def patient_rows(patient: Any) -> list[dict[str, Any]]:
    data = as_dict(patient)
    rows = []
    for section, field, label, unit in PATIENT_FIELDS:
        value = _get(data, field)
        if field == "extrahepatic.sites":
            text = "unknown" if value is None else (", ".join(show(s) for s in value) or "none")
        elif field == "prior_therapies":
            text = "unknown" if value is None else ("; ".join(
                f"{show(p.get('therapy'))} ({show(p.get('outcome'))})" for p in value) or "none")
        elif field == "id" and value is None:
            continue
        else:
            text = show(value, unit)
        rows.append({"section": section, "field": field, "label": label, "value": text,
                     "unknown": text == "unknown"})
    return rows


def patient_sections(patient: Any) -> dict[str, list[dict[str, Any]]]:
    """:func:`patient_rows` grouped by section, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in patient_rows(patient):
        out.setdefault(r["section"], []).append(r)
    return out
