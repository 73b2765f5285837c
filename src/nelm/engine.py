"""Evaluate the knowledge base for patients, in three-valued (Kleene) logic.

A patient is one row of a Polars frame; every derived variable, criterion item and
rule condition is one column computed from the compiled knowledge base, so the same
definitions assess one patient or a table of a million (:func:`evaluate_frame`).

Verdicts: an option's rules are read in order and the first that holds decides. When
a condition is unknown, its verdict stays *possible* and reading goes on; the verdict
is determined only when every possible verdict is the same, which is exactly when no
completion of the unknown inputs could give another (up to Kleene's conservatism).
A ``cap`` rule that holds limits how good the verdict can be.

Two passes (contract v2, "Pre-treatment checks"): the facts as entered give the
classification, the criteria and the missing data; the option rules and verdicts are
read with every unknown pre-treatment check (knowledge/checks.yaml) in its passing
value, and an option lists each such check it relied on among its ``conditions``.

This module assesses nothing beyond the knowledge base: the treatment plan
(:mod:`nelm.plan`) and the published outcomes (:mod:`nelm.outcomes`) are built on its
result by :mod:`nelm.assessment`.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

from . import __version__, rowcode
from .classify import GRADES, REPORTED_WHEN_UNKNOWN, classification_from_row, grade_label
from .knowledge import KnowledgeBase, UnknownRoots, fields_of_mask, item_column, load, placeholders, rule_column, template_names
from .knowledge.ruleset import MASK_VERDICTS, VERDICTS, OptionDef, Rule
from .patient import COLUMN_FIELDS, COLUMN_TYPES, Patient, column_dtype, flatten
from .labels import field_unit
from .summary import fact_label, show, value_label

DISCLAIMER = ("nelm supports, and does not replace, the judgement of a multidisciplinary tumour board. "
              "Verdicts restate published evidence for the facts entered; check every reason against its sources.")



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


# bit j of ``possible__{option}`` is set when VERDICTS[j] is possible
_MASK_VERDICT = {m: MASK_VERDICTS.get(m, "undetermined") for m in range(1, 2 ** len(VERDICTS))}


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


def _cap(mask: int, level: int) -> int:
    better = (1 << level) - 1
    return (mask & ~better) | ((1 << level) if mask & better else 0)


def possible_verdicts(mask: int) -> list[str]:
    return [v for j, v in enumerate(VERDICTS) if mask >> j & 1]


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
    raw_df = _lazy(frame.lazy(), kb, variants, False, extra, only=only).collect(optimizations=pl.QueryOptFlags.none())
    filled = _lazy(raw_df.lazy().with_columns(kb.assume), kb, False, True, None,
                   only="all" if whole_second_pass else "rules", present=frozenset(raw_df.columns))
    rule_cols = [c for c in kb.roots if c.startswith("rule__")]
    verdict_cols = [f"{p}__{o.id}" for o in kb.options for p in ("possible", "verdict")]
    if whole_second_pass:
        filled_all = filled.collect(optimizations=pl.QueryOptFlags.none())
        filled_df = filled_all.select(rule_cols + verdict_cols)
    else:
        filled_all = filled_df = filled.select(rule_cols + verdict_cols).collect(optimizations=pl.QueryOptFlags.none())
    return raw_df.drop(rule_cols, strict=False).hstack(filled_df), filled_all


def _lazy(lf: pl.LazyFrame, kb: KnowledgeBase, variants: bool, verdicts: bool,
          extra: list[pl.Expr] | None, only: str | None = None, present: frozenset[str] | None = None) -> pl.LazyFrame:
    for batch in _plan(kb, variants, verdicts, only, present):
        lf = lf.with_columns(batch)
    if extra:
        lf = lf.with_columns(extra)
    # The plan is already flat and ordered; skipping the optimiser saves more than it finds.
    return lf


_PLANS: dict[tuple[int, bool, bool, str | None, frozenset[str] | None], list[list[pl.Expr]]] = {}


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


def _plan(kb: KnowledgeBase, variants: bool, verdicts: bool, only: str | None = None,
          present: frozenset[str] | None = None) -> list[list[pl.Expr]]:
    """Batches of expressions for a knowledge base, built once.

    ``only="facts"``: every column but the rules, and the rules those read; ``only="rules"``:
    the rules and what they read (the verdict pass of :func:`evaluate_frame`), less the
    columns ``present`` already holds that no assumed check changes."""
    key = (id(kb), variants, verdicts, only, present)
    if key not in _PLANS:
        _KEYED[id(kb)] = kb
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
        batches = [[n.expr for n in batch if keep is None or n.column in keep] for batch in kb.nodes]
        batches = [b for b in batches if b]
        if verdicts:
            stages = [_verdict_stages(opt) for opt in kb.options]
            batches.append([e for s in stages for e in s[0]])
            for j in range(max(len(s[1]) for s in stages)):  # one cap after another
                batches.append([e for s in stages if len(s[1]) > j for e in s[1][j]])
            batches.append([e for s in stages for e in s[2][0]])  # the mask
            batches.append([e for s in stages for e in s[2][1]])  # the verdict, read from the mask
        if variants and kb.variant_nodes:
            batches.append([vn.expr for _, _, vn in kb.variant_nodes])
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


# --------------------------------------------------------------------------- formatting

class _Values(dict):
    """The row's values as text for reason templates, each formatted when first read
    (a reason reads a few of some 500 columns)."""

    def __init__(self, row: dict[str, Any]):
        super().__init__()
        self._row = row

    def __missing__(self, key: str) -> str:
        v = self._row[key]  # KeyError for a name that is no column, as a plain dict gives
        text = value_label(COLUMN_FIELDS.get(key), v) if key in COLUMN_FIELDS else show(v)
        self[key] = text
        return text

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self._row


def _values(row: dict[str, Any], patient: Patient, kb: KnowledgeBase) -> dict[str, str]:
    vals = _Values(row)
    for g in GRADES:
        vals[g] = grade_label(row.get(g)) or "unknown"
    ehd = patient.extrahepatic
    vals["extrahepatic_sites"] = ("unknown" if ehd is None or ehd.sites is None
                                  else ", ".join(value_label("extrahepatic.sites", s) for s in ehd.sites) or "none")
    for cs in kb.criteria:
        vals[cs.id] = _status(row.get(cs.id)).replace("_", " ")
        for status, key in (("not_met", False), ("unknown", None)):
            texts = [it.text for it in cs.items if row.get(item_column(cs.id, it.id)) is key]
            vals[f"{cs.id}__{status}"] = "; ".join(texts) or "none"
    return vals


def _status(value: Any) -> str:
    return {True: "met", False: "not_met"}.get(value, "unknown")


# --------------------------------------------------------------------------- one patient

class Dtypes(Mapping):
    """Column -> Polars dtype, from dtype names; Polars is imported only when a dtype is read."""

    def __init__(self, names: dict[str, str]):
        self._names = names

    def __getitem__(self, column: str) -> Any:
        return getattr(pl, self._names[column])()

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class Evaluation:
    """One patient's evaluated rows: ``facts`` as entered (classification, criteria,
    missing data), ``verdicts`` with unknown pre-treatment checks in their passing value
    (rules, verdicts, plan)."""

    facts: dict[str, Any]
    verdicts: dict[str, Any]
    schema: Mapping[str, Any]


def evaluate(patient: Patient | dict[str, Any], kb: KnowledgeBase, extra: list[Any] | None = None, *,
             extra_sql: Mapping[str, str] | None = None, executor: str | None = None,
             verdicts_only: bool = False) -> Evaluation:
    """Evaluate one patient: both passes, then each option's verdict.

    ``executor="python"`` (the default) runs the knowledge base's conditions as the
    Python code of :mod:`nelm.rowcode`, with ``extra_sql`` (column -> SQL condition, cast
    to a Boolean) evaluated on the facts as entered; Polars expressions in ``extra``, or
    ``executor="polars"``, run the one-row frame through Polars instead. Both give the
    same row (tests/test_rowcode.py); Polars' fixed cost per query is most of an
    assessment's time when the frame has one row.
    """
    flat = flatten(patient) if isinstance(patient, Patient) else patient
    executor = executor or os.environ.get("NELM_EXECUTOR", "python")  # polars: the old path, for comparison
    program = row_program(kb, extra_sql) if executor == "python" and not extra else None
    if program is None:
        if extra_sql:
            extra = [*(extra or []), *(pl.sql_expr(sql).cast(pl.Boolean).alias(col) for col, sql in extra_sql.items())]
        return _evaluate_polars(flat, kb, extra)
    inputs = program.inputs(flat)
    # verdicts_only (the plan's what-if evaluations): the facts pass is skipped, its row empty
    facts = {} if verdicts_only else program.facts(dict(inputs))
    verdicts = program.verdicts(inputs)
    for opt in kb.options:
        verdicts[f"possible__{opt.id}"], verdicts[f"verdict__{opt.id}"] = resolve_verdict(opt, verdicts)
    return Evaluation(facts, verdicts, program.verdict_types)


def _evaluate_polars(flat: dict[str, Any], kb: KnowledgeBase, extra: list[Any] | None) -> Evaluation:
    # Polars evaluates every condition; the verdicts are resolved in Python
    # (resolve_verdict). tests/test_properties.py checks both resolutions agree.
    frame = patients_frame([flat])
    raw = _lazy(frame.lazy(), kb, True, False, extra)
    filled = _lazy(frame.lazy().with_columns(kb.assume), kb, False, False, None)
    raw_df, filled_df = pl.collect_all([raw, filled], optimizations=pl.QueryOptFlags.none())
    facts, verdicts = raw_df.row(0, named=True), filled_df.row(0, named=True)
    for opt in kb.options:
        verdicts[f"possible__{opt.id}"], verdicts[f"verdict__{opt.id}"] = resolve_verdict(opt, verdicts)
    return Evaluation(facts, verdicts, dict(filled_df.schema))


# --------------------------------------------------------------------------- one row in Python

@dataclass
class RowProgram:
    """A knowledge base's two passes for one patient, as generated Python (:mod:`nelm.rowcode`)."""

    facts: Callable[[dict[str, Any]], dict[str, Any]]      # as entered, with variants and extra columns
    verdicts: Callable[[dict[str, Any]], dict[str, Any]]   # unknown checks in their passing value
    verdict_types: Dtypes
    _casts: tuple[tuple[str, Callable[[Any], Any], type], ...]   # column, cast, the type it gives

    def inputs(self, flat: dict[str, Any]) -> dict[str, Any]:
        """The input columns in the frame's order and types (as Polars would store them)."""
        out = {}
        get = flat.get
        for c, cast, kind in self._casts:
            v = get(c)
            # most values already have their column's type (a flattened document): no call
            out[c] = v if v is None or type(v) is kind else cast(v)
        return out


