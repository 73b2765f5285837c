"""The patient model's refusals for a whole table, row by row, without one pydantic
object per row.

Every refusal of :class:`nelm.patient.Patient` is either about one field (type, range,
allowed values, the input gate's limits, a prior-therapy record's own validator) or a
consistency check between fields. The two are done here as the model does them:

- **fields**: each field is validated once per distinct value, ``prior_therapies`` once
  per distinct list, through the model itself (:func:`nelm.patient.validate_patient` with
  ``consistency=False`` on a partial document), so messages and dotted paths are exactly
  the model's own; column-wise tests let the common case through at once (see below);
- **consistency**: every row, its refused fields made unknown (as the model checks the rest
  of a document whose fields it refused), is flattened column-wise (:func:`nelm.screen.flat.engine_frame`)
  and every check of ``knowledge/consistency.yaml`` is applied as a Polars expression
  (:func:`nelm.consistency.frame_refusals`) — the same SQL conditions and messages the
  model's validator runs for one document, so a new check needs no change here.

A model validator that reads its own model's fields (``self.x``) makes those fields a
group validated together (found in its source, so a new one is picked up); today only
:class:`~nelm.patient.PriorTherapy` has one, inside its list. tests/screen/test_screen_cli.py
checks the result against :func:`validate_patient` document by document, invalid documents
included, and tests/test_consistency.py that every check of the file is applied by both.
"""
from __future__ import annotations

import inspect
import json
import re
from functools import lru_cache
from typing import Any

import polars as pl
from pydantic import BaseModel

from ..patient import InvalidPatient, Patient, _flat_args, validate_patient
from .layout import PRIOR, PRIOR_STRUCT, RowProblem, row_document

PRIOR_STRUCT_LIST = pl.List(PRIOR_STRUCT)


@lru_cache(maxsize=1)
def field_groups() -> tuple[tuple[str, ...], ...]:
    """Groups of dotted fields validated together (see the module docstring)."""
    groups: list[tuple[str, ...]] = []
    _model_groups(Patient, "", groups)
    return tuple(groups)


