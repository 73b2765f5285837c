"""The treatment plan (contract v2): what now, after response, at progression, if
symptoms persist — the leading recommendation and its sequence.

The sequences are data (``knowledge/pathways.yaml``, after ESMO 2020 and ENETS 2023);
this module follows the pathway that fits the patient and keeps, step by step, the
options today's verdicts allow. It then says how sure the plan is:

- ``determined``: no missing fact could change the leading recommendation;
- ``conditional``: it holds under assumptions about facts that are missing but
  routinely confirmed (``assumptions`` in pathways.yaml, and the pre-treatment checks
  of checks.yaml); each is listed with what the plan becomes if it fails;
- ``undetermined``: a fact that defines the disease or the choice is missing.
"""
from __future__ import annotations

from typing import Any, Callable

from .engine import Evaluation, strongest_level
from .knowledge import KnowledgeBase, UnknownRoots, pathway_column
from .knowledge.ruleset import OPTION_LABELS
from .patient import COLUMN_FIELDS, InvalidPatient, Patient, validate_patient
from .summary import fact_label

NOW_VERDICTS = ("preferred", "reasonable")
RANK = {"preferred": 0, "reasonable": 1, "undetermined": 2}


def _option_ids(step: Any) -> list[tuple[str, str | None]]:
    return [(o, None) if isinstance(o, str) else (o.id, o.if_) for o in step.options]


def follow(row: dict[str, Any], options: dict[str, dict[str, Any]], kb: KnowledgeBase
           ) -> tuple[Any | None, list[str], list[dict[str, Any]]]:
    """The pathway to follow, the still-unknown pathway conditions read before it, and its steps.

    The first pathway that holds and has an option for today is followed: when what
    rules out its first choice cannot be undone today (curative surgery in a patient
    with Child-Pugh B), the next pathway that holds takes over. When no pathway that
    holds offers anything today, the first one is followed with its ``nothing_now`` step.
    """
    unknown: list[str] = []
    fallback = None
    for pw in kb.pathways:
        value = row[pathway_column(pw.id)]
        if value is None:
            unknown.append(pathway_column(pw.id))
            continue
        if value is not True:
            continue
        steps = build_steps(pw, row, options, kb)
        if steps[0]["options"]:
            return pw, unknown, steps
        fallback = fallback or (pw, list(unknown), steps)
        if unknown:
            break  # an unknown pathway before this one might have offered something: stop here
    return fallback or (None, unknown, [])


def _later(option: dict[str, Any], kb: KnowledgeBase) -> bool:
    """May a later step name this option? Yes unless today's verdict sets it aside for good:
    contraindicated, or not recommended by a rule that is not marked ``later`` (such as
    "disease still stable", which progression undoes)."""
    if option["verdict"] in ("preferred", "reasonable", "undetermined"):
        return True
    if option["verdict"] == "contraindicated":
        return False
    opt = next(o for o in kb.options if o.id == option["id"])
    later = {r.id: r.later for r in opt.deciding} | {None: opt.otherwise.later}
    decisive = [r.get("rule") for r in option["reasons"] if r["kind"] == "decisive"]
    return bool(decisive) and all(later.get(r, False) for r in decisive)


