"""Facts that follow from facts (contract v3), from one file (``knowledge/follows.yaml``).

Each record fills one flat column that the document leaves unknown with a value that other
recorded facts settle (no symptoms at all: no symptomatic extrahepatic site). Every record's
``when`` is an SQL condition over the flat columns *as recorded*, so the records can be
applied together, in any order between columns. Three executors run the same strings, each
stating only how it writes "while unknown, the first record that holds":

- one document: :func:`fill` on the flat row, the conditions translated to Python by
  :mod:`nelm.rowcode` (Kleene logic, as the engine's one-patient path);
- a table: :func:`nelm.screen.flat.engine_frame`, each condition as ``pl.sql_expr``;
- the SQL view: :func:`nelm.screen.sql.engine_inputs`, each condition parsed by sqlglot over
  the document's columns.

:func:`filled_from` says which record settled each filled-in column of a document, so that a
reason quoting the value can say what it follows from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .yamlio import read_yaml

FILE = Path(__file__).parent / "knowledge" / "follows.yaml"


@dataclass(frozen=True)
class Follow:
    id: str
    column: str                  # the flat column filled in
    value: Any                   # the value it takes
    when: str                    # SQL over the recorded flat columns
    reason: str
    reads: tuple[str, ...]       # the flat columns ``when`` reads
    sources: tuple[str, ...] = ()
    example: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _columns(sql: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import exp

    return tuple(dict.fromkeys(c.name for c in sqlglot.parse_one(sql).find_all(exp.Column)))


@lru_cache(maxsize=1)
def records() -> tuple[Follow, ...]:
    """Every record of the file, in its order; refuses a malformed file."""
    from .patient import COLUMN_FIELDS, COLUMN_TYPES

    allowed = {"id", "column", "value", "when", "reason", "sources", "example"}
    out: list[Follow] = []
    for rec in (read_yaml(FILE) or {}).get("follows") or []:
        extra = set(rec) - allowed
        if extra or not {"id", "column", "value", "when", "reason", "example"} <= set(rec):
            raise ValueError(f"{FILE.name}: record {rec.get('id')!r}: needs id, column, value, when, reason and example "
                             f"(optional sources); unknown keys: {sorted(extra)}")
        when = " ".join(str(rec["when"]).split())
        reads = _columns(when)
        for c in (rec["column"], *reads):
            if c not in COLUMN_FIELDS:
                raise ValueError(f"{FILE.name}: {rec['id']}: {c} is not a column of the flat view")
        kind = COLUMN_TYPES[rec["column"]]
        value = rec["value"]
        if not isinstance(value, {"bool": bool, "str": str, "float": (int, float), "int": int}[kind]) \
                or (kind != "bool" and isinstance(value, bool)):
            raise ValueError(f"{FILE.name}: {rec['id']}: {value!r} is not a {kind} value of {rec['column']}")
        if rec["column"] in reads:
            raise ValueError(f"{FILE.name}: {rec['id']}: a record cannot read the column it fills")
        out.append(Follow(id=rec["id"], column=rec["column"], value=value, when=when,
                          reason=" ".join(str(rec["reason"]).split()), reads=reads,
                          sources=tuple(rec.get("sources") or ()), example=dict(rec["example"])))
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{FILE.name}: repeated record ids")
    return tuple(out)


@lru_cache(maxsize=1)
def by_column() -> dict[str, tuple[Follow, ...]]:
    """The records of each filled-in column, the first that holds winning."""
    out: dict[str, list[Follow]] = {}
    for r in records():
        out.setdefault(r.column, []).append(r)
    return {c: tuple(rs) for c, rs in out.items()}


@lru_cache(maxsize=1)
def columns() -> frozenset[str]:
    """Every column a record fills or reads: a change to one of them may change a filled-in value."""
    return frozenset(c for r in records() for c in (r.column, *r.reads))


# --------------------------------------------------------------------------- one document

@lru_cache(maxsize=1)
def _conditions() -> Callable[[dict[str, Any]], tuple[bool, ...]]:
    """Every record's condition on a flat row, as one function (TRUE only: unknown is no inference)."""
    from . import rowcode

    terms = "".join(f"({rowcode.translate(r.when)}) is True, " for r in records())
    return rowcode.compile_functions(f"def conditions(r):\n    return ({terms})\n", "<nelm follows>")["conditions"]


def filled_from(recorded: dict[str, Any]) -> dict[str, Follow]:
    """For a flat row of recorded values: the record that fills each column it fills (the first
    that holds, where the column is unknown; every condition reads the row as recorded)."""
    out: dict[str, Follow] = {}
    for rec, holds in zip(records(), _conditions()(recorded)):
        if holds and rec.column not in out and recorded[rec.column] is None:
            out[rec.column] = rec
    return out


def fill(row: dict[str, Any]) -> dict[str, Any]:
    """Fill in, in place, the columns of a flat row of recorded values that other facts settle."""
    for col, rec in filled_from(row).items():
        row[col] = rec.value
    return row
