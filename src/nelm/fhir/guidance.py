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
import html
import re
import uuid
from typing import Any

from ..evidence import evidence_index

KB_SYSTEM = "urn:nelm:knowledge-base"
OPTION_SYSTEM = "urn:nelm:option"
VERDICT_SYSTEM = "urn:nelm:verdict"
INTENT_SYSTEM = "urn:nelm:intent"
STEP_WHEN_SYSTEM = "urn:nelm:plan-when"
PLAN_STATUS_SYSTEM = "urn:nelm:plan-status"
EXPECTED_VERDICT_SYSTEM = "urn:nelm:expected-verdict"   # a later step's verdict when the step comes
FIELD_EXTENSION = "urn:nelm:fhir:extension:field"         # the contract's dotted field a requirement asks for
FIELD_LABEL_EXTENSION = "urn:nelm:fhir:extension:field-label"
CONDITION_EXTENSION = "urn:nelm:fhir:extension:condition"         # a branch's condition, in words
SQL_CONDITION_EXTENSION = "urn:nelm:fhir:extension:sql-condition"  # a pathway's condition as nelm evaluates it
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


def _option_action(o: dict[str, Any], expected: str | None = None, today: bool = True) -> dict[str, Any]:
    """One option as a leaf action. Its ``resource`` is the option's contained proposal (R4 rqg-1:
    an action has a resource or sub-actions). ``today``: carries today's verdict (the working plan
    and the list of other options); otherwise only the verdict expected when the step comes."""
    reasons = o.get("reasons") or []
    label = o.get("label", o["id"])
    verdict = expected or o["verdict"]
    text = f"{label}: {verdict.replace('_', ' ')}" + (f", {o['intent'].replace('_', ' ')} intent" if o.get("intent")
                                                     else "")
    if expected and expected != o["verdict"]:
        text += f" (expected when the step comes; today: {o['verdict'].replace('_', ' ')})"
    codes = [_concept(OPTION_SYSTEM, o["id"], o.get("label"))]
    if today:
        codes.append(_concept(VERDICT_SYSTEM, o["verdict"]))
    if expected:
        codes.append(_concept(EXPECTED_VERDICT_SYSTEM, expected))
    action: dict[str, Any] = {
        "title": label,
        "description": text,
        "textEquivalent": "\n".join(r["text"] for r in reasons) or text,
        "code": codes + ([_concept(INTENT_SYSTEM, o["intent"])] if o.get("intent") else []),
        "resource": {"reference": f"#{_proposal_id(o['id'])}", "display": label},
    }
    sources = list(dict.fromkeys(s for r in reasons for s in r.get("sources", [])))
    if sources:
        action["documentation"] = [_citation(s) for s in sources]
    return action


def _proposal_id(option_id: str) -> str:
    return "option-" + option_id.replace("_", "-")


def _proposal(o: dict[str, Any], subject: str | None) -> dict[str, Any]:
    """A contained RequestGroup proposing one option (what a plan action points at)."""
    group: dict[str, Any] = {
        "resourceType": "RequestGroup", "id": _proposal_id(o["id"]), "status": "draft", "intent": "proposal",
        "code": _concept(OPTION_SYSTEM, o["id"], o.get("label")),
        "note": [{"text": r["text"]} for r in o.get("reasons") or []] or [{"text": o.get("label", o["id"])}],
    }
    if subject:
        group["subject"] = {"reference": subject}
    return group


def _step_actions(steps: list[dict[str, Any]], options: dict[str, dict[str, Any]], today: bool) -> list[dict[str, Any]]:
    actions = []
    for step in steps:
        when = WHEN_LABELS.get(step["when"], step["when"])
        ids = [i for i in step.get("options") or [] if i in options]
        expected = step.get("expected_verdicts") or {}
        together = step.get("combine") == "together"
        action: dict[str, Any] = {
            "prefix": f"Step {step['step']}",
            "title": f"Step {step['step']}, {when}: " + (", ".join(options[i].get("label", i) for i in ids)
                                                          or (step.get("reason") or "no option")),
            "description": step.get("reason") or "",
            "code": [_concept(STEP_WHEN_SYSTEM, step["when"], when)]
                    + ([_concept(INTENT_SYSTEM, step["intent"])] if step.get("intent") else []),
        }
        if step.get("sources"):
            action["documentation"] = [_citation(s) for s in step["sources"]]
        if ids:
            action |= {"groupingBehavior": "logical-group",
                       "selectionBehavior": "all" if together or len(ids) <= 1 else "at-most-one",
                       "action": [_option_action(options[i], expected.get(i), today) for i in ids]}
        else:  # a step naming no option (e.g. correct what rules surgery out): a proposal of its own
            action["resource"] = {"reference": "#" + _step_proposal_id(step), "display": action["title"]}
        actions.append(action)
    return actions


