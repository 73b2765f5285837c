"""The pathways as a FHIR R4 ``PlanDefinition``, and ``$apply`` (issue 20 item 3).

* ``GET /fhir/PlanDefinition/nelm-pathways``: ``knowledge/pathways.yaml`` (through
  :func:`nelm.knowledge.load`) as a PlanDefinition: one action per pathway (its situation as
  an applicability condition in SQL, the language nelm evaluates it in, as an extension), one sub-action per
  step (when, intent, reason, citations; options together or alternatives), one per option.
  Its ``version`` is the knowledge base's, its identifier the knowledge base's SHA-256.
* ``POST /fhir/PlanDefinition/nelm-pathways/$apply`` with a ``Parameters`` resource:
  ``subject`` (R4: a string, ``Patient/<id>``) and ``data`` (a ``Bundle`` of that patient's
  records, as ``POST /api/v1/assess/fhir`` reads it; ``data`` is the input the CPG IG and R5
  give ``$apply``, R4 has none, and nelm holds no records to read otherwise). Returns what R4
  says ``$apply`` returns, a ``CarePlan`` (status draft, intent proposal, the subject,
  ``instantiatesCanonical`` = the PlanDefinition): its ``activity.reference`` is the plan, a
  contained ``RequestGroup``; the ``GuidanceResponse`` the CDS and REST adapters build is
  contained too, named in ``supportingInfo``, and its contained resources (the option
  proposals, the reading's OperationOutcome) become the CarePlan's (R4 dom-2: no nesting).

A thin adapter: the records are read by :mod:`.reader`, assessed by
:func:`nelm.assessment.assess`, put in FHIR by :func:`.guidance.guidance_response`. Every
refusal is an ``OperationOutcome`` naming the offending parameter or field.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .. import inputgate
from ..assessment import assess
from ..patient import InvalidPatient
from .guidance import (CONDITION_EXTENSION, INTENT_SYSTEM, KB_SYSTEM, OPTION_SYSTEM, SQL_CONDITION_EXTENSION,
                       STEP_WHEN_SYSTEM, WHEN_LABELS, _citation, guidance_response)
from .reader import read_bundle

PLAN_ID = "nelm-pathways"
PATHWAY_SYSTEM = "urn:nelm:pathway"
PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
FHIR_JSON = "application/fhir+json"

router = APIRouter(include_in_schema=False)


class FhirProblem(Exception):
    """A refusal as an OperationOutcome: HTTP ``status``, issue ``code``, the field named."""

    def __init__(self, status: int, code: str, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.status = status
        self.code = code
        self.problems = problems


def operation_outcome(code: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    issues = []
    for field, message in problems:
        issue: dict[str, Any] = {"severity": "error", "code": code,
                                 "diagnostics": f"{field}: {message}" if field else message}
        if field:
            issue["expression"] = [field]
        issues.append(issue)
    items = "".join(f"<li>{_xml(i['diagnostics'])}</li>" for i in issues)
    return {"resourceType": "OperationOutcome", "id": str(uuid.uuid4()),
            "text": {"status": "generated",  # dom-6: a reader sees what was refused without parsing issues
                     "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>Refused:</p><ul>{items}</ul></div>'},
            "issue": issues}


def _outcome_response(exc: FhirProblem) -> JSONResponse:
    return JSONResponse(operation_outcome(exc.code, exc.problems), status_code=exc.status, media_type=FHIR_JSON)


# ------------------------------------------------------------------ the PlanDefinition

def _option_label(option_id: str) -> str:
    from ..knowledge.ruleset import OPTION_LABELS

    return OPTION_LABELS.get(option_id, option_id)


def _sql(condition: str, description: str) -> dict[str, Any]:
    """An applicability condition in the SQL nelm evaluates over the patient's facts. R4's JSON
    Schema allows an Expression only in CQL, FHIRPath or a FHIR query (the binding is extensible
    in the specification, an enum in the schema), and the expression is optional: the SQL goes in
    an extension, with what it means."""
    return {"kind": "applicability", "extension": [
        {"url": SQL_CONDITION_EXTENSION, "valueString": condition},
        {"url": CONDITION_EXTENSION, "valueString": description}]}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding], "text": display or code}


def plan_definition(base_url: str = "") -> dict[str, Any]:
    """The pathways of the knowledge base in force as a PlanDefinition (JSON), validated by
    constructing it with fhir.resources' R4B model."""
    from fhir.resources.R4B.plandefinition import PlanDefinition

    from ..knowledge import load

    kb = load()
    actions = []
    for pathway in kb.pathways:
        steps = []
        for n, step in enumerate(pathway.steps, 1):
            when = WHEN_LABELS.get(step.when, step.when)
            options = []
            for o in step.options:
                oid, cond = (o, None) if isinstance(o, str) else (o.id, o.if_)
                option: dict[str, Any] = {"title": _option_label(oid), "code": [_concept(OPTION_SYSTEM, oid, _option_label(oid))]}
                if cond:
                    option["condition"] = [_sql(cond, f"{_option_label(oid)} belongs to the step only when this holds")]
                options.append(option)
            action: dict[str, Any] = {
                "prefix": f"Step {n}", "title": f"Step {n}, {when}", "description": step.reason,
                "code": [_concept(STEP_WHEN_SYSTEM, step.when, when)]
                        + ([_concept(INTENT_SYSTEM, step.intent)] if step.intent else []),
                "documentation": [_citation(s) for s in step.sources],
                "groupingBehavior": "logical-group",
                "selectionBehavior": "all" if step.combine == "together" else "at-most-one",
                "action": options,
            }
            if step.if_:
                action["condition"] = [_sql(step.if_, "the step applies only when this holds")]
            if step.combine != "together":
                action["textEquivalent"] = (f"At most {step.limit} of these, in order of preference, among those "
                                            "today's verdicts allow")
            steps.append(action)
        steps.append({"title": "When no candidate of the first step fits today",
                      "description": pathway.nothing_now.reason,
                      "documentation": [_citation(s) for s in pathway.nothing_now.sources]})
        actions.append({
            "title": pathway.label, "code": [_concept(PATHWAY_SYSTEM, pathway.id, pathway.label)],
            "condition": [_sql(pathway.when, "the patient's situation this pathway is for (the first that holds "
                                             "is followed)")],
            "documentation": [_citation(s) for s in pathway.sources],
            "groupingBehavior": "logical-group", "selectionBehavior": "exactly-one", "action": steps})
    url = canonical(base_url)
    plan: dict[str, Any] = {
        "resourceType": "PlanDefinition", "id": PLAN_ID, "url": url,
        "identifier": [{"system": KB_SYSTEM, "value": kb.sha256}],
        "version": kb.version, "name": "NelmPathways",
        "title": "nelm: treatment pathways for neuroendocrine liver metastases",
        "type": {"coding": [{"system": PLAN_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "status": "active", "publisher": "nelm",
        "description": "The sequences a tumour board follows for neuroendocrine liver metastases, by patient situation "
                       "(the first pathway whose condition holds is followed): each step lists its candidate options "
                       "in the order the guidelines prefer them; the plan keeps those today's verdicts allow. "
                       "$apply assesses a patient's records and returns the plan.",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>nelm treatment pathways '
                 f"(knowledge base {_xml(kb.version)}): {len(kb.pathways)} pathways.</p></div>"},
        "action": actions,
    }
    PlanDefinition.model_validate(plan)
    return plan


def _xml(text: str) -> str:
    import html

    return html.escape(text)


def canonical(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/fhir/PlanDefinition/{PLAN_ID}" if base else f"urn:nelm:PlanDefinition:{PLAN_ID}"


# ------------------------------------------------------------------ $apply

def _parameters(body: Any) -> tuple[str, dict[str, Any]]:
    """``subject`` and ``data`` from a Parameters resource, or FhirProblem naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirProblem(400, "invalid", [("resourceType", "send a FHIR Parameters resource")])
    params = body.get("parameter")
    if not isinstance(params, list):
        raise FhirProblem(400, "required", [("Parameters.parameter", "required: subject and data")])
    by_name: dict[str, list[dict[str, Any]]] = {}
    problems = []
    for i, p in enumerate(params):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            problems.append((f"Parameters.parameter[{i}].name", "required, a string"))
            continue
        by_name.setdefault(p["name"], []).append(p)
    known = {"subject", "data", "encounter", "practitioner", "organization", "userType", "userLanguage",
             "userTaskContext", "setting", "settingContext"}
    for name in by_name:
        if name not in known:
            problems.append((f"Parameters.parameter[{name}]", "not a parameter of $apply"))
    subjects = by_name.get("subject", [])
    subject = subjects[0].get("valueString") if len(subjects) == 1 else None
    if len(subjects) != 1:
        problems.append(("Parameters.parameter[subject]", "required once: the patient, as a string Patient/<id> "
                                                         "(nelm applies the plan to one patient at a time)"))
    elif not isinstance(subject, str) or not re.fullmatch(r"Patient/[A-Za-z0-9\-.]{1,64}", subject):
        problems.append(("Parameters.parameter[subject].valueString", "a reference to a Patient: Patient/<id>"))
    datas = by_name.get("data", [])
    data = datas[0].get("resource") if len(datas) == 1 else None
    if len(datas) != 1:
        problems.append(("Parameters.parameter[data]", "required once: a Bundle of the patient's records "
                                                      "(nelm keeps no records to read otherwise)"))
    elif not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        problems.append(("Parameters.parameter[data].resource", "a Bundle of the patient's records"))
    if problems:
        raise FhirProblem(400 if any("required" in m for _, m in problems) else 422, "invalid", problems)
    return subject, data  # type: ignore[return-value]


def care_plan(assessment: dict[str, Any], subject: str, imported: Any, base_url: str = "") -> dict[str, Any]:
    """The assessment as $apply's CarePlan: the GuidanceResponse's plan (a RequestGroup) as its
    activity, the GuidanceResponse itself as supporting information, all contained side by side."""
    from fhir.resources.R4B.careplan import CarePlan

    gr = guidance_response(assessment, subject, imported=imported)
    contained = gr.pop("contained")
    narrative = gr.pop("text")
    gr["id"] = "guidance"
    plan: dict[str, Any] = {
        "resourceType": "CarePlan", "id": str(uuid.uuid4()), "text": narrative,
        "contained": [*contained, gr],
        "instantiatesCanonical": [canonical(base_url)],
        "status": "draft", "intent": "proposal",
        "title": "nelm plan for neuroendocrine liver metastases",
        "subject": {"reference": subject},
        "created": gr["occurrenceDateTime"],
        "supportingInfo": [{"reference": "#guidance", "display": "the assessment as a GuidanceResponse"}],
        "activity": [{"reference": {"reference": "#plan", "display": "the plan"}}],
        "note": gr.get("note", [])[:1],
    }
    CarePlan.model_validate(plan)
    return plan


def _media_ok(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media in ("application/json", FHIR_JSON)


def _apply(subject: str, data: dict[str, Any], base_url: str) -> dict[str, Any]:
    patient_id = subject.split("/", 1)[1]
    try:
        imported = read_bundle(data, patient_id=patient_id)
        patient = imported.patient()
    except InvalidPatient as exc:
        fields = [(f"Parameters.parameter[data].resource{('.' + f) if f else ''}", m) for f, m in exc.problems]
        raise FhirProblem(422, "invalid", fields) from None
    return care_plan(assess(patient), subject, imported, base_url)


@router.get("/fhir/PlanDefinition/{plan_id}")
def read_plan_definition(plan_id: str, request: Request) -> JSONResponse:
    """The pathways as a PlanDefinition."""
    if plan_id != PLAN_ID:
        return _outcome_response(FhirProblem(404, "not-found", [("id", f"no PlanDefinition {plan_id!r}; nelm "
                                                                        f"publishes {PLAN_ID!r}")]))
    return JSONResponse(plan_definition(_base(request)), media_type=FHIR_JSON)


@router.post("/fhir/PlanDefinition/{plan_id}/$apply")
async def apply(plan_id: str, request: Request) -> JSONResponse:
    """R4 PlanDefinition/$apply: Parameters (subject, data) → a CarePlan with the plan."""
    if plan_id != PLAN_ID:
        return _outcome_response(FhirProblem(404, "not-found", [("id", f"no PlanDefinition {plan_id!r}")]))
    if not _media_ok(request):
        return _outcome_response(FhirProblem(415, "not-supported", [("Content-Type", f"send {FHIR_JSON}")]))
    raw = await request.body()
    try:
        text = inputgate.decode(raw, "the Parameters resource")
        body = inputgate.parse_text(text, "json") if text.strip() else None
    except InvalidPatient as exc:
        return _outcome_response(FhirProblem(400, "structure", list(exc.problems)))
    try:
        subject, data = _parameters(body)
        result = await run_in_threadpool(_apply, subject, data, _base(request))
    except FhirProblem as exc:
        return _outcome_response(exc)
    return JSONResponse(result, media_type=FHIR_JSON)


def _base(request: Request) -> str:
    settings = getattr(request.app.state, "cds_settings", None)
    return (getattr(settings, "base_url", None) or str(request.base_url)).rstrip("/") + "/"