_PROGRAMS: dict[tuple[int, tuple], RowProgram | None] = {}
# knowledge bases whose id() keys a cache here: kept alive, so that no later object reuses the id
_KEYED: dict[int, KnowledgeBase] = {}
_DOWNSTREAM_CODE: dict[tuple[int, int], Callable[[dict[str, Any]], dict[str, Any]] | None] = {}
_CASTS = {"float": rowcode.HELPERS["_f"], "bool": rowcode.HELPERS["_b"], "str": rowcode.HELPERS["_s"]}
_CAST_TYPES = {"float": float, "bool": bool, "str": str}


def _code_key() -> str:
    """The translator's own source is part of the cache key: a changed translator recompiles."""
    h = hashlib.sha256()
    for mod in (rowcode.__file__, __file__):
        h.update(Path(mod).read_bytes())
    return h.hexdigest()[:16]


def row_program(kb: KnowledgeBase, extra_sql: Mapping[str, str] | None = None) -> RowProgram | None:
    """The knowledge base's passes as Python for one patient, or None when a condition
    uses SQL the translator does not handle (then the engine keeps Polars)."""
    extra = tuple((extra_sql or {}).items())  # in order: the columns follow it
    key = (id(kb), extra)
    if key not in _PROGRAMS:
        _KEYED[id(kb)] = kb
        from .cache import cached

        digest = hashlib.sha256(repr(extra).encode()).hexdigest()[:16]
        built = cached("rowcode", f"{kb.sha256}|{kb.guideline}|{digest}|{_code_key()}",
                       lambda: _generate(kb, dict(extra)))
        if built is None:
            _PROGRAMS[key] = None
        else:
            import marshal

            code, verdict_types = built
            namespace: dict[str, Any] = dict(rowcode.HELPERS)
            exec(marshal.loads(code), namespace)  # noqa: S102  # nosec B102, B302 - our code object, compiled by _generate from the knowledge base, read from our own cache
            casts = tuple((c, _CASTS[t], _CAST_TYPES[t]) for c, t in COLUMN_TYPES.items())
            _PROGRAMS[key] = RowProgram(namespace["facts"], namespace["verdicts"], Dtypes(verdict_types), casts)
    return _PROGRAMS[key]