def _model_groups(model: type[BaseModel], prefix: str, groups: list[tuple[str, ...]]) -> None:
    coupled: set[str] = set()
    for dec in model.__pydantic_decorators__.model_validators.values():
        source = inspect.getsource(dec.func)
        coupled |= set(re.findall(r"self\.(\w+)", source)) & set(model.model_fields)
    singles = []
    for name, info in model.model_fields.items():
        path = prefix + name
        sub = next((a for a in _flat_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if path == PRIOR:
            singles.append(path)    # a list of records, validated as a whole
        elif sub is not None:
            if name in coupled:     # a validator reading a whole section: validate it with its parent's group
                raise NotImplementedError(f"{model.__name__} validator reads section {name!r}")
            _model_groups(sub, path + ".", groups)
        elif name not in coupled:
            singles.append(path)
    if coupled:
        groups.append(tuple(prefix + n for n in model.model_fields if n in coupled))
    groups += [(s,) for s in singles]


def problems(frame: pl.DataFrame) -> list[RowProblem]:
    """Every refusal of every row of a layout frame (with ``__row``)."""
    return checked(frame)[0]


def checked(frame: pl.DataFrame) -> tuple[list[RowProblem], pl.DataFrame | None]:
    """:func:`problems`, and, when no row is refused, the engine frame the consistency checks
    read (``engine_frame(typed(frame))``): what ``nelm screen`` assesses next, not flattened
    a second time."""
    out: list[RowProblem] = []
    for group in field_groups():
        present = [c for c in group if c in frame.columns]
        if not present:
            continue
        out += _group_problems(frame, present)
    found, engine = _consistency(_refused_unknown(frame, out))
    return out + found, (engine if not out and not found else None)


def _refused_unknown(frame: pl.DataFrame, found: list[RowProblem]) -> pl.DataFrame:
    """The frame with each refused field unknown in its row (a list as a whole), as the model
    checks the rest of a document for consistency (:func:`nelm.patient.validate_patient`)."""
    from ..patient import refused_key

    rows: dict[str, set[int]] = {}
    for p in found:
        key = refused_key(p.field)
        for c in frame.columns:
            if c != "__row" and (c == key or c.startswith(key + ".") or not key):
                rows.setdefault(c, set()).add(p.row)
    if not rows:
        return frame
    plain = {c: r for c, r in rows.items() if frame.schema[c] != pl.Object}
    frame = frame.with_columns(pl.when(pl.col("__row").is_in(sorted(r))).then(None).otherwise(pl.col(c)).alias(c)
                               for c, r in plain.items())
    return _null_objects(frame, {c: r for c, r in rows.items() if c not in plain})


def _null_objects(frame: pl.DataFrame, rows: dict[str, set[int]]) -> pl.DataFrame:
    """Object columns (records of unknown shape) nulled in the given rows, in Python."""
    if not rows:
        return frame
    numbers = frame["__row"].to_list()
    return frame.with_columns(pl.Series(c, [None if n in r else v for n, v in zip(numbers, frame[c].to_list())],
                                        dtype=pl.Object) for c, r in rows.items())


def consistency_problems(frame: pl.DataFrame) -> list[RowProblem]:
    """The consistency checks of knowledge/consistency.yaml on layout rows whose fields are
    each valid (refused ones made unknown): (row, each field the check reads that the row
    gives, the check's message)."""
    return _consistency(frame)[0]


def _consistency(frame: pl.DataFrame) -> tuple[list[RowProblem], pl.DataFrame | None]:
    """:func:`consistency_problems` and the engine frame they were read on."""
    from .. import consistency
    from .flat import engine_frame
    from .layout import complete, typed

    if frame.height == 0:
        return [], None
    lay = typed(complete(frame))
    engine = engine_frame(lay)
    found = consistency.frame_refusals(engine, lay["__row"].to_list())
    return [RowProblem(r, f, m) for r, f, m in found], engine


def _group_problems(frame: pl.DataFrame, cols: list[str]) -> list[RowProblem]:
    sub = frame.select("__row", *cols).filter(pl.any_horizontal(pl.col(c).is_not_null() for c in cols))
    accepted = _certainly_accepted(sub, tuple(cols))
    if accepted is not None:
        sub = sub.filter(~accepted)
    if sub.height == 0:
        return []
    keys = list(cols)
    if any(sub.schema[c] == pl.Object for c in cols):
        # records of unknown shape (CSV JSON): grouped by their JSON text
        keyed = {c: [json.dumps(v, sort_keys=True, default=str) if v is not None else None for v in sub[c].to_list()]
                 for c in cols if sub.schema[c] == pl.Object}
        originals = {c: dict(zip(keyed[c], sub[c].to_list())) for c in keyed}
        sub = sub.with_columns(pl.Series(c, v, dtype=pl.String) for c, v in keyed.items())
    else:
        originals = {}
        if len(cols) == 1:
            # one field: check its distinct values quickly, group only the rows of refused ones
            ok = _assign(cols[0])
            refused = [v for v in sub[cols[0]].unique().to_list() if not ok(v)]
            if not refused:
                return []
            sub = sub.filter(pl.col(cols[0]).is_in(pl.Series(refused, dtype=sub.schema[cols[0]]).implode()))
    grouped = sub.group_by(keys, maintain_order=True).agg(pl.col("__row"))
    fast = _assign(cols[0]) if len(cols) == 1 else None
    out: list[RowProblem] = []
    for values in grouped.iter_rows(named=True):
        rows = values.pop("__row")
        for c, m in originals.items():
            values[c] = m.get(values[c])
        if fast is not None and fast(values[cols[0]]):
            continue
        found = _refusals(values)
        out += [RowProblem(r, f, m) for f, m in found for r in rows]
    return out


# --------------------------------------------------------------------- the common case at once
#
# Where values are continuous (Ki-67, the removable share, months, free-text ids) nearly every row is a distinct
# combination, and validating each through the model took seconds per 100,000 rows. For
# the groups below, a column-wise test picks the rows the model certainly accepts; every
# other row still goes through the model (and gets the model's own message). Each test
# only ever lets through what the model accepts — it may send an acceptable row the slow
# way, never the reverse; tests/screen/test_screen_cli.py compares the result with
# validate_patient on random documents, contradictions included, and
# tests/screen/test_validate_fast.py probes each test at the model's own boundaries.

def _finite_in(col: str, low: float, high: float) -> pl.Expr:
    c = pl.col(col)
    return c.is_null() | (c.is_finite() & (c >= low) & (c <= high))


def _one_of(col: str, values: tuple[str, ...]) -> pl.Expr:
    return pl.col(col).is_null() | pl.col(col).is_in(list(values))


def _prior_accepted() -> pl.Expr:
    # a list of PriorTherapy records: each record's fields, and _months_only_with_progression
    from ..patient import OPTION_IDS

    e = pl.element().struct
    months, outcome = e.field("months_to_progression"), e.field("outcome")
    ok = (e.field("therapy").is_in(list(OPTION_IDS)).fill_null(False)
          & (outcome.is_null() | outcome.is_in(["response", "stable", "progression", "intolerance"]))
          & (months.is_null() | (months.is_finite() & (months >= 0) & (months <= 600)
                                 & (outcome.is_null() | (outcome == "progression")))))
    return pl.col(PRIOR).list.eval(ok).list.all()


def _text_accepted(col: str) -> pl.Expr:
    # a free-text field: the input gate's limits (no NUL; UTF-8 holds no lone surrogate)
    from ..inputgate import MAX_STRING_CHARS

    return (pl.col(col).str.len_chars() <= MAX_STRING_CHARS) & ~pl.col(col).str.contains("\x00", literal=True)


_FAST: dict[tuple[str, ...], tuple[dict[str, Any], Any]] = {
    (PRIOR,): ({PRIOR: PRIOR_STRUCT_LIST}, _prior_accepted),
    ("id",): ({"id": pl.String}, lambda: _text_accepted("id")),
}


@lru_cache(maxsize=None)
def _numeric(path: str) -> tuple[dict[str, Any], Any] | None:
    """A number field's test from the model's own constraints (ge/le, whole numbers for
    integer fields): a finite value inside them; None for other fields."""
    from ..patient import SCALAR_FIELDS, _bounds

    if SCALAR_FIELDS.get(path) != "float":
        return None
    model: Any = Patient
    info = None
    for part in path.split("."):
        info = model.model_fields[part]
        model = next((a for a in _flat_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    kinds = {a for a in _flat_args(info.annotation) if a in (int, float)}
    lo, hi = _bounds(tuple(path.split(".")))
    if lo is None or hi is None or not kinds:
        return None
    whole = kinds == {int}

    def fn() -> pl.Expr:
        c = pl.col(path)
        ok = _finite_in(path, float(lo), float(hi))
        return ok & (c.is_null() | (c == c.floor())) if whole else ok

    return {path: pl.Float64}, fn


def _certainly_accepted(sub: pl.DataFrame, cols: tuple[str, ...]) -> pl.Series | None:
    """Rows of ``sub`` the model certainly accepts, by a column-wise test; None where no
    test applies (another group, a column missing or of another dtype)."""
    fast = _FAST.get(cols) or next(((types, fn) for group, (types, fn) in _FAST.items()
                                    if set(cols) <= set(group) and len(cols) > 1), None)
    if fast is None and len(cols) == 1:
        fast = _numeric(cols[0])
    if fast is None:
        return None
    types, fn = fast
    if any(sub.schema.get(c) != t for c, t in types.items() if c in cols) or set(types) - set(cols) - set(sub.columns):
        return None
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in types.items() if c not in sub.columns]
    return sub.with_columns(missing).select(fn().alias("ok"))["ok"].fill_null(False)


def _assign(path: str):
    """A quick check of one field's value that passes exactly what the model accepts:
    the input gate's limits on the value, then the model's own validation of that field
    (``validate_assignment``: type, range, allowed values, field validators, and the
    model's validators on an otherwise empty model). A value it refuses goes through
    :func:`validate_patient` for the model's own message."""
    from .. import inputgate

    model: type[BaseModel] = Patient
    *parents, name = path.split(".")
    for part in parents:
        info = model.model_fields[part]
        model = next(a for a in _flat_args(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel))
    empty = model()
    validator = model.__pydantic_validator__

    def ok(value: Any) -> bool:
        try:
            inputgate.check_document({name: value})
            validator.validate_assignment(empty.model_copy(), name, value, context=_FIELDS_ONLY)
        except Exception:  # noqa: BLE001 - any refusal: the slow path names it
            return False
        return True

    return ok


_FIELDS_ONLY = {"consistency": False}   # the model's validation of fields alone (consistency is column-wise)


def _refusals(values: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        validate_patient(row_document(values), consistency=False)
    except InvalidPatient as exc:
        return exc.problems
    except Exception as exc:    # the input gate's refusals
        return [(next(iter(values)), str(exc))]
    return []
