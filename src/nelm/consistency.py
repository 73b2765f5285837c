"""The patient document's consistency checks, from one file (``knowledge/consistency.yaml``).

Each check is an SQL condition over the engine's flat columns (:data:`nelm.patient.COLUMN_FIELDS`)
that is TRUE when the record contradicts itself. Two executors run the same strings:

- one document: :func:`refusals` on the flat row (:func:`nelm.patient.flatten`), the
  conditions translated to Python by :mod:`nelm.rowcode` (Kleene logic, as the engine's
  one-patient path); the patient model's validator calls it;
- a table: :func:`frame_refusals` on the engine's input frame, each condition as
  ``pl.sql_expr`` (nelm screen's batch validator).

Both build the same problems: one (dotted path, message) per field the check reads that the
record gives, the message naming the fields in a clinician's words (labels.yaml) with their values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from . import labels
from .yamlio import read_yaml

FILE = Path(__file__).parent / "knowledge" / "consistency.yaml"
_TOKEN = re.compile(r"\{(label|value):([\w.]+)\}")


@dataclass(frozen=True)
class Check:
    id: str
    fields: tuple[str, ...]
    condition: str
    message: str
    columns: tuple[str, ...]                 # the flat columns the condition reads
    example: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    note: str = ""

    def field_columns(self, dotted: str) -> tuple[str, ...]:
        """The columns of this check that carry ``dotted`` (a list field's parts share its columns)."""
        from .patient import COLUMN_FIELDS

        root = dotted.split(".")[0]
        return tuple(c for c in self.columns if COLUMN_FIELDS[c] == dotted
                     or (root == "prior_therapies" and COLUMN_FIELDS[c].startswith("prior_therapies")))


class Inconsistent(ValueError):
    """Raised by the patient model's validator: ``problems`` are (dotted path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in names.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, names): _substitute(v, names) for k, v in value.items()}
    return value


def _columns(sql: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import exp

    return tuple(dict.fromkeys(c.name for c in sqlglot.parse_one(sql).find_all(exp.Column)))


@lru_cache(maxsize=1)
def checks() -> tuple[Check, ...]:
    """Every check of the file, ``for_each`` records expanded; refuses a malformed file."""
    from .patient import COLUMN_FIELDS

    records = (read_yaml(FILE) or {}).get("checks") or []
    out: list[Check] = []
    allowed = {"id", "fields", "condition", "message", "example", "for_each", "note"}
    for rec in records:
        extra = set(rec) - allowed
        if extra or not {"id", "fields", "condition", "message", "example"} <= set(rec):
            raise ValueError(f"{FILE.name}: check {rec.get('id')!r}: needs id, fields, condition, message and "
                             f"example (optional for_each, note); unknown keys: {sorted(extra)}")
        loops = rec.get("for_each") or {}
        if len(loops) > 1:
            raise ValueError(f"{FILE.name}: {rec['id']}: for_each takes one name")
        expansions = [{}] if not loops else [{name: str(v)} for name, values in loops.items() for v in values]
        for names in expansions:
            r = _substitute({k: v for k, v in rec.items() if k != "for_each"}, names)
            cols = _columns(r["condition"])
            unknown = [c for c in cols if c not in COLUMN_FIELDS]
            if unknown:
                raise ValueError(f"{FILE.name}: {r['id']}: {', '.join(unknown)} is not a column of the flat view")
            fields = tuple(r["fields"])
            for c in cols:
                f = COLUMN_FIELDS[c]
                if not any(f == g or (f.startswith("prior_therapies") and g.startswith("prior_therapies")) for g in fields):
                    raise ValueError(f"{FILE.name}: {r['id']}: the condition reads {c} ({f}), not among its fields")
            for g in fields:
                if g not in labels.fields():
                    raise ValueError(f"{FILE.name}: {r['id']}: {g!r} is not a contract field")
            message = " ".join(str(r["message"]).split())
            for kind, tok in _TOKEN.findall(message):
                if tok not in COLUMN_FIELDS and (kind == "value" or tok not in labels.fields()):
                    raise ValueError(f"{FILE.name}: {r['id']}: message names {tok!r}, not a column"
                                     + ("" if kind == "value" else " or contract field"))
            out.append(Check(id=r["id"], fields=fields, condition=" ".join(str(r["condition"]).split()),
                             message=message, columns=cols, example=r["example"], note=str(r.get("note") or "")))
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{FILE.name}: repeated check ids")
    return tuple(out)


# --------------------------------------------------------------------------- words

def _label(token: str) -> str:
    from .patient import COLUMN_FIELDS
    from .summary import fact_label

    if token in COLUMN_FIELDS:
        return fact_label(COLUMN_FIELDS[token], token)
    return labels.field_label(token)


def _value(column: str, value: Any) -> str:
    from .patient import COLUMN_FIELDS
    from .summary import show, value_label, with_unit

    dotted = COLUMN_FIELDS[column]
    if isinstance(value, str):
        return value_label(dotted, value)
    text = show(value)
    return with_unit(dotted, text) if not isinstance(value, bool) else text


def message(check: Check, row: dict[str, Any]) -> str:
    """The check's message for one flat row (labels and values in a clinician's words)."""
    return _TOKEN.sub(lambda m: _label(m.group(2)) if m.group(1) == "label" else _value(m.group(2), row.get(m.group(2))),
                      check.message)


def problems_of(check: Check, row: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, message) for each field of the check the record gives (each field when none is given)."""
    named = [f for f in check.fields
             if not check.field_columns(f) or any(row.get(c) is not None for c in check.field_columns(f))]
    text = message(check, row)
    return [(f, text) for f in (named or check.fields)]


