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
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..engine import evaluate_both_passes, evaluate_frame
from ..knowledge import KnowledgeBase
from .flat import engine_frame
from ..engine import plan_program
from .sql_build import Pipeline, World, q, reads

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


def assess_batch(layout: pl.DataFrame, kb: KnowledgeBase, columns: list[str] | None = None,
                 patients: pl.DataFrame | None = None) -> tuple[pl.DataFrame, int]:
    """The output columns for typed layout rows (with ``__row``); and how many rows' plans
    rest on assumed facts (settled by :mod:`nelm.screen.settle`, see :func:`certain_plans`).
    ``patients``: the rows' engine frame when the caller has it (``engine_frame(layout)``)."""
    first = first_pass(layout, kb, columns, patients)
    return settle_open(kb, [first])[0], first.assumed


@dataclass
class FirstPass:
    """A batch after one evaluation (:func:`first_pass`): its output columns, the plan's where one
    evaluation settles it, and the rows it leaves open, for :func:`settle_open`."""
    result: pl.DataFrame            # the output columns but the plan's
    columns: list[str]
    lead: pl.Series | None = None   # plan.leading / plan.status, NULL in the open rows (None: not wanted)
    status: pl.Series | None = None
    rows: pl.Series | None = None   # the open rows' positions
    layout: pl.DataFrame | None = None   # the open rows' layout, first evaluation and engine frame
    first: pl.DataFrame | None = None
    engine: pl.DataFrame | None = None

    @property
    def assumed(self) -> int:
        return 0 if self.rows is None else self.rows.len()


def first_pass(layout: pl.DataFrame, kb: KnowledgeBase, columns: list[str] | None = None,
               patients: pl.DataFrame | None = None) -> FirstPass:
    """:func:`assess_batch` up to the rows whose plan one evaluation leaves open."""
    columns = columns or output_columns(kb)
    patients = engine_frame(layout) if patients is None else patients
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
    if not plan_wanted:
        return FirstPass(result, columns)
    first = plan_outputs(patients, filled, kb)
    rows = first["plan.status"].is_null().arg_true()
    return FirstPass(result, columns, first["plan.leading"], first["plan.status"], rows,
                     layout[rows], first[rows], patients[rows])


def settle_open(kb: KnowledgeBase, batches: list[FirstPass]) -> list[pl.DataFrame]:
    """The output columns of each batch, the open rows of all of them settled together: each
    row's plan is settled from its own record alone (row by row, whatever rows are settled with
    it), so settling several batches' open rows at once spares the settling's fixed costs (a
    dozen evaluations of the whole knowledge base whatever the number of rows) but changes no
    value."""
    parts = [b for b in batches if b.assumed]
    if parts:
        from .settle import fills_nothing, settle_plans

        layout = pl.concat([b.layout for b in parts], how="vertical")
        first = pl.concat([b.first for b in parts], how="vertical")
        engine = pl.concat([b.engine for b in parts], how="vertical")
        rows = pl.int_range(0, layout.height, dtype=pl.UInt32, eager=True)
        # the open rows whose plans stay undetermined with nothing to assume end at once
        # column-wise; the others are settled column-wise from SETTLE_FROM rows on, per case below
        quick = fills_nothing(layout, kb, first)
        per_case = int((~quick).sum()) < SETTLE_FROM
        by_columns, by_case = (rows.filter(quick), rows.filter(~quick)) if per_case else (rows, rows.clear())
        lead = pl.Series("plan.leading", [None] * layout.height, dtype=pl.String)
        plan_status = pl.Series("plan.status", [None] * layout.height, dtype=pl.String)
        for part, rest in [(by_columns, settle_plans(layout[by_columns], kb, first=first[by_columns],
                                                     engine=engine[by_columns]) if by_columns.len() else None),
                           (by_case, _plans_per_case(layout[by_case], kb) if by_case.len() else None)]:
            if rest is not None:
                lead = lead.scatter(part, rest["plan.leading"])
                plan_status = plan_status.scatter(part, rest["plan.status"])
        at = 0
        for b in parts:
            n = b.assumed
            assert b.lead is not None and b.status is not None and b.rows is not None
            b.lead = b.lead.scatter(b.rows, lead.slice(at, n))
            b.status = b.status.scatter(b.rows, plan_status.slice(at, n))
            at += n
    return [(b.result.with_columns(b.lead, b.status) if b.lead is not None else b.result).select(b.columns)
            for b in batches]


def certain_plans(layout: pl.DataFrame, patients: pl.DataFrame, filled: pl.DataFrame, kb: KnowledgeBase
                  ) -> tuple[pl.Series, pl.Series, pl.Series]:
    """``plan.leading`` and ``plan.status`` where they follow from one evaluation, and the rows
    left to :mod:`nelm.screen.settle` (NULL in both here).

    The columns are :mod:`nelm.engine.plan_program`' definition, the one the SQL view runs,
    computed here by Polars over ``filled`` (the patients evaluated with unknown pre-treatment
    checks in their passing values) and the inputs as entered (``patients``, from which the
    requirement rules the leading option's conditions read are evaluated): a plan is settled
    column-wise when no missing fact could change its lead (``determined``, or ``conditional``
    on the leading option's unknown checks). Every other row rests on assumptions (contract
    v3) or has no plan: :func:`nelm.screen.settle.settle_plans` settles it from the same
    columns with facts filled in."""
    out = plan_outputs(patients, filled, kb)
    return out["plan.leading"], out["plan.status"], out["plan.status"].is_null().arg_true()


