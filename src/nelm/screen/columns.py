"""The screening output: one row per patient, columns named like the assessment's paths.

``classification.who_grade``, ``classification.category``, ``classification.frilling_type``,
``criteria.<set id>`` (``met``/``not_met``/``unknown``), ``options.<option id>.verdict`` and
``plan.leading`` (the id of the plan's leading option, null when the plan has none) —
the values ``nelm.assessment.assess`` gives for the same patient, computed for a whole
batch by :func:`nelm.engine.evaluate_frame` over the same compiled knowledge base.
"""
from __future__ import annotations

import fnmatch
from typing import Any

import polars as pl

from ..engine import evaluate_both_passes, evaluate_frame
from ..knowledge import KnowledgeBase
from . import validate
from .flat import engine_frame
from .layout import SCHEMA
from .leading import assumable_fields, conditional_leading, leading

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


def assess_batch(layout: pl.DataFrame, kb: KnowledgeBase,
                 columns: list[str] | None = None) -> tuple[pl.DataFrame, int]:
    """The output columns for typed layout rows (with ``__row``); and how many rows' plans
    rest on assumed facts (computed by a second evaluation, see :func:`_assumed_leading`)."""
    columns = columns or output_columns(kb)
    patients = engine_frame(layout)
    wanted_verdicts = [o.id for o in kb.options if f"options.{o.id}.verdict" in columns]
    plan_wanted = "plan.leading" in columns
    # facts as entered (classification, criteria) and, with verdicts, the option rules read
    # with unknown pre-treatment checks in their passing value: evaluate_frame's two passes
    if plan_wanted:
        # the plan reads the pathways and derived values with the checks passing too
        facts, filled = evaluate_both_passes(patients, kb)
    else:
        facts = evaluate_frame(patients, kb, variants=False, verdicts=bool(wanted_verdicts))
    out = [pl.concat_str([pl.lit("G"), pl.col("who_grade").cast(pl.Int64).cast(pl.String)])
           .alias("classification.who_grade"),
           pl.col("category").alias("classification.category"),
           pl.col("frilling_type").alias("classification.frilling_type")]
    out += [status(cs.id).alias(f"criteria.{cs.id}") for cs in kb.criteria]
    out += [pl.col(f"verdict__{o}").alias(f"options.{o}.verdict") for o in wanted_verdicts]
    # (a placeholder column keeps the row count when no fact column is selected)
    result = facts.select([e for e in out if e.meta.output_name() in columns] or [pl.col("who_grade").is_null().alias("__rows")])
    n_assumed = 0
    if plan_wanted:
        verdict_cols = [f"{p}__{o.id}" for o in kb.options for p in ("verdict", "possible")]
        plan = leading(filled, kb)
        lead = plan["plan.leading"]
        rows = plan["needs_assumption"].arg_true()
        n_assumed = rows.len()
        if n_assumed:
            lead = lead.scatter(rows, _assumed_leading(layout[rows], plan[rows], facts[rows].select(verdict_cols), kb))
        result = result.with_columns(lead)
    return result.select(columns), n_assumed


def _assumed_leading(layout: pl.DataFrame, plan: pl.DataFrame, today: pl.DataFrame, kb: KnowledgeBase) -> pl.Series:
    """The leading option of plans that hang on missing facts a board routinely confirms:
    the patients are evaluated again with those facts assumed (``nelm.plan.build_plan``);
    a patient the assumption makes contradictory gets no leading option, as there."""
    assumed = {a.field: a.assumed for a in kb.assumptions}
    alt = layout.with_columns(
        pl.when(plan[f"assume.{f}"]).then(pl.lit(assumed[f], dtype=SCHEMA[f])).otherwise(pl.col(f)).alias(f)
        for f in assumable_fields(kb))
    bad = {p.row for p in validate.problems(alt)}
    ok = ~alt["__row"].is_in(list(bad))
    values = pl.Series("plan.leading", [None] * alt.height, dtype=pl.String)
    if ok.any():
        valid = alt.filter(ok)
        filled = evaluate_frame(engine_frame(valid).with_columns(kb.assume), kb, variants=False, verdicts=True)
        values = values.scatter(ok.arg_true(), conditional_leading(filled, today.filter(ok), kb))
    return values


def plan_leading(plan: dict[str, Any]) -> str | None:
    """The leading option of an assessment's plan: the first option of its first step."""
    steps = plan.get("steps") or []
    return steps[0]["options"][0] if steps and steps[0]["options"] else None
