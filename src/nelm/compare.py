"""Two assessments side by side: a case's versions (what changed in the facts, the
verdicts and the plan) and one patient under every guideline profile (which verdicts
the choice of source changes). Pure functions over the contract's documents."""
from __future__ import annotations

from typing import Any

from . import labels


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list) and prefix == "prior_therapies":
        out[prefix] = _therapies(node)
    elif isinstance(node, list):
        out[prefix] = ", ".join(labels.value_label(prefix, x) for x in node) or "none"
    else:
        out[prefix] = node
    return out


def _therapies(rows: list[dict[str, Any]]) -> str:
    from .knowledge.ruleset import OPTION_LABELS

    parts = []
    for r in rows:
        bits = [labels.value_label("prior_therapies.outcome", r.get("outcome"))]
        if r.get("months_to_progression") is not None:
            bits.append(f"{r['months_to_progression']:g} months")
        parts.append(f"{OPTION_LABELS.get(r.get('therapy'), r.get('therapy'))} ({', '.join(bits)})")
    return "; ".join(parts) or "none"


def _shown(field: str, value: Any) -> str:
    if isinstance(value, str) and field in ("prior_therapies", "extrahepatic.sites"):
        return value
    text = f"{value:g}" if isinstance(value, float) else labels.value_label(field, value)
    unit = labels.field_unit(field)
    return f"{text} {unit}" if unit and value is not None and not isinstance(value, (str, bool)) else text


def _leading(a: dict[str, Any]) -> str | None:
    steps = (a.get("plan") or {}).get("steps") or []
    return steps[0]["options"][0] if steps and steps[0].get("options") else None


def _plan_line(a: dict[str, Any]) -> str:
    from .knowledge.ruleset import OPTION_LABELS

    plan = a.get("plan") or {}
    steps = plan.get("steps") or []
    seq = " → ".join(labels.word("when", st["when"]) + ": " + (" + " if st.get("combine") == "together" else " or ").join(
        OPTION_LABELS.get(o, o) for o in st.get("options", [])) for st in steps if st.get("options"))
    return f"{labels.word('plan_status', plan.get('status'))}" + (f" — {seq}" if seq else "")


def version_diff(old: tuple[dict[str, Any], dict[str, Any]], new: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """What changed from ``old`` to ``new``, each given as (patient document, assessment)."""
    (p0, a0), (p1, a1) = old, new
    f0, f1 = _flat(p0), _flat(p1)
    facts = [{"field": k, "label": labels.field_label(k), "before": _shown(k, f0.get(k)), "after": _shown(k, f1.get(k))}
             for k in sorted(set(f0) | set(f1), key=_field_order) if f0.get(k) != f1.get(k)]
    c0, c1 = a0.get("classification", {}), a1.get("classification", {})
    classification = [{"key": k, "label": labels.classification_label(k),
                       "before": labels.classification_value(k, c0.get(k)), "after": labels.classification_value(k, c1.get(k))}
                      for k in dict.fromkeys([*c0, *c1]) if c0.get(k) != c1.get(k)]
    crit0, crit1 = a0.get("criteria", {}), a1.get("criteria", {})
    criteria = [{"id": k, "label": (crit1.get(k) or crit0.get(k) or {}).get("label", k),
                 "before": labels.status_label((crit0.get(k) or {}).get("status")),
                 "after": labels.status_label((crit1.get(k) or {}).get("status"))}
                for k in dict.fromkeys([*crit0, *crit1])
                if (crit0.get(k) or {}).get("status") != (crit1.get(k) or {}).get("status")]
    v0 = {o["id"]: o for o in a0.get("options", [])}
    v1 = {o["id"]: o for o in a1.get("options", [])}
    verdicts = [{"id": k, "label": (v1.get(k) or v0.get(k))["label"],
                 "before": labels.verdict_label((v0.get(k) or {}).get("verdict")),
                 "after": labels.verdict_label((v1.get(k) or {}).get("verdict"))}
                for k in dict.fromkeys([*v0, *v1]) if (v0.get(k) or {}).get("verdict") != (v1.get(k) or {}).get("verdict")]
    plan_before, plan_after = _plan_line(a0), _plan_line(a1)
    return {"facts": facts, "classification": classification, "criteria": criteria, "verdicts": verdicts,
            "plan": None if plan_before == plan_after else {"before": plan_before, "after": plan_after,
                                                            "leading_before": _leading(a0), "leading_after": _leading(a1)}}


def _field_order(field: str) -> int:
    order = list(labels.fields())
    return order.index(field) if field in order else len(order)


def guideline_comparison(assessments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The verdicts and criteria that differ between guideline profiles for one patient.

    ``assessments`` maps each guideline id to the patient's assessment under it; rows list
    only what the choice of source changes."""
    names = list(assessments)
    rows = []
    first = assessments[names[0]]
    for cid, cs in first.get("criteria", {}).items():
        vals = {g: (assessments[g].get("criteria", {}).get(cid) or {}).get("status") for g in names}
        if len(set(vals.values())) > 1:
            rows.append({"kind": "criteria", "id": cid, "label": cs.get("label", cid),
                         "values": {g: labels.status_label(v) for g, v in vals.items()}, "raw": vals})
    for o in first.get("options", []):
        vals = {g: next((x["verdict"] for x in assessments[g].get("options", []) if x["id"] == o["id"]), None)
                for g in names}
        if len(set(vals.values())) > 1:
            rows.append({"kind": "option", "id": o["id"], "label": o.get("label", o["id"]),
                         "values": {g: labels.verdict_label(v) for g, v in vals.items()}, "raw": vals})
    leads = {g: _leading(a) for g, a in assessments.items()}
    if len(set(leads.values())) > 1:
        from .knowledge.ruleset import OPTION_LABELS

        rows.append({"kind": "plan", "id": "plan.leading", "label": "Leading recommendation",
                     "values": {g: OPTION_LABELS.get(v, v) if v else "none" for g, v in leads.items()}, "raw": leads})
    return {"guidelines": names, "rows": rows}