def plan_outputs(patients: pl.DataFrame, filled: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """:func:`_plan_program`'s outputs on ``filled`` and the inputs as entered (``patients``),
    with the assumption records' conditions (``assumption__<i>``): everything
    :mod:`nelm.screen.settle` reads of one evaluation."""
    from ..knowledge import assumption_column

    levels, outputs, raw = _plan_program(kb)
    lf = filled.lazy().with_columns([patients[c].alias(_RAW + c) for c in raw])
    for group in levels:
        lf = lf.with_columns(group)
    conditions = [assumption_column(i) for i, a in enumerate(kb.assumptions) if a.when]
    return lf.select(*outputs, *conditions).collect(optimizations=_FLAT)


_RAW = "raw__"      # the inputs as entered, beside the frame whose checks are filled in
_FACTS = "facts__"  # what the facts as entered give (the requirement rules the conditions read)
# the plan is flat and ordered already; the optimiser spends more on hundreds of columns than it saves,
# except for common subexpressions: the plan's CASEs read the same terms (the lead's code modulo 64,
# an option's possible verdicts) hundreds of times, and computing each once costs a third less
_FLAT = pl.QueryOptFlags.none()
_FLAT.comm_subexpr_elim = True
_PROGRAMS: dict[tuple[str, str], tuple[list[list[pl.Expr]], list[pl.Expr], list[str]]] = {}


def _plan_program(kb: KnowledgeBase) -> tuple[list[list[pl.Expr]], list[pl.Expr], list[str]]:
    """:mod:`nelm.engine.plan_program`' expressions as Polars expressions, one group per dependency level
    (the SQL view lays the same groups out as CTEs); the outputs; the raw inputs they read.
    Built once per knowledge base: generating, rendering and parsing a few hundred expressions
    takes seconds, so their PostgreSQL text is kept in nelm's cache on disk (keyed by the
    knowledge base and nelm's own source) and each process parses that text only."""
    key = (kb.sha256, kb.guideline)
    if key not in _PROGRAMS:
        from ..cache import cached

        levels, outputs, raw = cached("plan-columns", f"{kb.sha256}|{kb.guideline}", lambda: _plan_sql(kb))
        _PROGRAMS[key] = ([[pl.sql_expr(sql).alias(n) for n, sql in group] for group in levels],
                          [pl.sql_expr(sql).alias(n) for n, sql in outputs], raw)
    return _PROGRAMS[key]


def _plan_sql(kb: KnowledgeBase) -> tuple[list[list[tuple[str, str]]], list[tuple[str, str]], list[str]]:
    """:func:`_plan_program`'s expressions as (name, PostgreSQL text), by level; the outputs; the raw inputs."""
    from .sql import evaluation   # (the view's module reads this one's output columns)

    today = World(prefix="", input_prefix="", filled_prefix=None)        # the frame's own columns
    facts = World(prefix=_FACTS, input_prefix=_RAW, filled_prefix=None)  # the inputs as entered
    pipe = Pipeline()
    pipe.add("plan", plan_program.inputs_of_follow(kb, today))
    pipe.add("plan", plan_program.follow(kb, today))
    cond_needed, check_bits = plan_program.condition_inputs(kb)
    pipe.add("facts", evaluation(kb, facts, cond_needed, cond_needed, check_bits))
    leading, status = plan_program.settled(kb, today, facts)
    # the plan as settled where nothing is assumed; and, for the rows it leaves open, what
    # nelm.screen.settle reads: the pathway followed, its lead and the facts that block it
    outputs = [("plan.leading", leading), ("plan.status", status), ("plan.followed", q(today.plan("followed"))),
               ("plan.candidate", plan_program.lead_text(kb, today)), ("plan.missing", q(today.plan("missing")))]
    groups = pipe.levels(outputs)
    read = set().union(*(reads(e) for group in groups for _, e in group), *(reads(e) for _, e in outputs))
    raw = sorted(c[len(_RAW):] for c in read if c.startswith(_RAW))
    text = lambda e: e.sql(dialect="postgres")  # noqa: E731
    return ([[(n, text(e)) for n, e in group] for group in groups], [(n, text(e)) for n, e in outputs], raw)


# Open plans are settled column-wise (nelm.screen.settle) from this many rows on: settling takes
# a dozen evaluations of the whole knowledge base whatever the number of rows (seconds), the
# per-case planner about 1.5 ms a row on two cores, so below it each row goes through the
# per-case planner instead (the same answer: tests/screen/test_settle.py). And per-case plans
# are spread over the machine's cores from PARALLEL_FROM rows on (below it, starting the
# workers, each loading nelm and the knowledge base, costs more than it saves).
SETTLE_FROM = 4000
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
