"""Compare verdicts across guideline profiles: what another guideline would decide for a patient.

Where sources disagree for a patient, only the columns another guideline computes
differently, and what depends on them, are recomputed on the governing evaluation
(:func:`verdicts_under`), as generated Python when :mod:`.row` has it, else in Polars.

Reads :mod:`.frame`, :mod:`.verdicts` and :mod:`.row`.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import rowcode
from ..knowledge import KnowledgeBase, load
from .frame import _KEYED, pl
from .row import Dtypes, Evaluation, _code_key, _node_python, _type_name
from .verdicts import resolve_verdict


_DOWNSTREAM_CODE: dict[tuple[int, int], Callable[[dict[str, Any]], dict[str, Any]] | None] = {}
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
        from ..cache import cached

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
