"""Every kind of FHIR resource nelm emits, built the way the app builds it (for the R4 JSON
Schema and invariant checks): GuidanceResponse (REST, CDS), its contained RequestGroup and
OperationOutcome, the $apply CarePlan, the PlanDefinition, $apply's OperationOutcome, and the
collection Bundle a CDS hook's records are read from. nelm emits no Parameters resource (it
only reads one, $apply's input)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from nelm.assessment import assess
from nelm.fhir import read_bundle
from nelm.fhir.apply import care_plan, operation_outcome, plan_definition
from nelm.fhir.cds import hook_bundle
from nelm.fhir.guidance import guidance_response

from bundles import ON, bundle_of, observation

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLE = json.loads((ROOT / "examples" / "solitary_resectable.json").read_text())
VIGNETTES = sorted((ROOT / "tests" / "vignettes").glob("*.json"))
SHARED = sorted(p for p in (DATA / "shared").glob("*.json") if not p.name.endswith(".expected.json"))


def _doc(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data.get("patient", data)


def guidance_responses() -> dict[str, dict[str, Any]]:
    out = {}
    docs = {"example": EXAMPLE, **{p.stem: _doc(p) for p in VIGNETTES}}
    for name, doc in docs.items():
        imported = read_bundle(bundle_of(doc), ON)
        out[f"GuidanceResponse {name}"] = guidance_response(assess(imported.patient()), imported.subject_reference,
                                                            imported=imported, request_id="r-1")
    for path in SHARED:  # outside-written Bundles: unread records, conflicts, another patient's data
        imported = read_bundle(json.loads(path.read_text()), ON)
        try:
            result = assess(imported.patient())
        except Exception:  # noqa: BLE001 - a Bundle whose facts the document refuses gives no guidance
            continue
        out[f"GuidanceResponse {path.stem}"] = guidance_response(result, imported.subject_reference, imported=imported)
    # a conflict: two ECOG values of one date
    doc = copy.deepcopy(EXAMPLE)
    data = bundle_of(doc)
    data["entry"].append({"resource": observation("ecog-2", "89247-1", 2)})
    imported = read_bundle(data, ON)
    out["GuidanceResponse with a conflict"] = guidance_response(assess(imported.patient()), imported.subject_reference,
                                                                imported=imported)
    return out


def emitted() -> dict[str, dict[str, Any]]:
    """Name -> resource: every kind nelm emits, standalone (contained ones too, on their own)."""
    out = guidance_responses()
    example = out["GuidanceResponse example"]
    for c in out["GuidanceResponse with a conflict"]["contained"]:
        if c["resourceType"] == "OperationOutcome":
            out["OperationOutcome (reading, contained)"] = c
    out["RequestGroup (plan, contained)"] = next(c for c in example["contained"] if c.get("id") == "plan")
    imported = read_bundle(bundle_of(EXAMPLE), ON)
    out["CarePlan ($apply)"] = care_plan(assess(imported.patient()), "Patient/p1", imported, "https://nelm.example/")
    out["PlanDefinition"] = plan_definition("https://nelm.example/")
    out["OperationOutcome ($apply refusal)"] = operation_outcome("invalid", [
        ("Parameters.parameter[subject]", "required once"), ("", "a problem without a field")])
    from test_cds import _prefetch, hook

    out["Bundle (CDS hook records)"] = hook_bundle(hook(prefetch=_prefetch(copy.deepcopy(EXAMPLE))))
    return out
