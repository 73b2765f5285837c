"""The patient model's refusals for a whole table, row by row, without one pydantic
object per row.

Every refusal of :class:`nelm.patient.Patient` is either about one field (type, range,
allowed values, the input gate's limits) or a cross-field consistency check in a model
validator (``Pathology._reported_grade_agrees``, ``Liver._resectable_agrees``,
``Extrahepatic._consistent``, ``Patient._consistent``, ...). A model validator reads only
its own model's fields (``self.x``), so the table is validated by *groups of fields*:

- the fields a model's validators read form one group, validated once per distinct
  combination of their values;
- every other field is validated once per distinct value;
- ``prior_therapies`` (a list of records with their own validator) once per distinct list.

Each group's values go through :func:`nelm.patient.validate_patient` as a partial
document, so messages and dotted paths are exactly the model's own. Which fields a
validator reads is found in its source (``self.<field>``), so a new check in
patient.py is picked up without a change here; tests/test_screen_validate.py checks
the result against :func:`validate_patient` document by document, invalid documents
included.
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
    out: list[RowProblem] = []
    for group in field_groups():
        present = [c for c in group if c in frame.columns]
        if not present:
            continue
        out += _group_problems(frame, present)
    return out


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


def _band(col: str, low: float) -> pl.Expr:
    """patient.ki67_grade / mitotic_grade: 1 below ``low``, 2 up to 20, 3 above."""
    c = pl.col(col)
    return pl.when(c < low).then(1).when(c <= 20).then(2).when(c > 20).then(3)


def _pathology_accepted() -> pl.Expr:
    # Pathology's fields, then its validators _reported_grade_agrees and _nec_is_high_grade
    d, r = pl.col("pathology.differentiation"), pl.col("pathology.reported_grade")
    fields = (_one_of("pathology.differentiation", ("well", "poor"))
              & _finite_in("pathology.ki67_percent", 0, 100) & _finite_in("pathology.mitoses_per_10hpf", 0, 1000)
              & _one_of("pathology.reported_grade", ("G1", "G2", "G3")))
    kg, mg = _band("pathology.ki67_percent", 3), _band("pathology.mitoses_per_10hpf", 2)
    known = pl.max_horizontal(kg, mg)  # null when neither index is known
    both = kg.is_not_null() & mg.is_not_null()
    stated = r.replace_strict({"G1": 1, "G2": 2, "G3": 3}, default=None, return_dtype=pl.Int32)
    grade_agrees = r.is_null() | (
        (known.is_null() | ((stated >= known) & (~both | (stated == known))))
        & ((d != "poor").fill_null(True) | (stated == 3)))
    nec_high = (d != "poor").fill_null(True) | known.is_null() | (known == 3)
    return fields & grade_agrees.fill_null(False) & nec_high.fill_null(False)


def _liver_accepted() -> pl.Expr:
    # Liver's grouped fields, then its validators _resectable_agrees and _pattern_matches_count
    n, pattern, f = pl.col("liver.lesion_count"), pl.col("liver.pattern"), pl.col("liver.resectable_fraction_percent")
    resectable, function, child_pugh = pl.col("liver.resectable"), pl.col("liver.liver_function"), pl.col("liver.child_pugh")
    fields = (_finite_in("liver.lesion_count", 0, 10_000) & (n.is_null() | (n == n.floor()))
              & _one_of("liver.pattern", ("single", "dominant_with_satellites", "disseminated"))
              & _finite_in("liver.resectable_fraction_percent", 0, 100)
              & _one_of("liver.liver_function", ("normal", "impaired")) & _one_of("liver.child_pugh", ("A", "B", "C")))
    all_removable = f >= 100
    errors = [
        all_removable != resectable,
        (pattern == "disseminated") & (resectable.fill_null(False) | all_removable.fill_null(False)),
        (function == "normal") & child_pugh.is_in(["B", "C"]),
        (pattern == "single") & (n > 1),
        pattern.is_in(["dominant_with_satellites", "disseminated"]) & (n <= 1),
    ]
    return fields & ~pl.any_horizontal([e.fill_null(False) for e in errors])


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


_PATHOLOGY = ("pathology.differentiation", "pathology.ki67_percent", "pathology.mitoses_per_10hpf",
              "pathology.reported_grade")
_LIVER = ("liver.lesion_count", "liver.pattern", "liver.resectable_fraction_percent", "liver.liver_function",
          "liver.resectable", "liver.child_pugh")
_FAST: dict[tuple[str, ...], tuple[dict[str, Any], Any]] = {
    _PATHOLOGY: ({"pathology.differentiation": pl.String, "pathology.ki67_percent": pl.Float64,
                  "pathology.mitoses_per_10hpf": pl.Float64, "pathology.reported_grade": pl.String}, _pathology_accepted),
    _LIVER: ({"liver.lesion_count": pl.Float64, "liver.pattern": pl.String, "liver.resectable_fraction_percent": pl.Float64,
              "liver.liver_function": pl.String, "liver.resectable": pl.Boolean, "liver.child_pugh": pl.String},
             _liver_accepted),
    (PRIOR,): ({PRIOR: PRIOR_STRUCT_LIST}, _prior_accepted),
    ("id",): ({"id": pl.String}, lambda: _text_accepted("id")),
}


def _certainly_accepted(sub: pl.DataFrame, cols: tuple[str, ...]) -> pl.Series | None:
    """Rows of ``sub`` the model certainly accepts, by a column-wise test; None where no
    test applies (another group, a column missing or of another dtype)."""
    fast = _FAST.get(cols) or next(((types, fn) for group, (types, fn) in _FAST.items()
                                    if set(cols) <= set(group) and len(cols) > 1), None)
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
            validator.validate_assignment(empty.model_copy(), name, value)
        except Exception:  # noqa: BLE001 - any refusal: the slow path names it
            return False
        return True

    return ok


def _refusals(values: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        validate_patient(row_document(values))
    except InvalidPatient as exc:
        return exc.problems
    except Exception as exc:    # the input gate's refusals
        return [(next(iter(values)), str(exc))]
    return []
