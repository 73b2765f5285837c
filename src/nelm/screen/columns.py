"""The screening output: one row per patient, columns named like the assessment's paths.

``classification.who_grade``, ``classification.category``, ``classification.frilling_type``,
``criteria.<set id>`` (``met``/``not_met``/``unknown``), ``options.<option id>.verdict`` and
``plan.leading`` (the id of the plan's leading option, null when the plan has none) —
the values ``nelm.assessment.assess`` gives for the same patient, computed for a whole
batch by :func:`nelm.engine.evaluate_frame` over the same compiled knowledge base.
"""
from __future__ import annotations

import fnmatch
import os
from typing import Any

import polars as pl

from ..engine import evaluate_both_passes, evaluate_frame
from ..knowledge import KnowledgeBase
from .flat import engine_frame
from .leading import leading

CLASSIFICATION = ("who_grade", "category", "frilling_type")
STATUS = {True: "met", False: "not_met"}


def output_columns(kb: KnowledgeBase) -> list[str]:
    return ([f"classification.{k}" for k in CLASSIFICATION] + [f"criteria.{cs.id}" for cs in kb.criteria]
            + [f"options.{o.id}.verdict" for o in kb.options] + ["plan.leading", "plan.status"])


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
    plan_wanted = "plan.leading" in columns or "plan.status" in columns
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
        lead, plan_status, rows = certain_plans(layout, patients, filled, kb)
        n_assumed = rows.len()
        if n_assumed:
            per_case = _plans_per_case(layout[rows], kb)
            lead = lead.scatter(rows, per_case["plan.leading"])
            plan_status = plan_status.scatter(rows, per_case["plan.status"])
        result = result.with_columns(lead, plan_status)
    return result.select(columns), n_assumed


def certain_plans(layout: pl.DataFrame, patients: pl.DataFrame, filled: pl.DataFrame, kb: KnowledgeBase
                  ) -> tuple[pl.Series, pl.Series, pl.Series]:
    """``plan.leading`` and ``plan.status`` where they follow column-wise, and the rows left
    to the per-case planner.

    A plan is settled column-wise when no missing fact could change its lead
    (:func:`nelm.screen.leading.leading`, a test that may send a settled plan the slow way,
    never the reverse) and none of the leading option's requirement rules (gates, whose
    unknown pre-treatment checks would make the plan conditional) reads a check missing
    for this patient: then the plan is ``determined`` and its lead is the one followed.
    Every other row rests on assumptions (contract v3) and is planned per case."""
    plan = leading(filled, kb)
    lead = plan["plan.leading"]
    unsure = pl.lit(False)
    for oid, cols in _lead_check_columns(kb).items():
        if cols:
            unsure = unsure | ((pl.col("lead") == oid) & pl.any_horizontal([pl.col(c).is_null() for c in cols]))
    flags = patients.select(sorted({c for cols in _lead_check_columns(kb).values() for c in cols})).with_columns(
        lead=lead).select(unsure.fill_null(False).alias("unsure"))["unsure"]
    settled = lead.is_not_null() & ~flags
    out = pl.DataFrame({"lead": lead, "settled": settled}).select(
        pl.when("settled").then("lead").alias("plan.leading"),
        pl.when("settled").then(pl.lit("determined")).alias("plan.status"))
    return out["plan.leading"], out["plan.status"], (~settled).arg_true()


_LEAD_CHECKS: dict[tuple[str, str], dict[str, list[str]]] = {}


def _lead_check_columns(kb: KnowledgeBase) -> dict[str, list[str]]:
    """For each option, the check input columns its requirement rules read (through the
    derived values): a missing one may make a plan led by it conditional."""
    key = (kb.sha256, kb.guideline)
    if key not in _LEAD_CHECKS:
        from ..knowledge import rule_column
        from ..patient import COLUMN_FIELDS
        checks = {c.field for c in kb.checks}
        out: dict[str, list[str]] = {}
        for opt in kb.options:
            cols: set[str] = set()
            stack = [rule_column(opt.id, r.id) for r in opt.deciding + opt.caps if r.requirement]
            seen: set[str] = set()
            while stack:
                c = stack.pop()
                if c in seen:
                    continue
                seen.add(c)
                if c in COLUMN_FIELDS:
                    if COLUMN_FIELDS[c] in checks:
                        cols.add(c)
                    continue
                stack += list(kb.roots.get(c, ()))
            out[opt.id] = sorted(cols)
        _LEAD_CHECKS[key] = out
    return _LEAD_CHECKS[key]


# Per-case plans are spread over the machine's cores from this many rows on (below it, starting
# the workers, each loading nelm and the knowledge base, costs more than it saves).
PARALLEL_FROM = 2000


def _plans_per_case(layout: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """The plans resting on assumed facts or unknown checks: each patient through the same
    planner and decision as ``nelm assess`` (``nelm.assessment.plan_status_of``: status and lead
    without the plan's document), on every core when there are many."""
    from .layout import row_document

    docs = [row_document(row) for row in layout.drop("__row").iter_rows(named=True)]
    workers = min(os.cpu_count() or 1, 8)
    if len(docs) >= PARALLEL_FROM and workers > 1 and _loadable(kb):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(docs) // (workers * 4))
        chunks = [docs[i:i + size] for i in range(0, len(docs), size)]
        # forkserver, not fork: a forked copy of a process running Polars' thread pool can hang
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            results = [r for part in pool.map(_statuses, chunks, [kb.guideline] * len(chunks)) for r in part]
    else:
        results = _statuses(docs, kb.guideline, kb)
    return pl.DataFrame({"plan.leading": [lead for _, lead in results], "plan.status": [st for st, _ in results]},
                        schema={"plan.leading": pl.String, "plan.status": pl.String})


def _loadable(kb: KnowledgeBase) -> bool:
    """Can a worker load this very knowledge base by its guideline's name (not one built elsewhere)?"""
    from ..knowledge import load

    return load(kb.guideline).sha256 == kb.sha256


def _statuses(docs: list[dict[str, Any]], guideline: str | None, kb: KnowledgeBase | None = None
              ) -> list[tuple[str, str | None]]:
    """(status, leading option) of each patient document (a worker's share)."""
    from ..assessment import plan_status_of
    from ..knowledge import load
    from ..patient import validate_patient

    kb = kb or load(guideline)
    return [plan_status_of(validate_patient(doc), kb) for doc in docs]


def plan_leading(plan: dict[str, Any]) -> str | None:
    """The leading option of an assessment's plan: the first option of its first step."""
    steps = plan.get("steps") or []
    return steps[0]["options"][0] if steps and steps[0]["options"] else None
