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
from .layout import PRIOR, RowProblem, row_document


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