def _type_name(dtype: Any) -> str:
    """A dtype's name as one row holds its values: an Enum's values are plain strings there."""
    return "String" if isinstance(dtype, (pl.Enum, pl.Categorical)) else str(dtype)


def _generate(kb: KnowledgeBase, extra_sql: dict[str, str]) -> tuple[bytes, dict[str, str]] | None:
    """Python source of both passes, compiled; and the verdict row's dtype names."""
    import marshal

    extra = [pl.sql_expr(sql).cast(pl.Boolean).alias(col) for col, sql in extra_sql.items()]
    empty = patients_frame([])
    raw_types = {c: _type_name(t) for c, t in _lazy(empty.lazy(), kb, True, False, extra).collect_schema().items()}
    filled_types = {c: _type_name(t) for c, t in
                    _lazy(empty.lazy().with_columns(kb.assume), kb, False, False, None).collect_schema().items()}
    try:
        facts_steps = [(n.column, _node_python(n), rowcode.coercion(raw_types[n.column]))
                       for batch in kb.nodes for n in batch]
        facts_steps += [(vn.column, _node_python(vn), rowcode.coercion(raw_types[vn.column]))
                        for _, _, vn in kb.variant_nodes]
        facts_steps += [(col, rowcode.translate(sql), "bool") for col, sql in extra_sql.items()]
        verdict_steps = [(col, f"_coalesce(r[{col!r}], {rowcode.translate(sql)})", kind)
                         for col, sql, kind in kb.assume_sql]
        verdict_steps += [(n.column, _node_python(n), rowcode.coercion(filled_types[n.column]))
                          for batch in kb.nodes for n in batch]
    except rowcode.Unsupported:
        return None
    source = rowcode.function_source("facts", facts_steps) + rowcode.function_source("verdicts", verdict_steps)
    code = compile(source, f"<nelm rowcode {kb.guideline}>", "exec")
    return marshal.dumps(code), filled_types


def _node_python(node: Any) -> str:
    if node.kind == "all":  # a criteria set: Kleene AND of its items
        return "_and(" + ", ".join(f"r[{c!r}]" for c in node.sql.split(" AND ")) + ")"
    return rowcode.translate(node.sql)


_DOWNSTREAM: dict[tuple[int, int], tuple[list[list[Any]], list[str]]] = {}


def _downstream_nodes(kb: KnowledgeBase, other: KnowledgeBase) -> tuple[list[list[Any]], list[str]]:
    """Only the columns another guideline computes differently, and what depends on them.

    Returns the node batches and the columns they read from the governing row.
    """
    key = (id(kb), id(other))
    if key not in _DOWNSTREAM:
        _KEYED[id(kb)], _KEYED[id(other)] = kb, other
        # the columns whose definition differs between the two guidelines
        dirty = {col for col, g, _ in kb.variant_nodes if g in (kb.guideline, other.guideline)}
        batches: list[list[Any]] = []
        reads: set[str] = set()
        for batch in other.nodes:
            chosen = [n for n in batch if n.column in dirty or n.roots & dirty]
            reads |= {r for n in chosen for r in n.roots} - dirty
            dirty |= {n.column for n in chosen}
            if chosen:
                batches.append(chosen)
        _DOWNSTREAM[key] = (batches, sorted(reads))
    return _DOWNSTREAM[key]


