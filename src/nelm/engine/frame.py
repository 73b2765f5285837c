"""Evaluate the compiled knowledge base over a table of patients (Polars): the frame executor.

A patient is one row of a Polars frame; every derived variable, criterion item and
rule condition is one column computed from the compiled knowledge base, so the same
definitions assess one patient or a table of a million (:func:`evaluate_frame`).

Two passes (contract v2, "Pre-treatment checks"): the facts as entered give the
classification, the criteria and the missing data; the option rules and verdicts are
read with every unknown pre-treatment check (knowledge/checks.yaml) in its passing
value. The verdicts are resolved here as Polars expressions (:func:`_verdict_stages`),
the same resolution as :func:`nelm.engine.verdicts.resolve_verdict`.

:func:`evaluate_frame` and :func:`evaluate_both_passes` run the same conditions more cheaply
through :mod:`.frame_fast` (text columns as Enums inside the plan, comparisons with text
literals pushed into COALESCE/CASE, the option rules and the verdicts' possibilities on
bitmaps); every column, dtype and value is the same (tests/test_frame_fast.py, which sets
:data:`FAST` to False for the plain expressions). The one-row executor (:mod:`.row`) keeps them.

The lowest layer of :mod:`nelm.engine` with :mod:`.verdicts` and :mod:`.frame_fast`: it
imports no other module of the package but the knowledge base, the patient model and the cache.
"""
from __future__ import annotations

import importlib
from typing import Any, Iterable

from ..cache import cached
from ..knowledge import KnowledgeBase, load, rule_column
from ..knowledge.ruleset import MASK_VERDICTS, VERDICTS, OptionDef
from ..patient import COLUMN_TYPES, column_dtype
from .frame_fast import FastExprs, fast_exprs, possible_columns, restore, run_rules


class _Polars:
    """Polars, imported on first use: one patient's assessment does not need it (nelm.rowcode),
    and importing it is a good part of a command's start-up."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("polars"), name)


pl: Any = _Polars()


def _input_schema() -> dict[str, Any]:
    """The input columns' Polars dtypes (``engine.SCHEMA``, built when first asked for)."""
    got = globals().get("SCHEMA")
    if got is None:
        globals()["SCHEMA"] = got = {c: column_dtype(c) for c in COLUMN_TYPES}
    return got


def __getattr__(name: str) -> Any:
    if name == "SCHEMA":
        return _input_schema()
    raise AttributeError(name)


# --------------------------------------------------------------------------- frame

def patients_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=_input_schema())


def verdict_dtype() -> Any:
    """The verdict columns' dtype in a frame: an Enum of the verdicts (Polars imported only here)."""
    return pl.Enum([*VERDICTS, "undetermined"])


def _possible_name(opt: OptionDef, verdict: str) -> str:
    return f"possible_{VERDICTS.index(verdict)}__{opt.id}"