def _step_proposal_id(step: dict[str, Any], branch: int | None = None) -> str:
    return f"step-{step['step']}" + (f"-branch-{branch}" if branch is not None else "")


def _condition_text(conditions: list[dict[str, Any]]) -> str:
    from ..labels import field_label, value_label
    from ..summary import or_join

    parts = []
    for c in conditions:
        label = c.get("label")
        if not label:
            field = str(c.get("field"))
            label = f"{field_label(field)}: {value_label(field, c.get('value'))}"
        parts.append(str(label))
    # a merged branch's conditions are alternatives, each enough alone (contract v3)
    return or_join(parts) or "otherwise"


def request_group(assessment: dict[str, Any], subject: str | None = None) -> dict[str, Any]:
    """The plan as a RequestGroup (JSON): the working plan's steps, each branch (contract v3) as a
    further group with the condition under which it holds, then every other option with today's
    verdict. Option actions point at contained proposals (see :func:`contained_proposals`)."""
    options = {o["id"]: o for o in assessment.get("options", [])}
    plan = assessment.get("plan") or {}
    actions = _step_actions(plan.get("steps") or [], options, today=True)
    in_plan = {i for step in plan.get("steps") or [] for i in step.get("options") or []}
    for n, branch in enumerate(plan.get("branches") or []):
        condition = _condition_text(branch.get("if") or [])
        steps = _step_actions(branch.get("steps") or [], options, today=False)
        for step, action in zip(branch.get("steps") or [], steps):
            if "resource" in action:
                action["resource"]["reference"] = "#" + _step_proposal_id(step, n)
        group: dict[str, Any] = {
            "prefix": f"Branch {n + 1}",
            "title": f"If {condition}",
            "description": f"Plan if {condition} (plan {branch.get('status', 'undetermined')})",
            # The condition is in words, no computable language: R4's JSON Schema allows an
            # Expression only in CQL, FHIRPath or a FHIR query, so the words go in an extension
            # (condition.expression is optional) and in the title.
            "condition": [{"kind": "applicability",
                           "extension": [{"url": CONDITION_EXTENSION, "valueString": condition}]}],
            "code": [_concept(PLAN_STATUS_SYSTEM, branch.get("status", "undetermined"),
                              f"plan {branch.get('status', 'undetermined')}")],
            "groupingBehavior": "logical-group", "selectionBehavior": "all",
        }
        if steps:
            group["action"] = steps
        else:
            group["resource"] = {"reference": f"#branch-{n}", "display": group["title"]}
        actions.append(group)
    others = [o for o in assessment.get("options", []) if o["id"] not in in_plan]
    if others:
        actions.append({"title": "Other options, with today's verdict", "groupingBehavior": "logical-group",
                        "selectionBehavior": "any", "description": "Not part of the plan's steps; listed so that every "
                        "option's verdict and reasons travel with the plan.",
                        "action": [_option_action(o) for o in others]})
    status = plan.get("status", "undetermined")
    group: dict[str, Any] = {
        "resourceType": "RequestGroup", "id": "plan", "status": "draft", "intent": "proposal",
        "code": _concept(PLAN_STATUS_SYSTEM, status, f"plan {status}"),
        "note": [{"text": f"Plan status: {status}"
                          + (f"; pathway: {plan['pathway_label']}" if plan.get("pathway_label") else "")}],
    }
    if actions:
        group["action"] = actions
    for a in plan.get("assumptions") or []:
        group["note"].append({"text": f"Assumes {_condition_text([{'field': a.get('field'), 'value': a.get('assumed')}])}"
                                      f"; if not: {a.get('if_not', '')}"})
    if plan.get("missing"):
        group["note"].append({"text": "Missing facts that would settle the plan: "
                                      + ", ".join(_field_words(f) for f in plan["missing"])})
    if subject:
        group["subject"] = {"reference": subject}
    return group


def contained_proposals(assessment: dict[str, Any], subject: str | None) -> list[dict[str, Any]]:
    """The RequestGroups the plan's leaf actions point at: one per option, one per step or branch
    that names no option."""
    options = {o["id"]: o for o in assessment.get("options", [])}
    plan = assessment.get("plan") or {}
    out = [_proposal(o, subject) for o in options.values()]

    def empty(step_or_branch_id: str, title: str) -> dict[str, Any]:
        g: dict[str, Any] = {"resourceType": "RequestGroup", "id": step_or_branch_id, "status": "draft",
                             "intent": "proposal", "note": [{"text": title}]}
        if subject:
            g["subject"] = {"reference": subject}
        return g

    for step in plan.get("steps") or []:
        if not [i for i in step.get("options") or [] if i in options]:
            out.append(empty(_step_proposal_id(step), step.get("reason") or step["when"]))
    for n, branch in enumerate(plan.get("branches") or []):
        if not branch.get("steps"):
            out.append(empty(f"branch-{n}", f"If {_condition_text(branch.get('if') or [])}"))
        for step in branch.get("steps") or []:
            if not [i for i in step.get("options") or [] if i in options]:
                out.append(empty(_step_proposal_id(step, n), step.get("reason") or step["when"]))
    return out