def _downstream_plan(kb: KnowledgeBase, other: KnowledgeBase) -> tuple[list[list[Any]], list[str]]:
    """The Polars expression batches of :func:`_downstream_nodes`, and the columns they read."""
    batches, reads = _downstream_nodes(kb, other)
    return [[n.expr for n in batch] for batch in batches], reads


def _downstream_code(kb: KnowledgeBase, other: KnowledgeBase, ev: Evaluation):
    key = (id(kb), id(other))
    if key not in _DOWNSTREAM_CODE:
        _KEYED[id(kb)], _KEYED[id(other)] = kb, other
        from .cache import cached

        def build() -> bytes | None:
            import marshal

            batches, reads = _downstream_nodes(kb, other)
            if not batches:
                return marshal.dumps(compile(rowcode.function_source("downstream", []), "<nelm>", "exec"))
            lf = pl.DataFrame([], schema={c: ev.schema[c] for c in reads}).lazy()
            for batch in batches:
                lf = lf.with_columns([n.expr for n in batch])
            types = {c: _type_name(t) for c, t in lf.collect_schema().items()}
            try:
                steps = [(n.column, _node_python(n), rowcode.coercion(types[n.column])) for b in batches for n in b]
            except rowcode.Unsupported:
                return None
            return marshal.dumps(compile(rowcode.function_source("downstream", steps), "<nelm rowcode>", "exec"))

        code = cached("rowcode-downstream", f"{kb.sha256}|{kb.guideline}|{other.guideline}|{_code_key()}", build)
        fn = None
        if code is not None:
            import marshal

            namespace: dict[str, Any] = dict(rowcode.HELPERS)
            exec(marshal.loads(code), namespace)  # noqa: S102  # nosec B102, B302 - our code object, compiled from the knowledge base, read from our own cache
            fn = namespace["downstream"]
        _DOWNSTREAM_CODE[key] = fn
    return _DOWNSTREAM_CODE[key]


def verdicts_under(ev: Evaluation, kb: KnowledgeBase, other: KnowledgeBase) -> dict[str, Any]:
    """The verdict row this patient gets when ``other`` governs (only what differs is recomputed)."""
    row, schema = ev.verdicts, ev.schema
    fn = _downstream_code(kb, other, ev) if isinstance(schema, Dtypes) else None
    if fn is not None:
        theirs = fn(dict(row))
    else:
        batches, reads = _downstream_plan(kb, other)
        lf = pl.DataFrame([{c: row[c] for c in reads}], schema={c: schema[c] for c in reads}).lazy()
        for batch in batches:
            lf = lf.with_columns(batch)
        theirs = row | lf.collect(optimizations=pl.QueryOptFlags.none()).row(0, named=True)
    for opt in other.options:
        theirs[f"possible__{opt.id}"], theirs[f"verdict__{opt.id}"] = resolve_verdict(opt, theirs)
    return theirs


def _verdicts_under_other_guidelines(result: dict[str, Any], ev: Evaluation, kb: KnowledgeBase) -> None:
    """Where sources disagree for this patient, show which verdicts another source would change."""
    others = sorted({v["source"] for d in result["disagreements"] for v in d["values"]}
                    & set(kb.manifest.guidelines) - {kb.guideline})
    for g in others:
        theirs = verdicts_under(ev, kb, load(g))
        changes = [{"option": o.id, "governing_verdict": ev.verdicts[f"verdict__{o.id}"],
                    "verdict": theirs[f"verdict__{o.id}"]}
                   for o in kb.options if theirs[f"verdict__{o.id}"] != ev.verdicts[f"verdict__{o.id}"]]
        for d in result["disagreements"]:
            if any(v["source"] == g for v in d["values"]):
                d.setdefault("verdict_changes", {})[g] = changes


_OPTION_BITS: dict[int, tuple[Any, ...]] = {}


def _bits(opt: OptionDef) -> tuple[list[tuple[str, int]], int, list[tuple[str, int]]]:
    """(rule column, verdict bit) of the deciding rules, the ``otherwise`` bit, (column, level) of
    the caps: what resolve_verdict reads, worked out once per option."""
    got = _OPTION_BITS.get(id(opt))
    if got is None or got[0] is not opt:
        deciding = [(rule_column(opt.id, r.id), 1 << VERDICTS.index(r.verdict)) for r in opt.deciding]
        caps = [(rule_column(opt.id, r.id), VERDICTS.index(r.cap)) for r in opt.caps]
        got = (opt, (deciding, 1 << VERDICTS.index(opt.otherwise.verdict), caps))
        _OPTION_BITS[id(opt)] = got
    return got[1]


def resolve_verdict(opt: OptionDef, row: dict[str, Any]) -> tuple[int, str]:
    """First rule that holds decides; unknown conditions keep their verdict possible; caps limit."""
    mask = _rule_mask(opt, row)
    for col, level in _bits(opt)[2]:
        cond = row[col]
        if cond is True:
            mask = _cap(mask, level)
        elif cond is None:
            mask |= _cap(mask, level)
    return mask, _MASK_VERDICT[mask]


