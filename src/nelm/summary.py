"""The facts a tumour board was given, as a person reads them: one summary of the
patient document by section, with unknowns shown as 'unknown' (never 'no').

Used by the printable report and the web assessment page, so both show the same record.
"""
from __future__ import annotations

from functools import lru_cache

from typing import Any

# (section, dotted field, label, unit)
PATIENT_FIELDS: list[tuple[str, str, str, str]] = [
    ("General", "id", "Identifier", ""),
    ("General", "age_years", "Age", "years"),
    ("General", "ecog", "ECOG performance status", ""),
    ("General", "fit_for_major_surgery", "Fit for major surgery", ""),
    ("General", "right_heart_insufficiency", "Right heart insufficiency", ""),
    ("General", "transplant_contraindication", "Other contraindication to transplantation", ""),
    ("Primary tumour", "primary.site", "Primary site", ""),
    ("Primary tumour", "primary.resected", "Primary resected", ""),
    ("Pathology", "pathology.differentiation", "Differentiation", ""),
    ("Pathology", "pathology.ki67_percent", "Ki-67", "%"),
    ("Pathology", "pathology.mitoses_per_10hpf", "Mitoses", "per 10 HPF"),
    ("Pathology", "pathology.ki67_specimen", "Ki-67 counted on", ""),
    ("Pathology", "pathology.reported_grade", "Grade stated in the report", ""),
    ("Function", "functional_syndrome", "Functional syndrome", ""),
    ("Function", "symptomatic", "Symptomatic (hormonal or bulk)", ""),
    ("Function", "functional_control", "Control of the syndrome", ""),
    ("Function", "sstr_imaging", "Somatostatin-receptor imaging", ""),
    ("Function", "sstr_uptake_krenning", "SSTR uptake (Krenning score)", ""),
    ("Function", "fdg_pet", "FDG-PET", ""),
    ("General", "carcinoid_heart_disease", "Carcinoid heart disease", ""),
    ("Liver", "liver.timing", "Timing of liver metastases", ""),
    ("Liver", "liver.burden_percent", "Hepatic tumour burden", "%"),
    ("Liver", "liver.lesion_count", "Number of liver lesions", ""),
    ("Liver", "liver.largest_lesion_cm", "Largest liver lesion", "cm"),
    ("Liver", "liver.lobes", "Liver lobes involved", ""),
    ("Liver", "liver.pattern", "Pattern of liver involvement", ""),
    ("Liver", "liver.resectable_fraction_percent", "Removable share of hepatic tumour", "%"),
    ("Liver", "liver.portal_vein_thrombosis", "Portal vein thrombosis", ""),
    ("Liver", "liver.liver_function", "Liver function", ""),
    ("Liver", "liver.resectable", "All hepatic disease resectable (surgeon)", ""),
    ("Liver", "liver.child_pugh", "Child-Pugh class", ""),
    ("Liver", "liver.bilirubin_mg_dl", "Bilirubin", "mg/dL"),
    ("Liver", "liver.biliary_enteric_bypass", "Bilio-enteric anastomosis, sphincterotomy or stent", ""),
    ("Liver", "liver.lung_shunt_percent", "Lung shunt fraction", "%"),
    ("Extrahepatic disease", "extrahepatic.present", "Extrahepatic disease present", ""),
    ("Extrahepatic disease", "extrahepatic.sites", "Extrahepatic sites", ""),
    ("Extrahepatic disease", "extrahepatic.resectable", "All extrahepatic disease resectable", ""),
    ("Extrahepatic disease", "extrahepatic.peritoneal_carcinomatosis", "Peritoneal carcinomatosis", ""),
    ("Extrahepatic disease", "extrahepatic.symptomatic", "Symptomatic extrahepatic site", ""),
    ("Laboratory", "labs.egfr_ml_min", "eGFR", "mL/min"),
    ("Laboratory", "labs.platelets_10e9_per_l", "Platelets", "×10⁹/L"),
    ("Laboratory", "labs.neutrophils_10e9_per_l", "Neutrophils", "×10⁹/L"),
    ("Course", "course.status", "Course of disease", ""),
    ("Course", "course.stable_months", "Stable or responding for", "months"),
    ("Course", "course.progression_within_12_months", "Progression within 12 months", ""),
    ("Course", "prior_therapies", "Prior therapies", ""),
]



# enumeration values as a clinician writes them (the contract's ids stay in the JSON)
VALUE_LABELS: dict[str, dict[str, str]] = {
    "primary.site": {"jejunum_ileum": "small intestine (jejunum/ileum)", "unknown_primary": "unknown primary",
                     "pancreas": "pancreas", "duodenum": "duodenum", "stomach": "stomach", "appendix": "appendix",
                     "colon": "colon", "rectum": "rectum", "lung": "lung", "thymus": "thymus", "other": "other site"},
    "liver.pattern": {"single": "single lesion (Frilling I)", "dominant_with_satellites":
                      "dominant lesion with satellites (Frilling II)", "disseminated": "disseminated (Frilling III)"},
    "extrahepatic.sites": {"lymph_nodes": "lymph nodes", "lung": "lung", "bone": "bone", "peritoneum": "peritoneum",
                           "other": "other site"},
    "extrahepatic.peritoneal_carcinomatosis": {"none": "none", "limited_resectable": "limited and resectable",
                                               "diffuse_unresectable": "diffuse or unresectable"},
    "pathology.ki67_specimen": {"primary": "primary tumour", "liver_metastasis": "liver metastasis", "other": "other site"},
    "carcinoid_heart_disease": {"none": "none", "present": "valve disease, not operated",
                                "valves_replaced": "valves replaced"},
    "functional_syndrome": {"none": "none (non-functional)", "carcinoid": "carcinoid syndrome", "vipoma": "VIPoma",
                            "other": "another hormonal syndrome"},
}
_FIELD_INFO = {f: (label, unit) for _, f, label, unit in PATIENT_FIELDS}


