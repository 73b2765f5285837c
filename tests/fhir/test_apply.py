"""The pathways as an R4 PlanDefinition, and $apply (issue 20 item 3): a CarePlan whose
activity is the same plan (RequestGroup) the GuidanceResponse carries, from the one engine;
every refusal an OperationOutcome naming the parameter or field."""
from __future__ import annotations

import copy

import pytest

from nelm.assessment import assess
from nelm.fhir.apply import PATHWAY_SYSTEM, PLAN_ID
from nelm.fhir.guidance import OPTION_SYSTEM, plan_of, verdicts_of
from nelm.knowledge import load

from bundles import bundle_of, observation
from test_fhir_out import EXAMPLE, narrative_problems, violations

APPLY = f"/fhir/PlanDefinition/{PLAN_ID}/$apply"
FHIR = {"Content-Type": "application/fhir+json"}


def parameters(subject: str | None = "Patient/p1", data: dict | None = None, **more) -> dict:
    params = []
    if subject is not None:
        params.append({"name": "subject", "valueString": subject})
    if data is not None:
        params.append({"name": "data", "resource": data})
    params += [{"name": k, **v} for k, v in more.items()]
    return {"resourceType": "Parameters", "parameter": params}


def _codes(action: dict, system: str) -> list[str]:
    return [c["coding"][0]["code"] for c in action.get("code", []) if c["coding"][0]["system"] == system]


def test_plan_definition_is_the_pathways_file(client):
    r = client.get(f"/fhir/PlanDefinition/{PLAN_ID}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    pd = r.json()
    kb = load()
    assert pd["resourceType"] == "PlanDefinition" and pd["version"] == kb.version
    assert pd["identifier"] == [{"system": "urn:nelm:knowledge-base", "value": kb.sha256}]
    assert [_codes(a, PATHWAY_SYSTEM)[0] for a in pd["action"]] == [p.id for p in kb.pathways]
    for action, pathway in zip(pd["action"], kb.pathways):
        sql = {x["url"]: x["valueString"] for x in action["condition"][0]["extension"]}
        assert sql["urn:nelm:fhir:extension:sql-condition"] == pathway.when
        steps = action["action"][:-1]  # the last is what happens when no candidate fits today
        assert len(steps) == len(pathway.steps)
        for step_action, step in zip(steps, pathway.steps):
            ids = [o if isinstance(o, str) else o.id for o in step.options]
            assert [_codes(o, OPTION_SYSTEM)[0] for o in step_action["action"]] == ids
            assert step_action["selectionBehavior"] == ("all" if step.combine == "together" else "at-most-one")
    assert violations(pd) == [] and narrative_problems(pd) == []


def test_unknown_plan_definition_is_an_operation_outcome(client):
    r = client.get("/fhir/PlanDefinition/other")
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["expression"] == ["id"]


def test_apply_returns_a_care_plan_with_the_engines_plan(client):
    r = client.post(APPLY, json=parameters(data=bundle_of(EXAMPLE)), headers=FHIR)
    assert r.status_code == 200, r.text[:500]
    cp = r.json()
    assert cp["resourceType"] == "CarePlan" and cp["status"] == "draft" and cp["intent"] == "proposal"
    assert cp["subject"] == {"reference": "Patient/p1"}
    assert cp["instantiatesCanonical"] == [f"http://testserver/fhir/PlanDefinition/{PLAN_ID}"]
    contained = {c["id"]: c for c in cp["contained"]}
    assert cp["activity"] == [{"reference": {"reference": "#plan", "display": "the plan"}}]
    assert contained["plan"]["resourceType"] == "RequestGroup"
    assert contained["guidance"]["resourceType"] == "GuidanceResponse"
    assert contained["guidance"]["result"] == {"reference": "#plan"}
    assert not any("contained" in c for c in cp["contained"])  # dom-2
    # the same verdicts and plan the engine gives, and the REST adapter's GuidanceResponse carries
    expected = _readable()
    assert verdicts_of(cp) == {o["id"]: o["verdict"] for o in expected["options"]}
    assert plan_of(cp) == [(s["when"], s["options"]) for s in expected["plan"]["steps"]]
    api = client.post("/api/v1/assess/fhir", json=bundle_of(EXAMPLE)).json()["guidance_response"]
    assert verdicts_of(api) == verdicts_of(cp) and plan_of(api) == plan_of(cp)
    assert violations(cp) == [] and narrative_problems(cp) == []


def _readable() -> dict:
    from bundles import readable_part
    from nelm.patient import validate_patient

    return assess(validate_patient(readable_part(EXAMPLE)))


def test_apply_with_another_patients_records_is_refused(client):
    r = client.post(APPLY, json=parameters("Patient/someone-else", bundle_of(EXAMPLE)), headers=FHIR)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
    assert all(i["expression"][0].startswith("Parameters.parameter[data].resource") for i in r.json()["issue"])


@pytest.mark.parametrize("body, status, field", [
    ({"resourceType": "Bundle"}, 400, "resourceType"),
    ({"resourceType": "Parameters"}, 400, "Parameters.parameter"),
    (parameters(None, bundle_of(EXAMPLE)), 400, "Parameters.parameter[subject]"),
    (parameters("Patient/p1"), 400, "Parameters.parameter[data]"),
    (parameters("Group/g1", bundle_of(EXAMPLE)), 422, "Parameters.parameter[subject].valueString"),
    (parameters("Patient/p1", {"resourceType": "Patient", "id": "p1"}), 422, "Parameters.parameter[data].resource"),
    (parameters("Patient/p1", bundle_of(EXAMPLE), planDefinitionX={"valueString": "x"}), 422,
     "Parameters.parameter[planDefinitionX]"),
])
def test_bad_parameters_are_refused_by_name(client, body, status, field):
    r = client.post(APPLY, json=body, headers=FHIR)
    assert r.status_code == status, r.text[:500]
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert field in [e for i in outcome["issue"] for e in i.get("expression", [])]
    assert violations(outcome) == []


def test_a_refused_value_in_the_records_is_named(client):
    doc = copy.deepcopy(EXAMPLE)
    data = bundle_of(doc)
    # ECOG 9 does not exist; the newer record governs, so the document refuses it
    data["entry"].append({"resource": observation("bad-ecog", "89247-1", 9, date="2026-11-15")})
    r = client.post(APPLY, json=parameters(data=data), headers=FHIR)
    assert r.status_code == 422, r.text[:500]
    fields = [e for i in r.json()["issue"] for e in i.get("expression", [])]
    assert any("ecog" in f for f in fields)


def test_apply_refuses_other_media_and_broken_json(client):
    r = client.post(APPLY, content=b"subject=Patient/p1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and r.json()["issue"][0]["expression"] == ["Content-Type"]
    r = client.post(APPLY, content=b'{"resourceType": "Parameters",', headers=FHIR)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post("/fhir/PlanDefinition/other/$apply", json=parameters(data=bundle_of(EXAMPLE)), headers=FHIR)
    assert r.status_code == 404


def test_fhir_paths_answer_401_as_json_without_a_token(tmp_path):
    import warnings

    from nelm.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    app = create_app(f"sqlite:///{tmp_path / 'c.sqlite3'}", api_token="apply-token-0123456789",
                     allowed_hosts=["testserver"])
    with TestClient(app) as c:
        r = c.get(f"/fhir/PlanDefinition/{PLAN_ID}", follow_redirects=False)
        assert r.status_code == 401 and r.json()["detail"].startswith("authentication required")
        r = c.get(f"/fhir/PlanDefinition/{PLAN_ID}", headers={"Authorization": "Bearer apply-token-0123456789"})
        assert r.status_code == 200
