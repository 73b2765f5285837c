"""One patient's whole assessment: the engine's verdicts, the treatment plan and the
published outcomes of comparable patients, in the contract's shape.

The layers point one way: the engine knows nothing of plans or outcomes; this module
puts them together for every interface (CLI, REST API, web app, report).
"""
from __future__ import annotations

from typing import Any

from .engine import DISCLAIMER, Evaluation, assessment_from, evaluate
from .knowledge import KnowledgeBase, load
from .outcomes import attach_outcomes
from .outcomes.matching import matcher
from .patient import Patient
from .plan import build_plan, plan_summary

__all__ = ["assess", "plan_of", "DISCLAIMER"]


def _core(patient: Patient, kb: KnowledgeBase, extra_sql: dict[str, str] | None = None, *, brief: bool = False
          ) -> tuple[Evaluation, dict[str, Any]]:
    ev = evaluate(patient, kb, extra_sql=extra_sql)
    return ev, assessment_from(ev, patient, kb, brief=brief)


OUTCOMES = ("summary", "full")


def assess(patient: Patient, guideline: str | None = None, *, outcomes: str = "full") -> dict[str, Any]:
    """The contract's assessment document for one patient, opening with the plan.

    ``outcomes="full"`` gives each matched cohort arm its curve sampled for drawing (the
    report and the web pages chart them); ``"summary"`` leaves the samples out (the
    reported points, median, model and method stay), which is most of the document's size.
    """
    if outcomes not in OUTCOMES:
        raise ValueError(f"outcomes must be one of {', '.join(OUTCOMES)}, not {outcomes!r}")
    kb = load(guideline)
    ev, result = _core(patient, kb, matcher(kb).sql)
    plan = build_plan(patient, ev, result, kb)
    attach_outcomes(result, ev.facts, kb, curves=outcomes == "full")
    ordered = {"patient_id": result.pop("patient_id"), "classification": result.pop("classification"), "plan": plan}
    return ordered | result


def plan_status_of(patient: Patient, kb: KnowledgeBase | None = None) -> tuple[str, str | None]:
    """The plan's status and leading option alone (screening a registry): the same planner
    and the same decision as :func:`plan_of`, without the plan's document."""
    kb = kb or load()
    ev, result = _core(patient, kb, brief=True)
    return plan_summary(patient, ev, result, kb)


def plan_of(patient: Patient, kb: KnowledgeBase | None = None) -> dict[str, Any]:
    """The plan section alone (screening): the same planner as :func:`assess`, without the
    outcomes and the reasons the plan does not read."""
    kb = kb or load()
    ev, result = _core(patient, kb, brief=True)
    return build_plan(patient, ev, result, kb)
