"""Published outcomes of comparable patients, attached to each option (issue 5).

:func:`attach_outcomes` gives every option of an assessment an ``outcomes`` list: one
entry per arm of each published cohort that matches the patient (``outcomes.yaml``),
with the points the source reports and a survival curve reconstructed from them
(:mod:`.curves`). Curves do not depend on the patient, so they are fitted once per
knowledge base and copied into each assessment; only the selection is per patient.
Charts are drawn by the report (:mod:`.charts`), never here.
"""
from __future__ import annotations

import threading
from typing import Any

from . import fitted
from .curves import ENDPOINTS, CurveError, Fit, fit, reported_points
from .matching import entry_column, load_spec, matcher, risk_column

__all__ = ["attach_outcomes", "cohort_arms", "source_label", "CurveError"]

_lock = threading.Lock()
_cohort_cache: dict[str, dict[str, list[dict[str, Any]]]] = {}


def source_label(record: Any) -> str:
    """'Mayo et al. 2010, Ann Surg Oncol' from an evidence record's citation."""
    c = record.citation
    first = c.authors.split(",")[0].strip()
    if not first or first.lower().startswith("unknown"):
        who = record.id
    else:
        parts = first.split()
        if len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3:
            first = " ".join(parts[:-1])
        who = first + (" et al." if "," in c.authors else "")
    return f"{who} {c.year}, {c.journal}"


def _hr(record: Any, arm: str, where: str) -> dict[str, Any]:
    for o in record.outcomes:
        if o.endpoint == "hazard_ratio" and o.arm == arm:
            return {"label": arm, "value": o.value, "ci_low": o.ci_low, "ci_high": o.ci_high,
                    "p_value": o.p_value, "note": o.note}
    raise ValueError(f"outcomes.yaml {where}: record {record.id} has no hazard_ratio outcome with arm {arm!r}")


def stored_fit(cohort: str, arm: str) -> Fit | None:
    """The arm's fit as stored with the knowledge base (None when the file is not current)."""
    fits = fitted.stored()
    return None if fits is None else fits.get(fitted.key(cohort, arm))


def _build_cohorts(kb: Any) -> dict[str, list[dict[str, Any]]]:
    spec = load_spec()
    out: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for c in spec.cohorts:
        rec = kb.evidence.get(c.source)
        if rec is None:
            problems.append(f"cohort {c.id}: unknown evidence record {c.source!r}")
            continue
        try:
            hr = _hr(rec, c.hazard_ratio, f"cohort {c.id}") if c.hazard_ratio else None
        except ValueError as exc:
            problems.append(str(exc))
            hr = None
        arms = []
        for i, a in enumerate(c.arms):
            if not any(o.arm == a.arm for o in rec.outcomes):
                problems.append(f"cohort {c.id}: record {rec.id} has no arm {a.arm!r}")
                continue
            try:
                rep = reported_points(rec.outcomes, c.endpoint, a.arm)
                f = stored_fit(c.id, a.arm) or fit(rep)
            except CurveError as exc:
                problems.append(f"cohort {c.id}: {exc}")
                continue
            arms.append({
                "cohort": c.id,
                "title": c.title,
                "source": rec.id,
                "source_label": source_label(rec),
                "design": rec.design,
                "level": rec.level,
                "n": rec.n,
                "endpoint": ENDPOINTS[c.endpoint]["label"],
                "endpoint_code": c.endpoint,
                "start": c.start,
                "arm": a.arm,
                "label": a.label or a.arm,
                "arm_index": i,
                "population": c.population or rec.population,
                "reported": [p.as_dict() for p in rep.points],
                "median_months": None if rep.median_months is None else round(rep.median_months, 3),
                "median_not_reached": rep.median_not_reached,
                "curve": f.curve,
                "method": f.method,
                "model": f.model,
                "reconstructed": True,
                "hazard_ratio": hr,
            })
        out[c.id] = arms
    for r in spec.risk_factors:
        rec = kb.evidence.get(r.source)
        if rec is None:
            problems.append(f"risk factor {r.id}: unknown evidence record {r.source!r}")
        elif r.arm is not None:
            try:
                _hr(rec, r.arm, f"risk factor {r.id}")
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise ValueError("outcomes.yaml inconsistent with the evidence records:\n  " + "\n  ".join(problems))
    return out


def arm_item(arm: dict[str, Any], *, curves: bool = True) -> dict[str, Any]:
    """One arm of a cohort as an option's ``outcomes`` lists it (before why it matches the patient)."""
    item = dict(arm)
    if curves:
        item["curve"] = [list(p) for p in arm["curve"]]
    else:
        del item["curve"]
    item["reported"] = [dict(p) for p in arm["reported"]]
    return item


def cohort_arms(kb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every cohort of outcomes.yaml with its fitted arms (cached per knowledge base)."""
    got = _cohort_cache.get(kb.sha256)
    if got is None:
        with _lock:
            got = _cohort_cache.get(kb.sha256)
            if got is None:
                got = _build_cohorts(kb)
                _cohort_cache[kb.sha256] = got
    return got


_GRADES = ("who_grade", "ki67_grade", "mitotic_grade")


def _show(key: str, value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _GRADES:
        return f"G{int(value)}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("_", " ")


class _Vals(dict):
    def __init__(self, row: dict[str, Any]):
        super().__init__()
        self._row = row

    def __missing__(self, key: str) -> str:
        v = _show(key, self._row.get(key))
        self[key] = v
        return v


def attach_outcomes(assessment: dict[str, Any], row: dict[str, Any], kb: Any, *, curves: bool = True) -> None:
    """Add ``outcomes`` (and ``risk_factors``) to every option of ``assessment``; with
    ``curves=False`` each arm's sampled ``curve`` is left out (everything else stays)."""
    spec = load_spec()
    cohorts = cohort_arms(kb)
    hits = matcher(kb).evaluate(row)
    vals = _Vals(row)
    for opt in assessment["options"]:
        entries = spec.options.get(opt["id"], [])
        chosen = [(e, "specific") for i, e in enumerate(entries)
                  if e.when is not None and hits.get(entry_column(opt["id"], i)) is True]
        if not chosen:
            # a general entry still needs its trial's eligibility (compiled under the entry's column)
            chosen = [(e, "general") for i, e in enumerate(entries) if e.when is None
                      and hits.get(entry_column(opt["id"], i), True) is True]
        seen: list[str] = []
        outcomes: list[dict[str, Any]] = []
        for e, kind in chosen:
            if e.cohort in seen:
                continue
            seen.append(e.cohort)
            reason = " ".join(e.reason.format_map(vals).split())
            for arm in cohorts[e.cohort]:
                item = arm_item(arm, curves=curves)
                item["match_reason"] = reason
                item["match"] = kind
                outcomes.append(item)
        opt["outcomes"] = outcomes
        factors = []
        for r in spec.risk_factors:
            shown = [c for c in r.cohorts if c in seen]
            if not shown:
                continue
            rec = kb.evidence[r.source]
            hr = _hr(rec, r.arm, r.id) if r.arm else None
            factors.append({
                "id": r.id, "source": r.source, "factor": r.factor, "cohorts": shown,
                "compared": r.arm, "hazard_ratio": hr["value"] if hr else None,
                "ci_low": hr["ci_low"] if hr else None, "ci_high": hr["ci_high"] if hr else None,
                "p_value": hr["p_value"] if hr else None, "effect": r.effect,
                "applies": hits.get(risk_column(r.id)),
                "reason": " ".join(r.reason.format_map(vals).split()),
            })
        opt["risk_factors"] = factors