def _verdict_stages(opt: OptionDef) -> tuple[list[pl.Expr], list[list[pl.Expr]], list[list[pl.Expr]]]:
    """Flat stages computing ``possible__{option}`` and ``verdict__{option}`` for a whole frame.

    Each verdict's possibility is a Boolean column, built from the last rule back to the
    first: with P the possibility after rule i, a rule giving that verdict makes it
    ``condition OR P`` (unknown counts as possible), a rule giving another verdict makes it
    ``NOT condition AND P`` (a rule certainly true stops the reading; unknown does not);
    ``otherwise`` gives the start. Constant parts are folded here, so an option reads each
    rule column once or twice, and only with Boolean (bitmap) kernels.

    1. one Boolean column per verdict (``possible_<j>__{option}``);
    2. one stage per ``cap`` rule, each rewriting those columns from the previous stage's;
    3. the bit mask ``possible__{option}`` (bit j: VERDICTS[j] possible), then the verdict,
       the only possible one else ``undetermined``, as an Enum (a string column cost more
       than the whole rest of the resolution).
    Kept flat (no expression repeated inside the next stage's) so that Polars evaluates it
    in linear time. The same resolution as :func:`resolve_verdict` (tests/test_properties.py).
    """
    rules = opt.deciding
    chains: dict[str, pl.Expr | bool] = {}
    for v in VERDICTS:
        p: pl.Expr | bool = v == opt.otherwise.verdict
        for r in reversed(rules):
            c = pl.col(rule_column(opt.id, r.id))
            if r.verdict == v:
                p = True if p is True else (c.fill_null(True) if p is False else c.fill_null(True) | p)
            elif p is not False:
                p = c.not_().fill_null(True) if p is True else c.not_().fill_null(True) & p
        chains[v] = p
    col = {v: pl.col(_possible_name(opt, v)) for v in VERDICTS}
    first = [_lit_or(chains[v]).alias(_possible_name(opt, v)) for v in VERDICTS]
    caps = []
    for r in opt.caps:
        c, level = pl.col(rule_column(opt.id, r.id)), VERDICTS.index(r.cap)
        better = pl.any_horizontal([col[VERDICTS[j]] for j in range(level)]) if level else pl.lit(False)
        stage = [(col[r.cap] | (better & c.fill_null(True))).alias(_possible_name(opt, r.cap))]
        stage += [(col[VERDICTS[j]] & c.not_().fill_null(True)).alias(_possible_name(opt, VERDICTS[j]))
                  for j in range(level)]
        caps.append(stage)
    mask = pl.sum_horizontal([pl.when(col[v]).then(pl.lit(1 << j, pl.Int32)).otherwise(pl.lit(0, pl.Int32))
                              for j, v in enumerate(VERDICTS)]).alias(f"possible__{opt.id}")
    # one bit set: that verdict; several: undetermined (integer comparisons are the cheapest test)
    verdict: Any = None
    enum = verdict_dtype()
    for m, v in MASK_VERDICTS.items():
        only = pl.col(f"possible__{opt.id}") == m
        verdict = (pl.when(only) if verdict is None else verdict.when(only)).then(pl.lit(v, dtype=enum))
    verdict = verdict.otherwise(pl.lit("undetermined", dtype=enum)).alias(f"verdict__{opt.id}")
    return first, caps, [[mask], [verdict]]


def _lit_or(x: pl.Expr | bool) -> pl.Expr:
    return pl.lit(x) if isinstance(x, bool) else x


def first_rule(opt: OptionDef) -> pl.Expr:
    """Index of the option's first deciding rule whose condition certainly holds (the number
    of deciding rules when none does, so that ``otherwise`` applies) — for tests and reports
    that ask which rule decided; the verdicts do not need it."""
    conds = [pl.col(rule_column(opt.id, r.id)) for r in opt.deciding]
    k = len(conds)
    return pl.min_horizontal([pl.when(c.fill_null(False)).then(pl.lit(i)).otherwise(pl.lit(k))
                              for i, c in enumerate(conds)] + [pl.lit(k)]).alias(f"first__{opt.id}")



def evaluate_frame(frame: pl.DataFrame, kb: KnowledgeBase | None = None, *, variants: bool = True,
                   verdicts: bool = True, extra: list[pl.Expr] | None = None) -> pl.DataFrame:
    """Add every derived, criterion, rule (and verdict) column to a frame of patients.

    Derived values and criteria are read from the facts as entered; with ``verdicts``,
    the rule and verdict columns come from the pass in which unknown pre-treatment
    checks take their passing value (see the module docstring). ``extra`` expressions
    (e.g. the outcome cohorts' matching conditions) are evaluated on the facts as
    entered, in the same pass.
    """
    kb = kb or load()
    if not verdicts:
        return _lazy(frame.lazy(), kb, variants, False, extra).collect(optimizations=pl.QueryOptFlags.none())
    return _two_passes(frame, kb, variants, extra, whole_second_pass=False)[0]


