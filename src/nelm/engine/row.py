"""Evaluate the knowledge base for one patient: both passes, then each option's verdict.

The knowledge base's conditions run as generated Python (:mod:`nelm.rowcode`), compiled
once per knowledge base and kept in the on-disk cache (:func:`row_program`); a condition
the translator does not handle keeps the one-row Polars frame of :mod:`.frame`. Both give
the same row (tests/test_rowcode.py).

Reads :mod:`.frame` and :mod:`.verdicts`; nothing here writes text.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import rowcode
from ..knowledge import KnowledgeBase, UnknownRoots
from ..patient import COLUMN_TYPES, Patient, flatten
from .frame import _KEYED, _lazy, patients_frame, pl
from .verdicts import _MASK_VERDICT, _cap, resolution_source, resolve_all, resolve_verdict


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
    _filled_roots: UnknownRoots | None = field(default=None, repr=False, compare=False)

    def filled_roots(self, kb: KnowledgeBase) -> UnknownRoots:
        """The unknown inputs each column of ``verdicts`` hangs on (bit masks), worked out once
        per evaluation: the assessment, the planner's view and its blocking facts all ask.
        Each column is looked up as the walk reaches it: finding every unknown column of a
        row of some 500 first was a walk over all of them, for a few columns asked."""
        if self._filled_roots is None:
            self._filled_roots = UnknownRoots.of_row(kb, self.verdicts)
        return self._filled_roots


def evaluate(patient: Patient | dict[str, Any], kb: KnowledgeBase, extra: list[Any] | None = None, *,
             extra_sql: Mapping[str, str] | None = None, executor: str | None = None,
             verdicts_only: bool = False, inputs: dict[str, Any] | None = None) -> Evaluation:
    """Evaluate one patient: both passes, then each option's verdict.

    ``executor="python"`` (the default) runs the knowledge base's conditions as the
    Python code of :mod:`nelm.rowcode`, with ``extra_sql`` (column -> SQL condition, cast
    to a Boolean) evaluated on the facts as entered; Polars expressions in ``extra``, or
    ``executor="polars"``, run the one-row frame through Polars instead. Both give the
    same row (tests/test_rowcode.py); Polars' fixed cost per query is most of an
    assessment's time when the frame has one row.

    ``inputs``: the row's input columns as :meth:`RowProgram.inputs` gives them, already
    worked out (a what-if patient of the plan, from its patient's: :meth:`RowProgram.patched_inputs`).
    """
    flat = flatten(patient) if isinstance(patient, Patient) else patient
    executor = executor or default_executor()
    program = row_program(kb, extra_sql) if executor == "python" and not extra else None
    if program is None:
        if extra_sql:
            extra = [*(extra or []), *(pl.sql_expr(sql).cast(pl.Boolean).alias(col) for col, sql in extra_sql.items())]
        return _evaluate_polars(flat, kb, extra)
    inputs = program.inputs(flat) if inputs is None else inputs
    # verdicts_only (the plan's what-if evaluations): the facts pass is skipped, its row empty
    facts = {} if verdicts_only else program.facts(dict(inputs))
    verdicts = program.verdicts(inputs)
    if program.resolve is not None:
        program.resolve(verdicts)     # resolve_all, written out for this knowledge base
    else:
        resolve_all(kb.options, verdicts)
    return Evaluation(facts, verdicts, program.verdict_types)


def default_executor() -> str:
    """The executor :func:`evaluate` uses when not told: ``NELM_EXECUTOR`` (polars: the old path,
    for comparison), else the generated Python. (The plan reads it once per plan: the
    environment lookup was a noticeable part of its tens of what-if evaluations.)"""
    return os.environ.get("NELM_EXECUTOR", "python")


def with_facts(ev: Evaluation, flat: dict[str, Any], kb: KnowledgeBase) -> Evaluation:
    """A verdicts-only evaluation of the flat row ``flat`` (``evaluate(..., verdicts_only=True)``)
    with its facts pass added: what ``evaluate(flat, kb)`` gives, without running the verdict
    pass again (the plan words its working plan's steps from the evaluation it settled on)."""
    program = row_program(kb)
    if program is None or ev.facts or default_executor() != "python":
        return evaluate(flat, kb)
    return Evaluation(program.facts(dict(program.inputs(flat))), ev.verdicts, ev.schema)


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
    resolve: Callable[[dict[str, Any]], dict[str, Any]] | None = None   # verdicts.resolve_all, as generated Python

    def patched_inputs(self, base: dict[str, Any], flat: dict[str, Any], changed: frozenset[str]) -> dict[str, Any]:
        """:meth:`inputs` of ``flat``, a row that differs from the row whose inputs are ``base``
        in the ``changed`` columns only (a copy: the verdict pass writes into its inputs)."""
        out = dict(base)
        cast_of = self._cast_of
        for c in changed:
            got = cast_of.get(c)
            if got is not None:
                cast, kind = got
                v = flat.get(c)
                out[c] = v if v is None or type(v) is kind else cast(v)
        return out

    @property
    def _cast_of(self) -> dict[str, tuple[Callable[[Any], Any], type]]:
        got = self.__dict__.get("_casts_by_column")
        if got is None:
            got = self.__dict__["_casts_by_column"] = {c: (cast, kind) for c, cast, kind in self._casts}
        return got

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
_CASTS = {"float": rowcode.HELPERS["_f"], "bool": rowcode.HELPERS["_b"], "str": rowcode.HELPERS["_s"]}
_CAST_TYPES = {"float": float, "bool": bool, "str": str}


def _code_key() -> str:
    """The translator's own source is part of the cache key: a changed translator recompiles.
    So is every module of this package (the code it compiles is built from frame, row and
    guidelines), in name order: a changed engine recompiles too."""
    h = hashlib.sha256()
    for mod in (rowcode.__file__, *sorted(Path(__file__).parent.glob("*.py"))):
        h.update(Path(mod).read_bytes())
    return h.hexdigest()[:16]


def row_program(kb: KnowledgeBase, extra_sql: Mapping[str, str] | None = None) -> RowProgram | None:
    """The knowledge base's passes as Python for one patient, or None when a condition
    uses SQL the translator does not handle (then the engine keeps Polars)."""
    extra = tuple((extra_sql or {}).items())  # in order: the columns follow it
    key = (id(kb), extra)
    if key not in _PROGRAMS:
        _KEYED[id(kb)] = kb
        from ..cache import cached

        digest = hashlib.sha256(repr(extra).encode()).hexdigest()[:16]
        built = cached("rowcode", f"{kb.sha256}|{kb.guideline}|{digest}|{_code_key()}",
                       lambda: _generate(kb, dict(extra)))
        if built is None:
            _PROGRAMS[key] = None
        else:
            import marshal

            code, verdict_types = built
            namespace: dict[str, Any] = dict(rowcode.HELPERS) | {"_cap": _cap, "_MASK_VERDICT": _MASK_VERDICT}
            exec(marshal.loads(code), namespace)  # noqa: S102  # nosec B102, B302 - our code object, compiled by _generate from the knowledge base, read from our own cache
            casts = tuple((c, _CASTS[t], _CAST_TYPES[t]) for c, t in COLUMN_TYPES.items())
            _PROGRAMS[key] = RowProgram(namespace["facts"], namespace["verdicts"], Dtypes(verdict_types), casts,
                                        namespace.get("resolve"))
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
    # both passes start from the input columns (RowProgram.inputs: each value of its column's type)
    source = (rowcode.function_source("facts", facts_steps, COLUMN_TYPES)
              + rowcode.function_source("verdicts", verdict_steps, COLUMN_TYPES)
              + resolution_source(kb.options))
    code = compile(source, f"<nelm rowcode {kb.guideline}>", "exec")
    return marshal.dumps(code), filled_types


def _node_python(node: Any) -> str:
    if node.kind == "all":  # a criteria set: Kleene AND of its items
        return "_and(" + ", ".join(f"r[{c!r}]" for c in node.sql.split(" AND ")) + ")"
    return rowcode.translate(node.sql)