def _rule_mask(opt: OptionDef, row: dict[str, Any]) -> int:
    deciding, otherwise, _ = _bits(opt)
    mask = 0
    for col, bit in deciding:
        cond = row[col]
        if cond is False:
            continue
        mask |= bit
        if cond is True:
            break
    else:
        mask |= otherwise
    return mask


# --------------------------------------------------------------------------- the plan's view

def plan_view(ev: Evaluation, kb: KnowledgeBase, *, conditions: bool = True) -> dict[str, Any]:
    """What the planner reads of one evaluation (:mod:`nelm.plan`), without any text: each
    option's verdict, the verdicts still possible, its unknown pre-treatment checks
    (``conditions``, as :func:`assessment_from` lists them) and ``missing_data`` entries
    with the options each missing fact affects, worked out as :func:`assessment_from`
    does for options. Without ``conditions`` (an evaluation with the verdict pass only)
    the options' conditions are left out: they are unknown checks, which pass while
    unknown and so never change what leads."""
    row = ev.verdicts
    roots = UnknownRoots(kb, {c for c, v in ev.facts.items() if v is None}) if conditions else None
    filled_mask: dict[str, int] = {}
    filled_roots = UnknownRoots(kb, {c for c, v in row.items() if v is None})
    checks = {c.field: c for c in kb.checks}
    options = []
    for opt in kb.options:
        deciding, caps, _ = _rule_columns(opt)
        verdict = row[f"verdict__{opt.id}"]
        possible = possible_verdicts(row[f"possible__{opt.id}"])
        several = len(possible) > 1
        decided_by = None
        mask = 0
        for r, col in deciding:
            cond = row[col]
            if cond is False:
                continue
            if cond is None:
                if several:
                    mask |= filled_roots.mask(col)
                continue
            decided_by = r
            break
        if several:
            for r, col in caps:
                if row[col] is None:
                    mask |= filled_roots.mask(col)
        out = {"id": opt.id, "verdict": verdict, "intent": opt.intent, "reasons": []}
        if several:
            out["possible_verdicts"] = possible
        if roots is not None and (verdict in ("preferred", "reasonable")
                                  or (several and ("preferred" in possible or "reasonable" in possible))):
            found = _conditions(opt, ev, kb, checks, roots, decided_by)
            if found:
                out["conditions"] = found
        if mask:
            filled_mask[opt.id] = mask
        options.append(out)
    affects = _affects(filled_mask, options)
    return {"options": options, "missing_data": [{"field": f, "affects": sorted(a)} for f, a in sorted(affects.items())]}