def value_label(field: str | None, value: Any) -> str:
    """A value of a contract field as a clinician reads it, without its unit."""
    if value is None:
        return "unknown"
    if isinstance(value, str) and field in VALUE_LABELS:
        return VALUE_LABELS[field].get(value, value.replace("_", " "))
    return show(value)


def with_unit(field: str, text: str) -> str:
    unit = _FIELD_INFO.get(field, ("", ""))[1]
    return f"{text} {unit}" if unit and text != "unknown" else text


@lru_cache(maxsize=4096)  # a pure function of its arguments, called for every reason
def fact_label(field: str, column: str | None = None) -> str:
    """A person's name for a contract field (or for one therapy's column of the history)."""
    if column and column.startswith("prior_") and field.startswith("prior_therapies"):
        from .knowledge.ruleset import OPTION_LABELS

        rest = column.removeprefix("prior_")
        for suffix, what in (("_months", "months to progression on earlier "), ("_ongoing", "still receiving ")):
            if rest.endswith(suffix):
                return what + OPTION_LABELS.get(rest.removesuffix(suffix), rest)
        if rest == "progression_count":
            return "number of earlier treatments the disease progressed on"
        if rest == "systemic_lines":
            return "number of earlier systemic treatment lines"
        return "earlier " + OPTION_LABELS.get(rest, rest)
    if field in _FIELD_INFO:
        return _FIELD_INFO[field][0]
    return field.replace(".", ": ").replace("_", " ")


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


def _prior(p: dict[str, Any]) -> str:
    from .knowledge.ruleset import OPTION_LABELS

    what = [show(p.get("outcome"))]
    if p.get("months_to_progression") is not None:
        what.append(f"progression after {show(p['months_to_progression'])} months")
    if p.get("ongoing"):
        what.append("ongoing")
    return f"{OPTION_LABELS.get(p.get('therapy'), show(p.get('therapy')))} ({', '.join(what)})"


def patient_rows(patient: Any) -> list[dict[str, Any]]:
    data = as_dict(patient)
    rows = []
    for section, field, label, unit in PATIENT_FIELDS:
        value = _get(data, field)
        if field == "extrahepatic.sites":
            text = "unknown" if value is None else (", ".join(show(s) for s in value) or "none")
        elif field == "prior_therapies":
            text = "unknown" if value is None else ("; ".join(_prior(p) for p in value) or "none")
        elif field == "id" and value is None:
            continue
        else:
            text = with_unit(field, value_label(field, value))
        rows.append({"section": section, "field": field, "label": label, "value": text,
                     "unknown": text == "unknown"})
    return rows


def patient_sections(patient: Any) -> dict[str, list[dict[str, Any]]]:
    """:func:`patient_rows` grouped by section, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in patient_rows(patient):
        out.setdefault(r["section"], []).append(r)
    return out


# ---------------------------------------------------------------------------- the plan

WHEN_LABELS = {"now": "Now", "after_response": "After response", "at_progression": "At progression",
               "if_symptoms_persist": "If symptoms persist"}


def assumption_lines(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """The plan's assumptions in words, (assumed, if not); checks sharing one requirement merged."""
    merged: dict[str, list[str]] = {}
    for asm in plan.get("assumptions", []):
        if asm.get("check"):
            text = f"{asm['assumed']} (not yet known)"
        else:
            text = f"{asm['label'].lower()}: {show(asm['assumed'])} (to be confirmed)"
        merged.setdefault(text, [])
        if asm["if_not"] not in merged[text]:
            merged[text].append(asm["if_not"])
    return [(text, " ".join(ifs)) for text, ifs in merged.items()]


def plan_view(assessment: dict[str, Any]) -> dict[str, Any] | None:
    """The plan as the text summary, the web page and the report show it."""
    from .knowledge.ruleset import OPTION_LABELS

    plan = assessment.get("plan")
    if not plan:
        return None
    verdicts = {o["id"]: o["verdict"] for o in assessment.get("options", [])}
    steps = []
    for st in plan["steps"]:
        steps.append({"n": st["step"], "when": WHEN_LABELS.get(st["when"], st["when"]),
                      "options": [{"id": o, "label": OPTION_LABELS.get(o, o), "verdict": verdicts.get(o, "")}
                                  for o in st["options"]],
                      "joiner": " + " if st.get("combine") == "together" else " or ",
                      "intent": show(st["intent"]), "reason": st["reason"], "sources": st["sources"],
                      "level": st.get("level")})
    lead = plan["steps"][0]["options"][0] if plan["steps"] and plan["steps"][0]["options"] else None
    return {"status": plan["status"], "pathway": plan.get("pathway_label"), "steps": steps,
            "leading": OPTION_LABELS.get(lead, lead) if lead else None,
            "assumptions": assumption_lines(plan), "missing": plan.get("missing_labels", [])}
