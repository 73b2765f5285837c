"""FHIR → assessment → GuidanceResponse round trip; the Bundle from the CLI, the API and the web form."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from fhir.resources.R4B.guidanceresponse import GuidanceResponse
from fhir.resources.R4B.requestgroup import RequestGroup

from nelm.assessment import assess
from nelm.fhir import read_bundle
from nelm.fhir.guidance import KB_SYSTEM, guidance_response, plan_of, verdicts_of
from nelm.knowledge import load
from nelm.patient import validate_patient

from bundles import ON, bundle, bundle_of, observation, patient, readable_part

ROOT = Path(__file__).parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "solitary_resectable.json").read_text())
VIGNETTES = sorted((ROOT / "tests" / "vignettes").glob("*.json"))


def _doc(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data.get("patient", data)


# ------------------------------------------------------------------ GuidanceResponse

@pytest.mark.parametrize("path", [ROOT / "examples" / "solitary_resectable.json", *VIGNETTES], ids=lambda p: p.stem)
def test_round_trip_fhir_assessment_guidance_response(path):
    doc = _doc(path)
    imported = read_bundle(bundle_of(doc), ON)
    result = assess(imported.patient())
    # verdicts from the Bundle equal nelm's on the same facts
    direct = assess(validate_patient(readable_part(doc)))
    assert [(o["id"], o["verdict"]) for o in result["options"]] == [(o["id"], o["verdict"]) for o in direct["options"]]
    assert result["plan"] == direct["plan"]
    gr = guidance_response(result, imported.patient_reference, "hook-1")
    parsed = GuidanceResponse.model_validate(gr)
    RequestGroup.model_validate(gr["contained"][0])
    waits = result["plan"]["status"] != "determined" or bool(result["plan"].get("missing"))
    assert parsed.status == ("data-required" if waits else "success") and parsed.subject.reference == "Patient/p1"
    assert bool(gr.get("dataRequirement")) == waits
    assert verdicts_of(gr) == {o["id"]: o["verdict"] for o in result["options"]}  # every option, once
    assert plan_of(gr) == [(s["when"], s["options"]) for s in result["plan"]["steps"]]


def test_module_identity_is_the_knowledge_base():
    result = assess(validate_patient(EXAMPLE))
    gr = guidance_response(result)
    kb = load()
    [coding] = gr["moduleCodeableConcept"]["coding"]
    assert coding == {"system": KB_SYSTEM, "code": kb.sha256, "version": kb.version,
                      "display": f"nelm knowledge base {kb.version} ({kb.guideline})" if kb.guideline
                      else f"nelm knowledge base {kb.version}"}


def test_actions_carry_verdict_intent_reasons_and_citations():
    result = assess(validate_patient(EXAMPLE))
    gr = guidance_response(result)
    step1 = gr["contained"][0]["action"][0]
    assert step1["selectionBehavior"] == "all"  # resection with ablation: given together
    resection = step1["action"][0]
    codes = {c["coding"][0]["system"]: c["coding"][0]["code"] for c in resection["code"]}
    # contract v3: a step's expected verdict, for a "now" step today's verdict, travels beside it
    assert codes.pop("urn:nelm:expected-verdict", "preferred") == "preferred"
    assert codes == {"urn:nelm:option": "liver_resection", "urn:nelm:verdict": "preferred", "urn:nelm:intent": "curative"}
    option = next(o for o in result["options"] if o["id"] == "liver_resection")
    assert resection["textEquivalent"].split("\n") == [r["text"] for r in option["reasons"]]
    cited = {d["label"] for d in resection["documentation"]}
    assert cited == {s for r in option["reasons"] for s in r["sources"]}
    assert all(d["type"] == "citation" and d.get("citation") for d in resection["documentation"])
    step2 = gr["contained"][0]["action"][1]
    assert step2["selectionBehavior"] == "at-most-one"  # alternatives at progression


def test_an_invalid_guidance_response_is_refused():
    result = assess(validate_patient(EXAMPLE))
    broken = copy.deepcopy(result)
    broken["options"][0]["verdict"] = " "  # not a FHIR code (no whitespace-only codes)
    with pytest.raises(ValidationError):
        guidance_response(broken)


# ------------------------------------------------------------------ command line

def _nelm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nelm.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_assesses_a_bundle(tmp_path):
    doc_file, bundle_file = tmp_path / "patient.json", tmp_path / "bundle.json"
    doc_file.write_text(json.dumps(readable_part(EXAMPLE)))
    bundle_file.write_text(json.dumps(bundle_of(EXAMPLE)))
    from_fhir = _nelm("assess", "--fhir", str(bundle_file), "--format", "json")
    from_doc = _nelm("assess", str(doc_file), "--format", "json")
    assert from_fhir.returncode == 0 and from_doc.returncode == 0, from_fhir.stderr
    a, b = json.loads(from_fhir.stdout), json.loads(from_doc.stdout)
    imported = a.pop("fhir_import")
    assert a["plan"] == b["plan"] and a["options"] == b["options"]
    assert imported["document"] == readable_part(EXAMPLE)
    text = _nelm("assess", "--fhir", str(bundle_file))
    assert text.returncode == 0 and "Read from FHIR" in text.stdout and "← Observation/ki67" in text.stdout


@pytest.mark.parametrize("content, needle", [
    (bundle(observation("ki", "29593-1", 140, "%")), "pathology.ki67_percent"),
    ({"resourceType": "Patient"}, "resourceType"),
    ("not json", "")])
def test_cli_refuses_a_bad_bundle_with_exit_2(tmp_path, content, needle):
    f = tmp_path / "b.json"
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    r = _nelm("assess", "--fhir", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr and needle in r.stderr


def test_cli_wants_one_input(tmp_path):
    f = tmp_path / "b.json"
    f.write_text(json.dumps(bundle(patient())))
    assert _nelm("assess", str(f), "--fhir", str(f)).returncode == 2
    assert _nelm("assess").returncode == 2


# ------------------------------------------------------------------ REST API

def test_api_assesses_a_bundle(client):
    r = client.post("/api/v1/assess/fhir", json=bundle_of(EXAMPLE))
    assert r.status_code == 200, r.text
    body = r.json()
    direct = assess(validate_patient(readable_part(EXAMPLE)))
    assert body["assessment"]["plan"] == direct["plan"] and body["assessment"]["options"] == direct["options"]
    assert body["fhir_import"]["document"] == readable_part(EXAMPLE)
    GuidanceResponse.model_validate(body["guidance_response"])
    assert verdicts_of(body["guidance_response"]) == {o["id"]: o["verdict"] for o in direct["options"]}


def test_api_takes_fhir_json_media_type(client):
    r = client.post("/api/v1/assess/fhir", content=json.dumps(bundle(patient())),
                    headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200


@pytest.mark.parametrize("payload, status, field", [
    (bundle(observation("ki", "29593-1", 140, "%")), 422, "pathology.ki67_percent"),
    ({"resourceType": "Observation"}, 422, "resourceType"),
    ({"resourceType": "Bundle", "type": "history"}, 422, "type"),
])
def test_api_refuses_by_field(client, payload, status, field):
    r = client.post("/api/v1/assess/fhir", json=payload)
    assert r.status_code == status and r.json()["detail"][0]["field"] == field


def test_api_refuses_other_media_types(client):
    r = client.post("/api/v1/assess/fhir", content=b"<Bundle/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415


def test_api_operation_is_documented(client):
    op = client.get("/openapi.json").json()["paths"]["/api/v1/assess/fhir"]["post"]
    assert {"200", "400", "401", "413", "415", "422"} <= set(op["responses"])


# ------------------------------------------------------------------ the web form

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client) -> str:
    page = client.get("/cases/import")
    assert page.status_code == 200
    return _CSRF.search(page.text).group(1)


def _upload(client, content: bytes | str, token: str | None = None):
    data = {"csrf_token": token if token is not None else _token(client)}
    return client.post("/cases/import", data=data, files={"bundle": ("bundle.json", content, "application/json")})


def test_the_new_case_form_links_to_the_import(client):
    assert 'href="/cases/import"' in client.get("/cases/new").text


def test_upload_prefills_the_form_and_shows_where_from(client):
    b = bundle_of(EXAMPLE)
    b["entry"].append({"resource": observation("bili-umol", "1975-2", 20.5, "umol/L", date="2026-11-01")})
    r = _upload(client, json.dumps(b))
    assert r.status_code == 200
    page = r.text
    assert 'action="/cases"' in page  # saving goes through the normal case form
    assert re.search(r'name="pathology.ki67_percent" type="text" value="1"', page)
    assert re.search(r'name="liver.bilirubin_mg_dl" type="text" value="1.2"', page)
    assert re.search(r'<option value="jejunum_ileum" selected>', page)
    assert "Read from the FHIR Bundle (Patient/p1)" in page
    assert "Observation/ki67 (LOINC 29593-1, 2026-10-01)" in page
    assert "converted from 20.5 umol/L" in page
    assert "Conflicting records" in page  # 0.6 mg/dL in October, 1.2 converted in November
    # and the pre-filled form saves as a case like any other
    form = dict(re.findall(r'name="([^"]+)" type="text" value="([^"]*)"', page))
    form |= {"csrf_token": _token(client), "primary.site": "jejunum_ileum"}
    saved = client.post("/cases", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith("/cases/")


def test_upload_with_invalid_values_puts_the_problem_beside_the_field(client):
    r = _upload(client, json.dumps(bundle(observation("ki", "29593-1", 140, "%"))))
    assert r.status_code == 422
    assert "pathology.ki67_percent" in r.text and "read from Observation/ki" in r.text


@pytest.mark.parametrize("content", [b'{"resourceType": "Patient"}', b"\xff\xfe", b"{"])
def test_upload_of_something_else_says_what(client, content):
    r = _upload(client, content)
    assert r.status_code == 422 and "The Bundle was not read" in r.text


def test_upload_needs_the_csrf_token(client):
    _token(client)
    assert _upload(client, json.dumps(bundle()), token="forged" * 8).status_code == 403


def test_upload_without_a_file(client):
    r = client.post("/cases/import", data={"csrf_token": _token(client)})
    assert r.status_code == 422 and "choose a FHIR Bundle file" in r.text


def test_upload_is_capped(client):
    big = json.dumps(bundle(patient())) + " " * 300_000
    assert _upload(client, big).status_code == 413