def _field_words(field: str) -> str:
    from ..labels import field_label

    return field_label(field)


def _resolvable(subject: str | None) -> str | None:
    """A subject reference a receiver can resolve (``Patient/id``, an absolute URL, a urn:uuid);
    a label such as ``Patient (entry.0)`` is not one."""
    if not subject:
        return None
    if re.fullmatch(r"Patient/[A-Za-z0-9\-.]{1,64}", subject) or re.fullmatch(r"https?://\S+/Patient/[A-Za-z0-9\-.]{1,64}",
                                                                              subject):
        return subject
    if re.fullmatch(r"urn:uuid:[0-9a-fA-F-]{36}", subject) or re.fullmatch(r"urn:oid:[0-2](\.(0|[1-9]\d*))+", subject):
        return subject
    return None


def _data_requirements(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """What the plan waits on: the work-up (contract v3) first, then every missing field, each as a
    DataRequirement naming the record type and codes nelm reads it from (mapping.yaml)."""
    from .mapping import load_mapping

    m = load_mapping()
    by_field: dict[str, list[tuple[str, str, str]]] = {}  # field -> [(resource type, system, code)]
    for (system, code), o in m.observations.items():
        by_field.setdefault(o.field, []).append(("Observation", system, code))
    for (system, code), c in m.conditions.items():
        for field in [*c.sets, *(["extrahepatic.present", "extrahepatic.sites"] if c.add_site else [])]:
            by_field.setdefault(field, []).append(("Condition", system, code))
    for (system, code), pr in m.procedures.items():
        for field in [*pr.sets, *(["primary.resected"] if pr.resects else [])]:
            by_field.setdefault(field, []).append(("Procedure", system, code))
    fields: list[str] = []
    orders: dict[str, str] = {}
    for w in plan.get("workup") or []:
        for f in w.get("fields") or []:
            fields.append(f)
            orders.setdefault(f, f"{w.get('order', '')}" + (f" (decides {w['decides']})" if w.get("decides") else ""))
    fields += list(plan.get("missing") or [])
    out = []
    for field in dict.fromkeys(fields):
        sources = by_field.get(field, [])
        types = sorted({t for t, _, _ in sources})
        words = _field_words(field) + (f": {orders[field]}" if field in orders else "")
        ext = [{"url": FIELD_EXTENSION, "valueString": field}, {"url": FIELD_LABEL_EXTENSION, "valueString": words}]
        if len(types) == 1:
            out.append({"extension": ext, "type": types[0],
                        "codeFilter": [{"path": "code", "code": [{"system": s, "code": c} for t, s, c in sources]}]})
        else:  # no coded record nelm reads it from (or several kinds): any record stating it
            out.append({"extension": ext, "type": "Any"})
    return out


def _outcome(imported: Any) -> dict[str, Any] | None:
    """Unread and conflicting records as a contained OperationOutcome (evaluationMessage)."""
    if imported is None or not (imported.unread or imported.conflicts or getattr(imported, "notes", None)):
        return None
    issues = []
    for c in imported.conflicts:
        issues.append({"severity": "warning", "code": "conflict",
                       "details": {"text": f"Conflicting records: {c}"}, "expression": []})
    for u in imported.unread:
        serious = u.reason.startswith(("another patient", "cannot tell whose", "WARNING"))
        issues.append({"severity": "warning" if serious else "information",
                       "code": "informational" if not serious else "business-rule",
                       "details": {"text": f"Not read: {u.resource}: {u.reason}"}})
    for note in getattr(imported, "notes", []) or []:
        issues.append({"severity": "information", "code": "informational", "details": {"text": note}})
    for issue in issues:
        issue.pop("expression", None)
    return {"resourceType": "OperationOutcome", "id": "reading", "issue": issues}


def _verdict_words(o: dict[str, Any], step: dict[str, Any]) -> str:
    """The verdict shown beside a step's option: the one expected when the step comes (contract
    v3), with today's when it differs; today's alone when the plan gives no expectation."""
    today = o["verdict"].replace("_", " ")
    expected = (step.get("expected_verdicts") or {}).get(o["id"])
    if not expected or expected == o["verdict"]:
        return today
    return f"{expected.replace('_', ' ')} when the step comes; today {today}"


def _narrative(assessment: dict[str, Any], status: str, reqs: list[dict[str, Any]], outcome: dict[str, Any] | None
               ) -> dict[str, Any]:
    """text.div: the plan in a clinician's words (XHTML, escaped)."""
    options = {o["id"]: o for o in assessment.get("options", [])}
    plan = assessment.get("plan") or {}
    e = html.escape
    parts = [f"<p><b>nelm plan ({e(plan.get('status', 'undetermined'))})</b>"
             + (f": {e(plan['pathway_label'])}" if plan.get("pathway_label") else "") + "</p>"]
    steps = plan.get("steps") or []
    if steps:
        items = []
        for step in steps:
            names = ", ".join(f"{options[i].get('label', i)} ({_verdict_words(options[i], step)})"
                              for i in step.get("options") or [] if i in options)
            items.append(f"<li>{e(WHEN_LABELS.get(step['when'], step['when']))}: {e(names or (step.get('reason') or ''))}</li>")
        parts.append("<ol>" + "".join(items) + "</ol>")
    for n, branch in enumerate(plan.get("branches") or []):
        names = "; ".join(", ".join(options.get(i, {}).get("label", i) for i in st.get("options") or [])
                          for st in branch.get("steps") or [])
        parts.append(f"<p>If {e(_condition_text(branch.get('if') or []))}: {e(names or 'see the branch')}</p>")
    if reqs:
        parts.append("<p>Waiting on: " + e("; ".join(next(x["valueString"] for x in r["extension"]
                                                          if x["url"] == FIELD_LABEL_EXTENSION) for r in reqs)) + "</p>")
    if outcome:
        parts.append(f"<p>{len(outcome['issue'])} record(s) not read or in conflict: see the evaluation messages.</p>")
    parts.append(f"<p>{e(assessment.get('disclaimer') or 'nelm supports, and does not replace, a tumour board.')}</p>")
    return {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "".join(parts) + "</div>"}


def guidance_response(assessment: dict[str, Any], subject: str | None = None,
                      request_id: str | None = None, imported: Any = None) -> dict[str, Any]:
    """The GuidanceResponse (JSON), validated by constructing it with fhir.resources.

    ``status`` is ``data-required`` (with ``dataRequirement``) while the plan waits on facts (its
    status is not ``determined``, or it lists missing facts); ``evaluationMessage`` points at a
    contained OperationOutcome of the unread and conflicting records of ``imported`` (a
    FhirImport); ``subject`` is kept only when a receiver can resolve it.
    """
    from fhir.resources.R4B.guidanceresponse import GuidanceResponse
    from fhir.resources.R4B.requestgroup import RequestGroup

    subject = _resolvable(subject)
    kb = assessment.get("knowledge_base") or {}
    plan = assessment.get("plan") or {}
    occurred = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    waits = plan.get("status", "undetermined") != "determined" or bool(plan.get("missing"))
    reqs = _data_requirements(plan) if waits else []
    outcome = _outcome(imported)
    contained = [request_group(assessment, subject), *contained_proposals(assessment, subject)]
    if outcome:
        contained.append(outcome)
    gr: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "id": str(uuid.uuid4()),
        "text": _narrative(assessment, "data-required" if waits else "success", reqs, outcome),
        "contained": contained,
        "moduleCodeableConcept": {
            "coding": [{"system": KB_SYSTEM, "code": kb.get("sha256", "unknown"), "version": kb.get("version"),
                        "display": f"nelm knowledge base {kb.get('version')}"
                                   + (f" ({kb['guideline']})" if kb.get("guideline") else "")}],
            "text": f"nelm {assessment.get('nelm_version', '')} knowledge base {kb.get('version')} "
                    f"sha256 {kb.get('sha256')}"},
        "status": "data-required" if waits else "success",
        "occurrenceDateTime": occurred,
        "result": {"reference": "#plan"},
        "note": [{"text": assessment.get("disclaimer") or "nelm supports, and does not replace, a tumour board."}],
    }
    if reqs:
        gr["dataRequirement"] = reqs
    if outcome:
        gr["evaluationMessage"] = [{"reference": "#reading"}]
    if request_id:
        gr["requestIdentifier"] = {"system": "urn:nelm:request", "value": request_id}
    if subject:
        gr["subject"] = {"reference": subject}
    missing = [m["field"] for m in assessment.get("missing_data", [])]
    if missing:
        gr["note"].append({"text": "Missing data: " + ", ".join(_field_words(f) for f in missing)})
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
