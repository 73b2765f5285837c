"""An assessment → a FHIR R4 ``GuidanceResponse`` whose plan is a ``RequestGroup``.

The knowledge base is the module that produced the guidance: its version and SHA-256
are the module's identity (``moduleCodeableConcept``, system ``urn:nelm:knowledge-base``,
code = SHA-256, version = knowledge-base version). The plan becomes a contained
``RequestGroup`` (R4; R5 renamed it RequestOrchestration) of proposed actions: one action
per plan step (``selectionBehavior`` says whether its options go together or are
alternatives), one sub-action per option carrying its verdict, intent, reasons and
citations; a last group holds every other option with its verdict, so that each option's
verdict can be read back. Built and validated with ``fhir.resources``' R4B models.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ..evidence import evidence_index

KB_SYSTEM = "urn:nelm:knowledge-base"
OPTION_SYSTEM = "urn:nelm:option"
VERDICT_SYSTEM = "urn:nelm:verdict"
INTENT_SYSTEM = "urn:nelm:intent"
STEP_WHEN_SYSTEM = "urn:nelm:plan-when"
WHEN_LABELS = {"now": "now", "after_response": "after response", "at_progression": "at progression",
               "if_symptoms_persist": "if symptoms persist"}


def _citation(source_id: str) -> dict[str, Any]:
    record = evidence_index().get(source_id)
    artifact: dict[str, Any] = {"type": "citation", "label": source_id}
    if record is not None:
        c = record.citation
        artifact["citation"] = f"{c.authors} {c.title}. {c.journal} {c.year}" + (f";{c.reference}" if c.reference else "")
        url = record.doi_url or record.pubmed_url
        if url:
            artifact["url"] = url
    return artifact


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding], "text": display or code}


def _option_action(o: dict[str, Any]) -> dict[str, Any]:
    reasons = o.get("reasons") or []
    text = f"{o.get('label', o['id'])}: {o['verdict'].replace('_', ' ')}" + (
        f", {o['intent'].replace('_', ' ')} intent" if o.get("intent") else "")
    action: dict[str, Any] = {
        "title": o.get("label", o["id"]),
        "description": text,
        "textEquivalent": "\n".join(r["text"] for r in reasons) or text,
        "code": [_concept(OPTION_SYSTEM, o["id"], o.get("label")), _concept(VERDICT_SYSTEM, o["verdict"])]
                + ([_concept(INTENT_SYSTEM, o["intent"])] if o.get("intent") else []),
    }
    sources = list(dict.fromkeys(s for r in reasons for s in r.get("sources", [])))
    if sources:
        action["documentation"] = [_citation(s) for s in sources]
    return action


def request_group(assessment: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """The plan as a RequestGroup (JSON), then every other option with its verdict."""
    options = {o["id"]: o for o in assessment.get("options", [])}
    plan = assessment.get("plan") or {}
    actions: list[dict[str, Any]] = []
    in_plan: set[str] = set()
    for step in plan.get("steps", []):
        in_plan.update(step["options"])
        when = WHEN_LABELS.get(step["when"], step["when"])
        together = step.get("combine") == "together"
        action: dict[str, Any] = {
            "prefix": f"Step {step['step']}",
            "title": f"Step {step['step']}, {when}: " + ", ".join(options.get(i, {}).get("label", i) for i in step["options"]),
            "description": step.get("reason") or "",
            "code": [_concept(STEP_WHEN_SYSTEM, step["when"], when)]
                    + ([_concept(INTENT_SYSTEM, step["intent"])] if step.get("intent") else []),
            "groupingBehavior": "logical-group",
            "selectionBehavior": "all" if together or len(step["options"]) <= 1 else "at-most-one",
            "action": [_option_action(options[i]) for i in step["options"] if i in options],
        }
        if step.get("sources"):
            action["documentation"] = [_citation(s) for s in step["sources"]]
        actions.append(action)
    others = [o for o in assessment.get("options", []) if o["id"] not in in_plan]
    if others:
        actions.append({"title": "Other options, with today's verdict", "groupingBehavior": "logical-group",
                        "selectionBehavior": "any", "description": "Not part of the plan's steps; listed so that every "
                        "option's verdict and reasons travel with the plan.",
                        "action": [_option_action(o) for o in others]})
    group: dict[str, Any] = {
        "resourceType": "RequestGroup", "id": "plan", "status": "draft", "intent": "proposal",
        "code": _concept("urn:nelm:plan-status", plan.get("status", "undetermined"),
                         f"plan {plan.get('status', 'undetermined')}"),
        "note": [{"text": f"Plan status: {plan.get('status', 'undetermined')}"
                          + (f"; pathway: {plan['pathway_label']}" if plan.get("pathway_label") else "")}],
        "action": actions,
    }
    for a in plan.get("assumptions") or []:
        group["note"].append({"text": f"Assumes {a.get('field')} = {a.get('assumed')}; if not: {a.get('if_not', '')}"})
    if plan.get("missing"):
        group["note"].append({"text": "Missing facts that would settle the plan: " + ", ".join(plan["missing"])})
    if subject:
        group["subject"] = {"reference": subject}
    return group


def guidance_response(assessment: dict[str, Any], subject: str | None = None,
                      request_id: str | None = None) -> dict[str, Any]:
    """The GuidanceResponse (JSON), validated by constructing it with fhir.resources."""
    from fhir.resources.R4B.guidanceresponse import GuidanceResponse
    from fhir.resources.R4B.requestgroup import RequestGroup

    kb = assessment.get("knowledge_base") or {}
    occurred = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    gr: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "id": str(uuid.uuid4()),
        "contained": [request_group(assessment, subject)],
        "moduleCodeableConcept": {
            "coding": [{"system": KB_SYSTEM, "code": kb.get("sha256", "unknown"), "version": kb.get("version"),
                        "display": f"nelm knowledge base {kb.get('version')}"
                                   + (f" ({kb['guideline']})" if kb.get("guideline") else "")}],
            "text": f"nelm {assessment.get('nelm_version', '')} knowledge base {kb.get('version')} "
                    f"sha256 {kb.get('sha256')}"},
        "status": "success",
        "occurrenceDateTime": occurred,
        "result": {"reference": "#plan"},
        "note": [{"text": assessment.get("disclaimer") or "nelm supports, and does not replace, a tumour board."}],
    }
    if request_id:
        gr["requestIdentifier"] = {"system": "urn:nelm:request", "value": request_id}
    if subject:
        gr["subject"] = {"reference": subject}
    missing = [m["field"] for m in assessment.get("missing_data", [])]
    if missing:
        gr["note"].append({"text": "Missing data: " + ", ".join(missing)})
    # both raise if the resource is not valid R4(B); the contained plan is checked as a RequestGroup too
    RequestGroup.model_validate(gr["contained"][0])
    GuidanceResponse.model_validate(gr)
    return gr


def verdicts_of(gr: dict[str, Any]) -> dict[str, str]:
    """Option id → verdict, read back from a GuidanceResponse (for tests and clients)."""
    out: dict[str, str] = {}

    def walk(actions: list[dict[str, Any]]) -> None:
        for a in actions:
            codes = {c["coding"][0]["system"]: c["coding"][0]["code"] for c in a.get("code", [])}
            if OPTION_SYSTEM in codes and VERDICT_SYSTEM in codes:
                out[codes[OPTION_SYSTEM]] = codes[VERDICT_SYSTEM]
            walk(a.get("action", []))

    for c in gr.get("contained", []):
        if c.get("resourceType") == "RequestGroup":
            walk(c.get("action", []))
    return out


def plan_of(gr: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The plan's steps (when, option ids), read back from a GuidanceResponse."""
    steps = []
    for c in gr.get("contained", []):
        if c.get("resourceType") != "RequestGroup":
            continue
        for a in c.get("action", []):
            when = next((x["coding"][0]["code"] for x in a.get("code", []) if x["coding"][0]["system"] == STEP_WHEN_SYSTEM), None)
            if when is None:
                continue
            ids = [x["coding"][0]["code"] for sub in a.get("action", []) for x in sub.get("code", [])
                   if x["coding"][0]["system"] == OPTION_SYSTEM]
            steps.append((when, ids))
    return steps