def _affects(pending: dict[str, int], options: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Missing field -> what it affects: the inputs each value hangs on (a bit mask per
    value), and each option's unknown pre-treatment checks."""
    affects: dict[str, set[str]] = {}
    for what, mask in pending.items():
        for f in fields_of_mask(mask):
            affects.setdefault(f, set()).add(what)
    for o in options:
        for c in o.get("conditions", []):
            affects.setdefault(c["field"], set()).add(o["id"])
    return affects


# --------------------------------------------------------------------------- assessment

def assessment_from(ev: Evaluation, patient: Patient, kb: KnowledgeBase, *, brief: bool = False) -> dict[str, Any]:
    """The contract's assessment (without plan and outcomes, see :mod:`nelm.assessment`).

    ``brief`` is for the plan's what-if assessments (:func:`nelm.plan.build_plan`), which
    read verdicts, decisive reasons, conditions and the missing data of options only: the
    texts of the other reasons are left empty, the criteria and the classification's
    missing data are left out, and disagreements between sources are not worked out."""
    row = ev.facts
    nulls = {c for c, v in row.items() if v is None}
    filled_nulls = {c for c, v in ev.verdicts.items() if v is None}
    roots = UnknownRoots(kb, nulls)
    filled_roots = UnknownRoots(kb, filled_nulls)
    vals = _values(row, patient, kb)
    pending: dict[str, int] = {}  # what -> the unknown inputs it hangs on, as one bit mask

    def note_missing(column: str, what: str, *, filled: bool = False) -> list[str]:
        which = filled_roots if filled else roots
        pending[what] = pending.get(what, 0) | which.mask(column)
        return which.fields(column)

    classification = classification_from_row(row)
    for key in () if brief else REPORTED_WHEN_UNKNOWN:
        if row[key] is None:
            note_missing(key, f"classification.{key}")

    criteria: dict[str, Any] = {}
    for cs in () if brief else kb.criteria:
        items = []
        for it in cs.items:
            col = item_column(cs.id, it.id)
            status = _status(row[col])
            if status == "unknown" and row[cs.id] is None:  # only what could still settle the set
                note_missing(col, cs.id)
            items.append({"id": it.id, "text": it.text, "status": status,
                          "reason": _prose(_template(it.reason).format_map(vals)), "sources": list(it.sources),
                          "level": strongest_level(it.sources, kb)})
        criteria[cs.id] = {"label": cs.label, "status": _status(row[cs.id]), "items": items,
                           "sources": list(cs.sources)}

    checks = {c.field: c for c in kb.checks}
    options = [_option(opt, ev, vals, kb, note_missing, checks, roots, brief) for opt in kb.options]
    affects = _affects(pending, options)

    missing = [{"field": f, "label": fact_label(f), "obtain": checks[f].label if f in checks else kb.order_for(f),
                "check": f in checks, "affects": sorted(a)} for f, a in sorted(affects.items())]
    result = {
        "patient_id": patient.id,
        "classification": classification,
        "criteria": criteria,
        "options": options,
        "missing_data": missing,
        "disagreements": [] if brief else _disagreements(row, kb, vals),
        "knowledge_base": {"version": kb.version, "sha256": kb.sha256, "guideline": kb.guideline},
        "nelm_version": __version__,
        "assessed_on": date.today().isoformat(),
        "disclaimer": DISCLAIMER,
    }
    if not brief:
        _verdicts_under_other_guidelines(result, ev, kb)
    return result


# "Ki-67 unknown %" reads as a number that went missing; an unknown value takes no unit
_UNIT_AFTER_UNKNOWN = re.compile(r"\bunknown(?: ?(?:%|cm|months?|years?|mg/dL|mL/min|×10⁹/L|/10 HPF))")


def _prose(text: str) -> str:
    if "  " in text or "\n" in text or "\t" in text:
        text = " ".join(text.split())
    return _UNIT_AFTER_UNKNOWN.sub("unknown", text) if "unknown" in text else text


_TEMPLATES: dict[str, str] = {}


def _template(template: str) -> str:
    """A reason template with its YAML line breaks folded (once per template)."""
    got = _TEMPLATES.get(template)
    if got is None:
        got = _TEMPLATES[template] = " ".join(template.split())
    return got


# One reason's quoted facts, worked out once per (columns read, template): which columns are
# patient fields (with label and unit) and which are derived values (with label).
# Keyed by the knowledge base's content hash and guideline, not its id: a knowledge base
# built in a test may reuse a freed one's id.
_FACT_PLANS: dict[tuple[str, str, frozenset[str], frozenset[str]], tuple[tuple[str, str, str, str | None], ...]] = {}


def _fact_plan(columns: frozenset[str], quoted: frozenset[str], kb: KnowledgeBase
               ) -> tuple[tuple[str, str, str, str | None], ...]:
    key = (kb.sha256, kb.guideline, columns, quoted)
    got = _FACT_PLANS.get(key)
    if got is None:
        labels = _labels(kb)
        plan = []
        for col in sorted(columns):
            if col in quoted or col.startswith("rule__"):
                continue
            if col in COLUMN_FIELDS:
                field = COLUMN_FIELDS[col]
                plan.append((col, field, fact_label(field, col), field_unit(field)))
            else:
                plan.append((col, col, labels.get(col, col.replace("_", " ")), None))
        got = _FACT_PLANS[key] = tuple(plan)
    return got


def _facts(columns: Iterable[str], vals: dict[str, str], quoted: frozenset[str], kb: KnowledgeBase
           ) -> list[dict[str, str]]:
    """The patient values a condition read, so each reason can be checked against the chart."""
    out = []
    for col, field, label, unit in _fact_plan(frozenset(columns), quoted, kb):
        value = vals.get(col, "unknown")
        if unit is not None and value != "unknown":  # a patient field: its unit after a known value
            value = _prose(f"{value} {unit}" if unit else value)
        out.append({"field": field, "label": label, "value": value})
    return out


_LABELS: dict[int, tuple[KnowledgeBase, dict[str, str]]] = {}


def _labels(kb: KnowledgeBase) -> dict[str, str]:
    """Derived variables' and criteria sets' labels (once per knowledge base)."""
    got = _LABELS.get(id(kb))
    if got is None or got[0] is not kb:
        got = (kb, {d.name: d.label for d in kb.derived} | {cs.id: cs.label for cs in kb.criteria})
        _LABELS[id(kb)] = got
    return got[1]


def _reason(rule: Rule | Any, vals: dict[str, str], kind: str, rule_id: str | None,
            kb: KnowledgeBase, reads: Iterable[str] = (), brief: bool = False) -> dict[str, Any]:
    if brief and kind != "decisive":
        return {"text": "", "sources": list(rule.sources), "level": None, "kind": kind, "rule": rule_id, "facts": []}
    # one clinical sentence: the template quotes the deciding values; every input the rule
    # read stays in ``facts`` (the page's "show logic", ``nelm assess --explain``), not in the text
    text = _prose(_template(rule.reason).format_map(vals))
    facts = _facts(reads, vals, template_names(rule.reason), kb)
    return {"text": text, "sources": list(rule.sources), "level": strongest_level(rule.sources, kb),
            "kind": kind, "rule": rule_id, "facts": facts}


# Oxford CEBM 2009, strongest first (evidence.Level)
LEVEL_ORDER = ("1a", "1b", "2a", "2b", "3", "4", "5")


def strongest_level(sources: Iterable[str], kb: KnowledgeBase) -> str | None:
    """The strongest level of evidence among a reason's sources (Oxford CEBM 2009)."""
    key = (kb.sha256, kb.guideline, tuple(sources))
    if key in _STRONGEST:
        return _STRONGEST[key]
    levels = [kb.evidence[s].level for s in key[2] if s in kb.evidence]
    got = _STRONGEST[key] = min(levels, key=_LEVEL_RANK.__getitem__) if levels else None
    return got


_STRONGEST: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


_LEVEL_RANK = {level: i for i, level in enumerate(LEVEL_ORDER)}


def _option(opt: OptionDef, ev: Evaluation, vals: dict[str, str], kb: KnowledgeBase, note_missing,
            checks: dict[str, Any], roots: UnknownRoots, brief: bool = False) -> dict[str, Any]:
    """One option's verdict with its reasons. ``brief`` (the plan's what-if assessments) keeps
    the decisive reasons only, but still notes every missing fact the verdict hangs on."""
    row = ev.verdicts
    deciding, caps, notes = _rule_columns(opt)
    verdict = row[f"verdict__{opt.id}"]
    base = _MASK_VERDICT[_rule_mask(opt, row)]   # before caps
    reasons: list[dict[str, Any]] = []
    intent = opt.intent
    possible = possible_verdicts(row[f"possible__{opt.id}"])
    # several verdicts still possible: the reasons name what each hangs on, whether the
    # verdict is undetermined or the milder of one side (contract v3, MASK_VERDICTS)
    undetermined = len(possible) > 1
    blocked = False
    intent_set = False
    decided_by: Rule | None = None
    for r, col in deciding:
        cond = row[col]
        if blocked or cond is False:
            continue
        if cond is None:
            # an unknown condition: name it, with what would settle it
            if undetermined:
                fields = note_missing(col, opt.id, filled=True)
                if brief:
                    continue
                got = _reason(r, vals, "possible", r.id, kb, kb.roots[col])
                reasons.append(got | {
                    "verdict_if_true": r.verdict, "unknown": fields,
                    "text": _if_known(r.verdict, fields, got["text"])})
            continue
        # cond is True: this rule decides
        blocked = True
        decided_by = r
        if not undetermined and r.verdict == base:
            reasons.insert(0, _reason(r, vals, "decisive", r.id, kb, kb.roots[col]))
            if not intent_set:
                intent, intent_set = r.intent or opt.intent, True
        elif undetermined and not brief:
            reasons.append(_reason(r, vals, "possible", r.id, kb, kb.roots[col]) | {"verdict_if_true": r.verdict})
    if not blocked:
        kind = "decisive" if base == opt.otherwise.verdict and not undetermined else "possible"
        if kind == "decisive" or not brief:
            # the facts the indications read (what rules the option out is reported by its gates)
            reasons.append(_reason(opt.otherwise, vals, kind, None, kb, _indication_inputs(opt, kb), brief) | (
                {"verdict_if_true": opt.otherwise.verdict} if kind == "possible" else {}))
    if not undetermined and not intent_set:
        # decided by rules whose conditions were unknown but agreed, or by `otherwise`
        first = next((r for r, col in deciding if r.verdict == base and row[col] is not False), None)
        intent = (first.intent if first and first.intent else opt.intent)
    # a cap that holds and lowered the verdict explains it first
    for r, col in caps:
        cond = row[col]
        if cond is True and (base not in VERDICTS or VERDICTS.index(r.cap) > VERDICTS.index(base)):
            if brief and undetermined:
                continue
            reasons.insert(0, _reason(r, vals, "possible" if undetermined else "decisive", r.id, kb, brief=brief))
        elif cond is None and undetermined:
            fields = note_missing(col, opt.id, filled=True)
            if not brief:
                reasons.append(_reason(r, vals, "possible", r.id, kb) | {
                    "verdict_if_true": f"at most {r.cap}", "unknown": fields})
    # notes give context to an option still on the table, not to one already set aside
    if not brief and verdict in ("preferred", "reasonable", "undetermined"):
        for r, col in notes:
            if row[col] is True:
                reasons.append(_reason(r, vals, "note", r.id, kb))
    if undetermined and verdict != "undetermined" and not brief:
        reasons.insert(0, _one_side(opt, verdict, possible, reasons))
    # every gate that holds appears on the option, binding or not: one that neither decided nor limited the
    # verdict (another gate or rule did) is shown as a note, so that no caveat vanishes
    if not brief:
        shown = {x.get("rule") for x in reasons}
        for r, col in _gate_columns(opt):
            if row[col] is True and r.id not in shown:
                reasons.append(_reason(r, vals, "note", r.id, kb))
    out = {"id": opt.id, "label": opt.label, "modality": opt.modality, "verdict": verdict,
           "intent": intent, "reasons": reasons}
    if undetermined:
        out["possible_verdicts"] = possible
    if verdict in ("preferred", "reasonable") or (undetermined and ("preferred" in possible or "reasonable" in possible)):
        conditions = _conditions(opt, ev, kb, checks, roots, decided_by)
        if conditions:
            out["conditions"] = conditions
    return out


def _one_side(opt: OptionDef, verdict: str, possible: list[str], reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """The lead reason of a verdict that is the milder of one side (contract v3): what it
    is either way, and what would make it the other verdict of that side."""
    other = next(v for v in possible if v != verdict)
    why = next((r for r in reasons if r.get("verdict_if_true") in (other, f"at most {verdict}")), None)
    settle = list(dict.fromkeys(f for r in reasons for f in r.get("unknown") or ()))
    text = (f"{verdict.replace('_', ' ').capitalize()} whichever way the missing facts turn out; it would be "
            f"{other.replace('_', ' ')} depending on {_what(settle) if settle else 'the conditions below'}.")
    return {"text": text, "sources": list(why["sources"]) if why else [], "level": why.get("level") if why else None,
            "kind": "decisive", "rule": why.get("rule") if why else None, "facts": [],
            "verdict_if_true": other}


_RULE_COLUMNS: dict[int, tuple[OptionDef, tuple[list[tuple[Rule, str]], ...]]] = {}


def _rule_columns(opt: OptionDef) -> tuple[list[tuple[Rule, str]], ...]:
    """(rule, its column) for the deciding rules, the caps and the notes, once per option."""
    got = _RULE_COLUMNS.get(id(opt))
    if got is None or got[0] is not opt:
        got = (opt, tuple([(r, rule_column(opt.id, r.id)) for r in rules] for rules in (opt.deciding, opt.caps, opt.notes)))
        _RULE_COLUMNS[id(opt)] = got
    return got[1]


_GATE_COLUMNS: dict[int, tuple[OptionDef, list[tuple[Rule, str]]]] = {}


def _gate_columns(opt: OptionDef) -> list[tuple[Rule, str]]:
    """(rule, its column) of the option's gates, in the order they are read (most severe first)."""
    got = _GATE_COLUMNS.get(id(opt))
    if got is None or got[0] is not opt:
        got = (opt, [(r, rule_column(opt.id, r.id)) for r in opt.rules if isinstance(r, Rule) and r.gate])
        _GATE_COLUMNS[id(opt)] = got
    return got[1]


_WHAT: dict[tuple[str, ...], str] = {}


def _what(fields: list[str]) -> str:
    """The missing facts an unknown condition reads, in words ("Ki-67, mitotic count and ...")."""
    key = tuple(fields)
    got = _WHAT.get(key)
    if got is None:
        names = list(dict.fromkeys(fact_label(f) for f in fields))
        names = [n[:1].lower() + n[1:] if _lowerable(n) else n for n in names]
        got = (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)) or "a derived value"
        if len(_WHAT) < 65536:
            _WHAT[key] = got
    return got


def _lowerable(label: str) -> bool:
    """Whether a label starts with a common word (not Ki-67, ECOG, Child-Pugh, SSTR, ...)."""
    first = label.split(" ")[0]
    return not any(ch.isdigit() for ch in first) and not any(ch.isupper() for ch in first[1:])


def _if_known(verdict: str, fields: list[str], text: str) -> str:
    """A rule whose condition is still unknown, in one sentence: the verdict it would give and
    the missing facts it waits for, then its own reason."""
    what = _what(fields)
    return f"{verdict.replace('_', ' ').capitalize()} if {what} {'show' if ' and ' in what else 'shows'} this: {text}"


_INDICATION_INPUTS: dict[tuple[str, str, str], frozenset[str]] = {}


def _indication_inputs(opt: OptionDef, kb: KnowledgeBase) -> frozenset[str]:
    """The columns an option's indications (its rules that are not gates) read."""
    key = (kb.sha256, kb.guideline, opt.id)
    got = _INDICATION_INPUTS.get(key)
    if got is None:
        got = _INDICATION_INPUTS[key] = frozenset(
            c for r in opt.deciding if not r.gate for c in kb.roots[rule_column(opt.id, r.id)])
    return got


def _conditions(opt: OptionDef, ev: Evaluation, kb: KnowledgeBase, checks: dict[str, Any], roots: UnknownRoots,
                decided_by: Rule | None) -> list[dict[str, str]]:
    """The unknown pre-treatment checks this option's verdict assumed to pass.

    A rule with a ``requirement`` read before the deciding one (or the deciding rule
    itself, or a cap) whose condition is unknown on the facts as entered relied on each
    unknown check it reads; its requirement says what passing means."""
    out: dict[str, dict[str, str]] = {}
    for r, col in _requirement_rules(opt, decided_by):
        if ev.facts[col] is not None:
            continue
        for c in roots.columns(col):  # in name order: a set's order varies between processes
            field = COLUMN_FIELDS[c]
            if field in checks and field not in out:
                text = r.requirement_for(field)
                if text:
                    out[field] = {"field": field, "requirement": text}
    return list(out.values())


def _requirement_rules(opt: OptionDef, decided_by: Rule | None) -> list[tuple[Rule, str]]:
    """(rule, column) of the rules read up to the deciding one, and of the caps, that say
    what passing means (only those speak for a check: gates do), the strictest first: gates in
    gates.yaml's order (which lists, among the gates reading one check, the strictest first),
    then the option's own rules, so that a condition names the strictest requirement."""
    deciding, caps, _ = _rule_columns(opt)
    upto = next((i + 1 for i, (r, _) in enumerate(deciding) if r is decided_by), len(deciding))
    got = [(r, col) for r, col in deciding[:upto] + caps if r.requirement]
    return sorted(got, key=lambda rc: (rc[0].rank is None, rc[0].rank or 0))


def _disagreements(row: dict[str, Any], kb: KnowledgeBase, vals: dict[str, str]) -> list[dict[str, Any]]:
    """Where another source's threshold would classify this patient differently."""
    labels = {d.name: d.label for d in kb.derived}
    for cs in kb.criteria:
        for it in cs.items:
            labels[item_column(cs.id, it.id)] = f"{cs.label}: {it.text}"
    out: dict[str, dict[str, Any]] = {}
    for col, guideline, vn in kb.variant_nodes:
        theirs, ours = row[vn.column], row[col]
        if theirs == ours or theirs is None or ours is None:
            continue
        entry = out.setdefault(col, {"topic": col, "label": labels.get(col, col), "governing": kb.guideline,
                                     "values": [{"source": kb.guideline, "value": _show(col, ours)}]})
        entry["values"].append({"source": guideline, "value": _show(col, theirs)})
    return list(out.values())


def _show(col: str, value: Any) -> Any:
    if col in GRADES:
        return grade_label(value)
    if isinstance(value, bool) and "__" in col:
        return _status(value)
    return value
