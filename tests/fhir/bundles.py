"""Synthetic FHIR R4 Bundles for the tests: resource builders, and a Bundle stating a
patient document's facts in the codes of src/nelm/fhir/mapping.yaml."""
from __future__ import annotations

import datetime as dt
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
OPTION = "urn:nelm:option"
PATIENT_ID = "p1"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}
ON = dt.date(2026, 11, 22)  # the assessment date the tests read Bundles on


def patient(birth: str = "1968-05-02", pid: str = PATIENT_ID) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth}


def observation(oid: str, code: str, value: Any = None, unit: str | None = None, date: str | None = "2026-10-01",
                status: str = "final", system: str = LOINC, integer: bool = False, subject=SUBJECT,
                ucum: bool = True) -> dict[str, Any]:
    o: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": status, "subject": subject,
                         "code": {"coding": [{"system": system, "code": code}]}}
    if date:
        o["effectiveDateTime"] = date
    if integer:
        o["valueInteger"] = value
    elif value is not None:
        q: dict[str, Any] = {"value": value}
        if unit is not None:
            q["unit"] = unit
            if ucum:
                q |= {"system": UCUM, "code": unit}
        o["valueQuantity"] = q
    return o


def condition(cid: str, code: str, system: str = ICD10CM, onset: str | None = "2025-01-10",
              verification: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"resourceType": "Condition", "id": cid, "subject": SUBJECT,
                         "code": {"coding": [{"system": system, "code": code}]}}
    if onset:
        c["onsetDateTime"] = onset
    if verification:
        c["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": verification}]}
    return c


def medication(mid: str, code: str, status: str = "active", system: str = ATC, start: str = "2025-02-01",
               end: str | None = None, kind: str = "MedicationStatement") -> dict[str, Any]:
    m: dict[str, Any] = {"resourceType": kind, "id": mid, "status": status, "subject": SUBJECT,
                         "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]}}
    if kind == "MedicationRequest":
        m["intent"] = "order"
        m["authoredOn"] = start
    else:
        m["effectivePeriod"] = {"start": start} | ({"end": end} if end else {})
    return m


def bundle(*resources: dict[str, Any], kind: str = "collection", add_patient: bool = True) -> dict[str, Any]:
    """A Bundle of ``resources``; without a Patient among them, Patient/p1 (no birth date) is added
    first, since the reader reads only records it can tell are the Bundle's one Patient's."""
    if add_patient and not any(r.get("resourceType") == "Patient" for r in resources):
        resources = ({"resourceType": "Patient", "id": PATIENT_ID}, *resources)
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": f"urn:uuid:{r['resourceType'].lower()}-{r.get('id', i)}", "resource": r}
                      for i, r in enumerate(resources)]}


# ---------------------------------------------------------------- a patient document as FHIR

SITE_CODES = {"jejunum_ileum": "C7A.012", "duodenum": "C7A.010", "appendix": "C7A.020", "lung": "C7A.090",
              "thymus": "C7A.091", "stomach": "C7A.092", "pancreas": "C25.4"}
EXTRAHEPATIC_CODES = {"lymph_nodes": "C7B.01", "bone": "C7B.03", "peritoneum": "C7B.04", "other": "C7B.09"}
THERAPY_CODES = {"ssa": "H01CB02", "everolimus": "L01EG02", "sunitinib": "L01EX01", "cabozantinib": "L01XE26",
                 "prrt": "V10XX04"}
LABS = {("liver", "bilirubin_mg_dl"): ("1975-2", "mg/dL"), ("labs", "egfr_ml_min"): ("62238-1", "mL/min/{1.73_m2}"),
        ("labs", "platelets_10e9_per_l"): ("777-3", "10*9/L"),
        ("labs", "neutrophils_10e9_per_l"): ("751-8", "10*9/L")}


def readable_part(doc: dict[str, Any]) -> dict[str, Any]:
    """The facts of ``doc`` that the mapping table can carry (what a Bundle can say)."""
    out: dict[str, Any] = {}
    if doc.get("age_years") is not None:
        out["age_years"] = int(doc["age_years"])
    if doc.get("ecog") is not None:
        out["ecog"] = doc["ecog"]
    ki67 = (doc.get("pathology") or {}).get("ki67_percent")
    if ki67 is not None:
        out["pathology"] = {"ki67_percent": ki67}
    if (doc.get("pathology") or {}).get("differentiation") == "poor":  # ICD-10-CM C7A.1; no code for "well"
        out.setdefault("pathology", {})["differentiation"] = "poor"
    site = (doc.get("primary") or {}).get("site")
    if site in SITE_CODES:
        out["primary"] = {"site": site}
    if doc.get("functional_syndrome") == "carcinoid":
        out["functional_syndrome"] = "carcinoid"
    for (group, name) in LABS:
        v = (doc.get(group) or {}).get(name)
        if v is not None:
            out.setdefault(group, {})[name] = v
    sites = [s for s in (doc.get("extrahepatic") or {}).get("sites") or [] if s in EXTRAHEPATIC_CODES]
    if sites:
        out["extrahepatic"] = {"present": True, "sites": sorted(sites)}
    prior = [p for p in doc.get("prior_therapies") or [] if p["therapy"] in THERAPY_CODES]
    if prior:
        seen: dict[str, dict[str, Any]] = {}
        for p in prior:
            seen.setdefault(p["therapy"], {"therapy": p["therapy"], "ongoing": bool(p.get("ongoing"))})
        out["prior_therapies"] = list(seen.values())
    return out


def bundle_of(doc: dict[str, Any], on: dt.date = ON) -> dict[str, Any]:
    """A Bundle stating :func:`readable_part` of ``doc`` in the mapping table's codes."""
    part = readable_part(doc)
    res: list[dict[str, Any]] = [patient(f"{on.year - part['age_years']}-01-01" if "age_years" in part else "1900-01-01")]
    if "age_years" not in part:
        del res[0]["birthDate"]
    if "ecog" in part:
        res.append(observation("ecog", "89247-1", part["ecog"], integer=True))
    if "ki67_percent" in part.get("pathology", {}):
        res.append(observation("ki67", "29593-1", part["pathology"]["ki67_percent"], "%"))
    if "differentiation" in part.get("pathology", {}):
        res.append(condition("nec", "C7A.1"))
    for (group, name), (code, unit) in LABS.items():
        if name in part.get(group, {}):
            res.append(observation(name.replace("_", "-"), code, part[group][name], unit))
    if "primary" in part:
        res.append(condition("primary", SITE_CODES[part["primary"]["site"]]))
    if "functional_syndrome" in part:
        res.append(condition("syndrome", "E34.0"))
    res.append(condition("liver-mets", "94381002", system=SNOMED))
    for s in part.get("extrahepatic", {}).get("sites", []):
        res.append(condition(f"mets-{s}".replace("_", "-"), EXTRAHEPATIC_CODES[s]))
    for p in part.get("prior_therapies", []):
        res.append(medication(f"rx-{p['therapy']}".replace("_", "-"), THERAPY_CODES[p["therapy"]],
                              status="active" if p["ongoing"] else "completed"))
    return bundle(*res)
