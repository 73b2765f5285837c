"""FHIR out (issue 20 item 5): every GuidanceResponse nelm emits passes the R4 invariants (FHIRPath,
fhirpathpy: every constraint of the official R4 StructureDefinitions, see r4_check.py), has a narrative, a resolvable
subject or none, ``data-required`` with ``dataRequirement`` while the plan waits on facts, the
unread and conflicting records in ``evaluationMessage``, and renders contract v3 branches, work-up
and expected verdicts when the plan carries them."""
from __future__ import annotations

import copy
import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nelm.assessment import assess
from nelm.fhir import read_bundle
from nelm.fhir.guidance import EXPECTED_VERDICT_SYSTEM, guidance_response, plan_of, verdicts_of
from nelm.patient import validate_patient

from bundles import ON, bundle, bundle_of, observation, patient
from r4_check import violations as r4_violations

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLE = json.loads((ROOT / "examples" / "solitary_resectable.json").read_text())
VIGNETTES = sorted((ROOT / "tests" / "vignettes").glob("*.json"))
SHARED = sorted(p for p in (DATA / "shared").glob("*.json") if not p.name.endswith(".expected.json"))
XHTML = "{http://www.w3.org/1999/xhtml}"
# txt-1's basic HTML formatting elements (a subset is enough: nelm writes only these)
ALLOWED_TAGS = {"div", "p", "b", "i", "ol", "ul", "li", "br", "span", "table", "tr", "td", "th", "a"}


def violations(resource: dict) -> list[str]:
    """Every R4 invariant ``resource`` breaks: all the constraints of the official R4
    StructureDefinitions for its types (r4_check.py, data/r4_definitions.json)."""
    return r4_violations(resource)


def narrative_problems(resource: dict) -> list[str]:
    div = (resource.get("text") or {}).get("div")
    if not div:
        return ["no narrative"]
    root = ET.fromstring(div)
    problems = [] if root.tag == XHTML + "div" else [f"root is {root.tag}"]
    for el in root.iter():
        tag = el.tag.removeprefix(XHTML)
        if tag not in ALLOWED_TAGS:
            problems.append(f"element {tag}")
        if any(a.lower().startswith("on") for a in el.attrib):
            problems.append(f"event attribute on {tag}")
    if not "".join(root.itertext()).strip():
        problems.append("txt-2: no text")
    return problems


def _gr(doc: dict, **kw) -> dict:
    imported = read_bundle(bundle_of(doc), ON)
    return guidance_response(assess(imported.patient()), imported.subject_reference, imported=imported, **kw)


def test_the_invariant_checker_catches_what_it_checks():
    """The checker can fail: an action with neither resource nor sub-actions, an unreferenced contained
    resource, an extension with both value and extensions, a local reference to nothing."""
    bad = {"resourceType": "GuidanceResponse", "status": "success", "moduleUri": "urn:x",
           "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
           "contained": [{"resourceType": "RequestGroup", "id": "plan", "status": "draft", "intent": "proposal",
                          "action": [{"title": "leaf without resource"}]},
                         {"resourceType": "OperationOutcome", "id": "orphan", "issue": [
                             {"severity": "information", "code": "informational"}]}],
           "result": {"reference": "#plan"}, "evaluationMessage": [{"reference": "#nothing"}],
           "extension": [{"url": "urn:x", "valueString": "a", "extension": [{"url": "urn:y", "valueString": "b"}]}]}
    keys = {v.split(" ")[0] for v in violations(bad)}
    assert {"rqg-1", "dom-3", "ext-1", "ref-1"} <= keys


@pytest.mark.parametrize("path", [ROOT / "examples" / "solitary_resectable.json", *VIGNETTES], ids=lambda p: p.stem)
def test_every_guidance_response_passes_the_r4_invariants(path):
    data = json.loads(path.read_text())
    gr = _gr(data.get("patient", data))
    assert violations(gr) == []
    assert narrative_problems(gr) == []


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.stem)
def test_outside_bundles_give_valid_guidance_with_their_unread_records(path):
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    imported = read_bundle(json.loads(path.read_text()), dt.date.fromisoformat(expected["assessed_on"]))
    gr = guidance_response(assess(imported.patient()), imported.subject_reference, imported=imported)
    assert violations(gr) == [] and narrative_problems(gr) == []
    outcome = next(c for c in gr["contained"] if c["resourceType"] == "OperationOutcome")
    assert gr["evaluationMessage"] == [{"reference": "#reading"}]
    texts = [i["details"]["text"] for i in outcome["issue"]]
    assert len([t for t in texts if t.startswith("Not read")]) == len(imported.unread)


def test_a_plan_waiting_on_facts_is_data_required_with_its_requirements():
    imported = read_bundle(bundle(patient(), observation("ki", "29593-1", 1.5, "%")), ON)
    result = assess(imported.patient())
    assert result["plan"]["status"] != "determined" or result["plan"].get("missing")
    gr = guidance_response(result, imported.subject_reference, imported=imported)
    assert gr["status"] == "data-required"
    asked = [next(x["valueString"] for x in r["extension"] if x["url"].endswith(":field")) for r in gr["dataRequirement"]]
    assert set(result["plan"].get("missing") or []) <= set(asked)
    assert all(r["type"] for r in gr["dataRequirement"])
    assert violations(gr) == []


def test_a_determined_plan_is_success_without_requirements():
    result = assess(validate_patient(EXAMPLE))
    result = copy.deepcopy(result)
    result["plan"]["status"] = "determined"
    result["plan"]["missing"] = []
    gr = guidance_response(result, "Patient/p1")
    assert gr["status"] == "success" and "dataRequirement" not in gr


