"""The screening output: one row per patient, columns named like the assessment's paths.

``classification.who_grade``, ``classification.category``, ``classification.frilling_type``,
``criteria.<set id>`` (``met``/``not_met``/``unknown``), ``options.<option id>.verdict`` and
``plan.leading`` (the id of the plan's leading option, null when the plan has none) —
the values ``nelm.assessment.assess`` gives for the same patient, computed for a whole
batch by :func:`nelm.engine.evaluate_frame` over the same compiled knowledge base.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable

import polars as pl

from ..engine import evaluate_frame
from ..knowledge import KnowledgeBase
from .flat import engine_frame
from .layout import row_document
from .leading import leading

CLASSIFICATION = ("who_grade", "category", "frilling_type")
STATUS = {True: "met", False: "not_met"}


def output_columns(kb: KnowledgeBase) -> list[str]:
    return ([f"classification.{k}" for k in CLASSIFICATION] + [f"criteria.{cs.id}" for cs in kb.criteria]
            + [f"options.{o.id}.verdict" for o in kb.options] + ["plan.leading"])


def selected(kb: KnowledgeBase, select: list[str] | None) -> list[str]:
    """The output columns a ``--select`` list names (shell patterns allowed: ``criteria.*``)."""
    columns = output_columns(kb)
    if not select:
        return columns
    out: list[str] = []
    for pattern in select:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise ValueError(f"--select {pattern!r} names no output column; allowed: {', '.join(columns)}")
        out += [c for c in hits if c not in out]
    return out


def status(col: str) -> pl.Expr:
    return pl.col(col).replace_strict(STATUS, default="unknown", return_dtype=pl.String)


def assess_batch(layout: pl.DataFrame, kb: KnowledgeBase, columns: list[str] | None = None,
                 per_case: Callable[[dict[str, Any]], str | None] | None = None) -> tuple[pl.DataFrame, int]:
    """The output columns for typed layout rows (with ``__row``); and how many rows needed
    the per-case plan (see :mod:`nelm.screen.leading`)."""
    columns = columns or output_columns(kb)
    patients = engine_frame(layout)
    facts = evaluate_frame(patients, kb, variants=False, verdicts=False)
    out = [pl.concat_str([pl.lit("G"), pl.col("who_grade").cast(pl.Int64).cast(pl.String)])
           .alias("classification.who_grade"),
           pl.col("category").alias("classification.category"),
           pl.col("frilling_type").alias("classification.frilling_type")]
    out += [status(cs.id).alias(f"criteria.{cs.id}") for cs in kb.criteria]
    # (a placeholder column keeps the row count when no fact column is selected)
    result = facts.select([e for e in out if e.meta.output_name() in columns] or [pl.col("who_grade").is_null().alias("__rows")])
    wanted_verdicts = [o.id for o in kb.options if f"options.{o.id}.verdict" in columns]
    n_per_case = 0
    if wanted_verdicts or "plan.leading" in columns:
        # the option rules and the plan read unknown pre-treatment checks in their passing value
        filled = evaluate_frame(patients.with_columns(kb.assume), kb, variants=False, verdicts=True)
        result = result.hstack(filled.select(pl.col(f"verdict__{o}").alias(f"options.{o}.verdict")
                                             for o in wanted_verdicts))
        if "plan.leading" in columns:
            plan = leading(filled, kb)
            flagged = plan["needs_per_case"].arg_true().to_list()
            n_per_case = len(flagged)
            lead = plan["plan.leading"]
            if flagged:
                per_case = per_case or _per_case(kb)
                values = lead.to_list()
                rows = layout.select(pl.exclude("__row"))
                for i in flagged:
                    values[i] = per_case(rows.row(i, named=True))
                lead = pl.Series("plan.leading", values, dtype=pl.String)
            result = result.with_columns(lead)
    return result.select(columns), n_per_case


def _per_case(kb: KnowledgeBase) -> Callable[[dict[str, Any]], str | None]:
    from ..assessment import assess
    from ..patient import validate_patient

    def run(row: dict[str, Any]) -> str | None:
        plan = assess(validate_patient(row_document(row)), kb.guideline)["plan"]
        return plan_leading(plan)

    return run


def plan_leading(plan: dict[str, Any]) -> str | None:
    """The leading option of an assessment's plan: the first option of its first step."""
    steps = plan.get("steps") or []
    return steps[0]["options"][0] if steps and steps[0]["options"] else None