def build_steps(pw: Any, row: dict[str, Any], options: dict[str, dict[str, Any]], kb: KnowledgeBase,
                conditional: bool = False, ranked: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The pathway's steps for this patient. ``options`` are today's verdicts; a conditional
    plan ranks its options by ``ranked``, the verdicts under its assumptions."""
    ranked = ranked or options
    steps: list[dict[str, Any]] = []
    used: set[str] = set()
    for i, step in enumerate(pw.steps):
        if step.if_ and row[pathway_column(pw.id, i)] is not True:
            continue
        picked: list[tuple[int, int, str]] = []
        for order, (oid, cond) in enumerate(_option_ids(step)):
            if oid in used or (cond and row[pathway_column(pw.id, i, oid)] is not True):
                continue
            o = options[oid]
            if step.when == "now":
                ok = o["verdict"] in NOW_VERDICTS or (
                    conditional and o["verdict"] == "undetermined"
                    and set(o.get("possible_verdicts", ())) & set(NOW_VERDICTS))
                if ok:
                    picked.append((RANK.get(ranked[oid]["verdict"], 2), order, oid))
            elif _later(o, kb):
                picked.append((0, order, oid))
        chosen = [oid for *_, oid in sorted(picked)][: step.limit]
        if not chosen:
            continue
        used.update(chosen)
        how = ("" if len(chosen) == 1 else " Given together." if step.combine == "together"
               else " Alternatives, in order of preference.")
        reason, sources = " ".join(step.reason.split()) + how, list(step.sources)
        if step.when == "now":
            # what makes the first choice fit this patient, in the option's own decisive reason
            why = next((r for r in options[chosen[0]]["reasons"] if r["kind"] == "decisive"), None)
            if why:
                reason += f" For this patient: {why['text']}"
                sources += [x for x in why["sources"] if x not in sources]
        steps.append({"step": len(steps) + 1, "when": step.when, "options": chosen,
                      "intent": step.intent or options[chosen[0]]["intent"],
                      "combine": step.combine if len(chosen) > 1 else "single",
                      "reason": reason, "sources": sources, "level": strongest_level(sources, kb)})
    if not any(s["when"] == "now" for s in steps):
        # nothing of the pathway fits today: say so (surveillance, supportive care) rather
        # than promote a later step to today
        steps.insert(0, {"step": 1, "when": "now", "options": [], "intent": "disease_control", "combine": "single",
                         "reason": " ".join(pw.nothing_now.reason.split()), "sources": list(pw.nothing_now.sources),
                         "level": strongest_level(pw.nothing_now.sources, kb)})
        for n, step in enumerate(steps, 1):
            step["step"] = n
    return steps


def _fields(kb: KnowledgeBase, columns: list[str], row: dict[str, Any]) -> set[str]:
    roots = UnknownRoots(kb, {c for c, v in row.items() if v is None})
    return {f for col in columns for f in roots.fields(col)}


def _uncertain(pw: Any, unknown_pathways: list[str], steps: list[dict[str, Any]], ev: Evaluation,
               assessment: dict[str, Any], kb: KnowledgeBase) -> tuple[set[str], list[dict[str, str]]]:
    """Missing facts that could change the leading recommendation; and the leading option's conditions."""
    fields = _fields(kb, unknown_pathways, ev.verdicts)
    options = {o["id"]: o for o in assessment["options"]}
    affects: dict[str, set[str]] = {}
    for m in assessment["missing_data"]:
        for a in m["affects"]:
            affects.setdefault(a, set()).add(m["field"])
    lead_id = steps[0]["options"][0] if steps and steps[0]["options"] else None
    leading = options[lead_id] if lead_id else None
    if leading and leading["verdict"] == "undetermined":
        fields |= affects.get(lead_id, set())
    # a first-step candidate that could still outrank the leading one (or lead where none does)
    # (an option the step's own condition leaves out cannot lead)
    candidates = [oid for oid, cond in _option_ids(pw.steps[0])
                  if not cond or ev.verdicts[pathway_column(pw.id, 0, oid)] is not False]
    lead_key = (RANK[leading["verdict"]], candidates.index(lead_id)) if leading and lead_id in candidates else (9, 99)
    for order, oid in enumerate(candidates):
        o = options[oid]
        if oid == lead_id or o["verdict"] != "undetermined":
            continue
        if any((RANK[v], order) < lead_key for v in o.get("possible_verdicts", ()) if v in NOW_VERDICTS):
            fields |= affects.get(oid, set())
    checks = {c.field for c in kb.checks}
    return fields - checks, (leading or {}).get("conditions", [])


def build_plan(patient: Patient, ev: Evaluation, assessment: dict[str, Any], kb: KnowledgeBase,
               reassess: Callable[[Patient], tuple[Evaluation, dict[str, Any]]]) -> dict[str, Any]:
    """The plan section of an assessment; ``reassess`` evaluates a patient with assumed facts."""
    options = {o["id"]: o for o in assessment["options"]}
    pw, unknown, steps = follow(ev.verdicts, options, kb)
    fields, conditions = _uncertain(pw, unknown, steps, ev, assessment, kb) if pw else (
        _fields(kb, unknown, ev.verdicts), [])
    if pw and not fields:
        assumptions = [_check_assumption(c, steps) for c in conditions]
        return _plan("conditional" if assumptions else "determined", pw, steps, assumptions,
                     [c["field"] for c in conditions])

    # a plan that hangs on missing facts: assume those a board routinely confirms
    assumable = {a.field: a for a in kb.assumptions}
    if not fields or not set(fields) & set(assumable):
        return _plan("undetermined", pw, [], [], sorted(fields) or _missing_defining(assessment))
    assumed = [assumable[f] for f in sorted(fields) if f in assumable]
    alt_patient = _with(patient, {a.field: a.assumed for a in assumed})
    if alt_patient is None:
        return _plan("undetermined", pw, [], [], sorted(fields))
    ev2, a2 = reassess(alt_patient)
    pw2, unknown2, steps2 = follow(ev2.verdicts, {o["id"]: o for o in a2["options"]}, kb)
    fields2, conditions2 = _uncertain(pw2, unknown2, steps2, ev2, a2, kb) if pw2 else ({"?"}, [])
    if fields2:
        return _plan("undetermined", pw, [], [], sorted(fields | fields2 - {"?"}))
    # the steps as the assumptions make them, with today's verdicts allowed by a conditional plan
    steps = build_steps(pw2, ev2.verdicts, options, kb, conditional=True, ranked={o["id"]: o for o in a2["options"]})
    if steps[0]["options"][:1] != steps2[0]["options"][:1]:
        return _plan("undetermined", pw, [], [], sorted(fields))
    assumptions = []
    for a in assumed:
        assumptions.append({"field": a.field, "label": fact_label(a.field), "assumed": a.assumed,
                            "if_not": _if_not(patient, a, reassess, kb), "reason": a.reason,
                            "sources": list(a.sources)})
    assumptions += [_check_assumption(c, steps) for c in conditions2]
    return _plan("conditional", pw2, steps, assumptions, sorted(fields | {c["field"] for c in conditions2}))


def _missing_defining(assessment: dict[str, Any]) -> list[str]:
    keys = ("classification.category", "classification.who_grade")
    return sorted({m["field"] for m in assessment["missing_data"] if set(m["affects"]) & set(keys)})


def _check_assumption(cond: dict[str, str], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """An unknown pre-treatment check of the leading option, as a plan assumption."""
    lead = steps[0]["options"][0]
    rest = [o for s in steps for o in s["options"] if o != lead]
    nxt = f"; {OPTION_LABELS.get(rest[0], rest[0])} would lead instead" if rest else ""
    return {"field": cond["field"], "label": fact_label(cond["field"]), "assumed": cond["requirement"],
            "if_not": f"{OPTION_LABELS.get(lead, lead)} may be ruled out{nxt}.", "check": True}


def _if_not(patient: Patient, a: Any, reassess: Callable, kb: KnowledgeBase) -> str:
    alt = _with(patient, {a.field: a.alternative})
    if alt is None:
        return "the plan would have to be reconsidered."
    ev, result = reassess(alt)
    pw, _, steps = follow(ev.verdicts, {o["id"]: o for o in result["options"]}, kb)
    if not steps:
        return "no leading recommendation until the remaining data are known."
    if not steps[0]["options"]:
        return f"no active treatment would be indicated today ({pw.label})."
    lead = steps[0]["options"][0]
    return f"{OPTION_LABELS.get(lead, lead)} would lead ({pw.label})."


def _with(patient: Patient, values: dict[str, Any]) -> Patient | None:
    data = patient.model_dump()
    for dotted, value in values.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[last] = value
    try:
        return validate_patient(data)
    except InvalidPatient:
        return None


def _plan(status: str, pw: Any, steps: list[dict[str, Any]], assumptions: list[dict[str, Any]],
          missing: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": status, "pathway": pw.id if pw else None,
                           "pathway_label": pw.label if pw else None, "steps": steps}
    if status == "conditional":
        out["assumptions"] = assumptions
    out["missing"] = missing if status != "determined" else []
    out["missing_labels"] = [fact_label(f) for f in out["missing"]]
    return out