def test_conflicting_records_are_in_the_evaluation_message():
    b = bundle(patient(), observation("a", "29593-1", 2, "%", date="2024-01-10"),
               observation("b", "29593-1", 15, "%", date="2026-09-01"))
    imported = read_bundle(b, ON)
    gr = guidance_response(assess(imported.patient()), imported.subject_reference, imported=imported)
    outcome = next(c for c in gr["contained"] if c["resourceType"] == "OperationOutcome")
    assert any(i["code"] == "conflict" and "Ki-67" in i["details"]["text"] or "ki67" in i["details"]["text"]
               for i in outcome["issue"])


@pytest.mark.parametrize("subject,kept", [("Patient/p1", True), ("Patient (entry.0)", False),
                                          ("urn:uuid:abedb53d-2ceb-5e6a-aac9-0c11918ab774", True),
                                          ("https://ehr.example.org/fhir/Patient/x1", True), (None, False)])
def test_the_subject_is_resolvable_or_absent(subject, kept):
    gr = guidance_response(assess(validate_patient(EXAMPLE)), subject)
    assert ("subject" in gr) == kept
    if kept:
        assert gr["subject"] == {"reference": subject}


def test_a_transaction_bundle_without_ids_gets_its_fullurl_as_subject():
    b = bundle(patient(), kind="transaction")
    del b["entry"][0]["resource"]["id"]
    b["entry"][0]["fullUrl"] = "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    for e in b["entry"][1:]:
        e["resource"]["subject"] = {"reference": b["entry"][0]["fullUrl"]}
    imported = read_bundle(b, ON)
    assert imported.subject_reference == "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


# ------------------------------------------------------------------ contract v3 fields

def _with_v3(result: dict) -> dict:
    r = copy.deepcopy(result)
    plan = r["plan"]
    steps = plan["steps"]
    first = steps[0]["options"][0]
    other = next(o["id"] for o in r["options"] if o["id"] not in {i for s in steps for i in s["options"]})
    plan["status"] = "conditional"
    plan["missing"] = ["liver.resectable"]
    plan["workup"] = [{"fields": ["liver.resectable"], "order": "hepatobiliary surgical review with liver MRI",
                       "decides": "resection or systemic therapy"}]
    for s in steps:
        s["expected_verdicts"] = {i: "reasonable" for i in s["options"]}
    plan["branches"] = [
        {"if": [{"field": "liver.resectable", "value": False,
                 "label": "the surgeon judges the liver disease unresectable"}],
         "status": "determined",
         "steps": [{"step": 1, "when": "now", "options": [other], "expected_verdicts": {other: "preferred"},
                    "reason": "systemic therapy", "sources": []}]},
        {"if": [{"field": "fdg_pet", "value": "positive"}], "status": "undetermined", "steps": []},
    ]
    return r, first, other


def test_v3_branches_workup_and_expected_verdicts_are_rendered_and_valid():
    result, first, other = _with_v3(assess(validate_patient(EXAMPLE)))
    gr = guidance_response(result, "Patient/p1")
    assert violations(gr) == [] and narrative_problems(gr) == []
    plan = gr["contained"][0]
    branches = [a for a in plan["action"] if a.get("prefix", "").startswith("Branch")]
    assert [b["title"] for b in branches] == ["If the surgeon judges the liver disease unresectable",
                                             "If FDG-PET: positive"]
    assert branches[0]["condition"][0]["extension"] == [{"url": "urn:nelm:fhir:extension:condition",
                                                         "valueString": "the surgeon judges the liver disease unresectable"}]
    leaf = branches[0]["action"][0]["action"][0]
    codes = {c["coding"][0]["system"]: c["coding"][0]["code"] for c in leaf["code"]}
    assert codes[EXPECTED_VERDICT_SYSTEM] == "preferred"
    # today's verdicts still read back once per option, and the working plan's steps unchanged
    assert verdicts_of(gr) == {o["id"]: o["verdict"] for o in result["options"]}
    assert plan_of(gr) == [(s["when"], s["options"]) for s in result["plan"]["steps"]]
    assert gr["status"] == "data-required"
    labels = [next(x["valueString"] for x in r["extension"] if x["url"].endswith("field-label"))
              for r in gr["dataRequirement"]]
    assert labels[0].endswith("hepatobiliary surgical review with liver MRI (decides resection or systemic therapy)")
    assert "unresectable" in gr["text"]["div"]


def test_a_plan_without_v3_fields_is_still_valid():
    result = assess(validate_patient(EXAMPLE))
    for key in ("branches", "workup"):
        result["plan"].pop(key, None)
    for s in result["plan"]["steps"]:
        s.pop("expected_verdicts", None)
    assert violations(guidance_response(result, "Patient/p1")) == []


def test_api_guidance_response_is_valid(client):
    response = client.post("/api/v1/assess/fhir", json=bundle_of(EXAMPLE))
    assert response.status_code == 200
    gr = response.json()["guidance_response"]
    assert violations(gr) == [] and gr["subject"] == {"reference": "Patient/p1"}


def test_later_steps_show_the_verdict_expected_when_the_step_comes():
    result, first, other = _with_v3(assess(validate_patient(EXAMPLE)))
    later = next(s for s in result["plan"]["steps"] if s["when"] != "now")
    option = later["options"][0]
    today = next(o["verdict"] for o in result["options"] if o["id"] == option)
    later["expected_verdicts"][option] = "preferred" if today != "preferred" else "reasonable"
    div = guidance_response(result, "Patient/p1")["text"]["div"]
    assert f"{later['expected_verdicts'][option]} when the step comes; today {today.replace('_', ' ')}" in div