# --------------------------------------------------------------------------- one document

@lru_cache(maxsize=1)
def _row_function() -> Callable[[dict[str, Any]], dict[str, Any]]:
    from . import rowcode

    steps = [(f"__check{i}", rowcode.translate(c.condition), "bool") for i, c in enumerate(checks())]
    return rowcode.compile_functions(rowcode.function_source("consistency", steps), "<nelm consistency>")["consistency"]


def failing(row: dict[str, Any]) -> list[Check]:
    """The checks a flat row fails (TRUE; an unknown result is no refusal)."""
    out = _row_function()(dict(row))
    return [c for i, c in enumerate(checks()) if out[f"__check{i}"] is True]


@lru_cache(maxsize=1)
def _any_function() -> Callable[[dict[str, Any]], bool]:
    # the same translated conditions as _row_function, as one test that stops at the first
    # check that holds: no copy of the row, no column written, no message worded
    from . import rowcode

    lines = ["def contradicts(r):"]
    lines += [f"    if ({rowcode.translate(c.condition)}) is True:\n        return True" for c in checks()]
    lines.append("    return False")
    return rowcode.compile_functions("\n".join(lines) + "\n", "<nelm consistency any>")["contradicts"]


@lru_cache(maxsize=1)
def _each_function() -> tuple[Callable[[dict[str, Any]], bool], ...]:
    """Each check as its own test (True when the row fails it), in the file's order."""
    from . import rowcode

    source = "".join(f"def check{i}(r):\n    return ({rowcode.translate(c.condition)}) is True\n"
                     for i, c in enumerate(checks()))
    found = rowcode.compile_functions(source, "<nelm consistency each>")
    return tuple(found[f"check{i}"] for i in range(len(checks())))


@lru_cache(maxsize=4096)
def _reading(columns: frozenset[str]) -> tuple[Callable[[dict[str, Any]], bool], ...]:
    each = _each_function()
    return tuple(each[i] for i, c in enumerate(checks()) if columns.intersection(c.columns))


def contradicts(row: dict[str, Any], changed: frozenset[str] | None = None) -> bool:
    """Does the flat row fail any check (``bool(refusals(row))``, without the messages)? The
    plan asks this of every what-if patient it builds (nelm.plan._Planner.completed).

    ``changed``: the row is a row that fails no check with these columns changed, so only
    the checks that read one of them are run."""
    if changed is None:
        return _any_function()(row)
    return any(check(row) for check in _reading(changed))


def refusals(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (dotted path, message) the flat row is refused with, in the file's order."""
    return [p for c in failing(row) for p in problems_of(c, row)]


# --------------------------------------------------------------------------- a table

def failing_exprs() -> tuple[Any, ...]:
    """Each check as a Polars expression over an engine frame (named by id; NULL read as
    false), parsed once per set of checks: what :func:`frame_failing` selects, and the
    screen's settling reads."""
    return _exprs_of(checks())


@lru_cache(maxsize=1)
def _exprs_of(records: tuple[Check, ...]) -> tuple[Any, ...]:
    import polars as pl

    return tuple(pl.sql_expr(c.condition).fill_null(False).alias(c.id) for c in records)


def frame_failing(frame: Any) -> Any:
    """A Boolean column per check (named by id; NULL read as false) for an engine frame."""
    return frame.select(failing_exprs())


def frame_refusals(frame: Any, rows: list[int]) -> list[tuple[int, str, str]]:
    """(row, dotted path, message) for each row of an engine frame failing a check; ``rows``
    are the frame's row numbers, in order."""
    import polars as pl

    flags = frame_failing(frame)
    hit = flags.select(pl.any_horizontal(pl.all()).alias("any"))["any"]
    if not hit.any():
        return []
    idx = [i for i, h in enumerate(hit.to_list()) if h]
    sub_flags = flags[idx]
    sub = frame[idx]
    out: list[tuple[int, str, str]] = []
    for n, (flag_row, row) in enumerate(zip(sub_flags.iter_rows(named=True), sub.iter_rows(named=True))):
        for c in checks():
            if flag_row[c.id]:
                out += [(rows[idx[n]], f, m) for f, m in problems_of(c, row)]
    return out