def evaluate_both_passes(frame: pl.DataFrame, kb: KnowledgeBase, *, variants: bool = False
                         ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`evaluate_frame`'s frame, and the whole second pass: every column with unknown
    pre-treatment checks in their passing value, verdicts included (what the plan reads,
    ``nelm.screen``), without evaluating the patients a third time."""
    return _two_passes(frame, kb, variants, None, whole_second_pass=True)


def _two_passes(frame: pl.DataFrame, kb: KnowledgeBase, variants: bool, extra: list[pl.Expr] | None,
                whole_second_pass: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    # each pass computes only what it returns: the facts pass no rule nobody reads there;
    # the verdict pass starts from the facts pass's columns and recomputes only what the
    # assumed checks change, and the rules
    only = None if extra else "facts"
    # the cheaper expressions of .frame_fast (same values), built for the input columns' dtypes
    # (engine.SCHEMA: a frame typed otherwise keeps the plain ones); ``extra`` reads the facts
    # pass's columns as they are returned, so it keeps them too
    schema = frame.schema
    fast = _fast(kb) if FAST and not extra and all(schema.get(c) == t for c, t in _input_schema().items()) else None
    raw_df = _lazy(frame.lazy(), kb, variants, False, extra, only=only, fast=fast
                   ).collect(optimizations=pl.QueryOptFlags.none())
    # with ``fast``, the verdicts are resolved on the rule columns' bitmaps after this plan
    filled = _lazy(raw_df.lazy().with_columns(fast.assume if fast else kb.assume), kb, False, not fast, None,
                   only="all" if whole_second_pass else "rules", present=frozenset(raw_df.columns), fast=fast)
    rule_cols = [c for c in kb.roots if c.startswith("rule__")]
    verdict_cols = [f"{p}__{o.id}" for o in kb.options for p in ("possible", "verdict")]
    if fast:
        # the plan leaves the rules that .frame_fast runs on bitmaps: added here, then in the
        # plain plan's order
        base = filled.collect(optimizations=pl.QueryOptFlags.none())
        ruled, words = run_rules(base, fast.rules)
        base = base.hstack(ruled)
        filled_all = _columns(base, _plain_columns(kb, raw_df.columns) if whole_second_pass else rule_cols)
        filled_all = _verdicts_after(filled_all.hstack(possible_columns(filled_all, kb.options, words)), kb)
        filled_df = _columns(filled_all, rule_cols + verdict_cols)
        if whole_second_pass:
            filled_all = filled_all.with_columns(restore(fast, set(filled_all.columns)))
        else:
            filled_all = filled_df
    elif whole_second_pass:
        filled_all = filled.collect(optimizations=pl.QueryOptFlags.none())
        filled_df = filled_all.select(rule_cols + verdict_cols)
    else:
        filled_all = filled_df = filled.select(rule_cols + verdict_cols).collect(optimizations=pl.QueryOptFlags.none())
    out = (_columns(raw_df, [c for c in raw_df.columns if c not in set(rule_cols)]) if fast
           else raw_df.drop(rule_cols, strict=False)).hstack(filled_df)
    if fast:
        out = out.with_columns(restore(fast, set(out.columns)))
    return out, filled_all


def _columns(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """``frame.select(names)`` by taking the Series: an eager select over some 600 columns cost
    0.1-0.3 s per million rows here (its own overhead), this nothing."""
    return pl.DataFrame([frame.get_column(c) for c in names])


def _plain_columns(kb: KnowledgeBase, first: list[str]) -> list[str]:
    """The whole second pass's columns in the plain plan's order, less the verdict stages: the
    first pass's (``first``; a recomputed column keeps its place), then each new one in the
    order of the plan's batches (as ``with_columns`` appends them)."""
    present = frozenset(first)
    keep = _keep(kb, False, "all", present)
    return first + [n.column for batch in kb.nodes for n in batch
                    if (keep is None or n.column in keep) and n.column not in present]


def _verdicts_after(frame: pl.DataFrame, kb: KnowledgeBase) -> pl.DataFrame:
    """The verdict of every option, read from its mask ``possible__<option>``
    (:func:`_verdict_stages`' last stage)."""
    stage = _VERDICT_LAST.get(id(kb))
    if stage is None:
        _KEYED[id(kb)] = kb
        stage = _VERDICT_LAST[id(kb)] = [_verdict_stages(opt)[2][1][0] for opt in kb.options]
    return frame.lazy().with_columns(stage).collect(optimizations=pl.QueryOptFlags.none())


_VERDICT_LAST: dict[int, list[pl.Expr]] = {}


# evaluate_frame and evaluate_both_passes use .frame_fast's expressions (tests/test_frame_fast.py
# sets this to False to compare them with the knowledge base's own)
FAST = True


def _fast(kb: KnowledgeBase) -> FastExprs:
    """.frame_fast's rewrites for this knowledge base, given the plain plan's column types."""
    key = (kb.sha256, kb.guideline)
    got = _FAST_EXPRS.get(key)
    if got is None:
        def build() -> FastExprs:
            empty = pl.DataFrame(schema=_input_schema())
            return fast_exprs(kb, dict(_lazy(empty.lazy(), kb, True, False, None).collect_schema()))

        # built in about a second (sqlglot, Polars' typing of every condition): kept in nelm's
        # compiled cache like the knowledge base, so that a command's start-up does not pay it
        got = _FAST_EXPRS[key] = cached("frame-fast", f"{kb.sha256}|{kb.guideline}|{pl.__version__}", build)
    return got


_FAST_EXPRS: dict[tuple[str, str], FastExprs] = {}


def _lazy(lf: pl.LazyFrame, kb: KnowledgeBase, variants: bool, verdicts: bool,
          extra: list[pl.Expr] | None, only: str | None = None, present: frozenset[str] | None = None,
          fast: FastExprs | None = None) -> pl.LazyFrame:
    for batch in _plan(kb, variants, verdicts, only, present, fast):
        lf = lf.with_columns(batch)
    if extra:
        lf = lf.with_columns(extra)
    # The plan is already flat and ordered; skipping the optimiser saves more than it finds.
    return lf


_PLANS: dict[tuple[int, bool, bool, str | None, frozenset[str] | None, int | None], list[list[pl.Expr]]] = {}


def _needed(kb: KnowledgeBase, targets: Iterable[str]) -> set[str]:
    """The columns ``targets`` read, directly or through other computed columns, and themselves."""
    need: set[str] = set()
    stack = list(targets)
    while stack:
        col = stack.pop()
        if col not in need:
            need.add(col)
            stack.extend(kb.roots.get(col, ()))
    return need


def _keep(kb: KnowledgeBase, variants: bool, only: str | None, present: frozenset[str] | None) -> set[str] | None:
    """The computed columns a pass evaluates (None: every one); see :func:`_plan`."""
    keep: set[str] | None = None
    columns = [n.column for batch in kb.nodes for n in batch]
    if only == "facts":
        keep = _needed(kb, [c for c in columns if not c.startswith("rule__")]
                       + [r for _, _, vn in (kb.variant_nodes if variants else ()) for r in vn.roots])
    elif only in ("rules", "all"):
        keep = _needed(kb, [c for c in columns if c.startswith("rule__")]) if only == "rules" else set(columns)
        if present:
            # on top of the first pass's frame: only what it lacks, or computed from a
            # check that this pass assumes passing
            keep = {c for c in keep if c not in present or _reads_assumed(kb, c)}
    return keep


def _plan(kb: KnowledgeBase, variants: bool, verdicts: bool, only: str | None = None,
          present: frozenset[str] | None = None, fast: FastExprs | None = None) -> list[list[pl.Expr]]:
    """Batches of expressions for a knowledge base, built once.

    ``only="facts"``: every column but the rules, and the rules those read; ``only="rules"``:
    the rules and what they read (the verdict pass of :func:`evaluate_frame`), less the
    columns ``present`` already holds that no assumed check changes. ``fast``: the cheaper
    expressions of :mod:`.frame_fast` where it has one."""
    key = (id(kb), variants, verdicts, only, present, id(fast) if fast is not None else None)
    alt = fast.nodes if fast is not None else {}
    if key not in _PLANS:
        _KEYED[id(kb)] = kb
        keep = _keep(kb, variants, only, present)
        if fast is not None and only in ("rules", "all"):   # the rules .frame_fast runs on bitmaps
            keep = (keep if keep is not None else {n.column for b in kb.nodes for n in b}) - set(fast.rules.programs)
        batches = [[alt.get(n.column, n.expr) for n in batch if keep is None or n.column in keep] for batch in kb.nodes]
        batches = [b for b in batches if b]
        if verdicts:
            stages = [_verdict_stages(opt) for opt in kb.options]
            batches.append([e for s in stages for e in s[0]])
            for j in range(max(len(s[1]) for s in stages)):  # one cap after another
                batches.append([e for s in stages if len(s[1]) > j for e in s[1][j]])
            batches.append([e for s in stages for e in s[2][0]])  # the mask
            batches.append([e for s in stages for e in s[2][1]])  # the verdict, read from the mask
        if variants and kb.variant_nodes:
            batches.append([alt.get(vn.column, vn.expr) for _, _, vn in kb.variant_nodes])
        _PLANS[key] = batches
    return _PLANS[key]


def _reads_assumed(kb: KnowledgeBase, column: str) -> bool:
    """Does the column's value hang, directly or through computed columns, on a pre-treatment
    check that the verdict pass assumes passing while unknown?"""
    key = (kb.sha256, kb.guideline)
    got = _ASSUMED_READERS.get(key)
    if got is None:
        assumed = {col for col, _, _ in kb.assume_sql}
        got = _ASSUMED_READERS[key] = {c for c in kb.roots if _needed(kb, [c]) & assumed}
    return column in got


_ASSUMED_READERS: dict[tuple[str, str], set[str]] = {}


# knowledge bases whose id() keys a cache here: kept alive, so that no later object reuses the id
_KEYED: dict[int, KnowledgeBase] = {}
