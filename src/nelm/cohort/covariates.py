"""Covariates by name, and the design matrix the models read.

A covariate is any column of the read registry: a dotted field of the patient document
(``liver.burden_percent``), a screening output (``classification.who_grade``,
``criteria.milan_transplant``, ``options.tace.verdict``, ``plan.leading``), a derived variable
of the knowledge base (``derived.extrahepatic_disease``, ``classification.burden_band``) or
``treatment``. ``name:level`` is the indicator of one value (``primary.site:unknown_primary``).

Coding: a number enters as it is (per unit); a yes/no as 1/0 (no is the reference); text as
one indicator per value, the first value in sorted order the reference (said in each
term's label). An unknown value is never coded as anything: the row leaves that model
(complete-case analysis), and the count is reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .registry import value_label, variable_label

_NOT_COVARIATES = {"__row", "id", "time_months", "event", "progression_months", "progression_event",
                   "start_date", "last_date", "prior_therapies", "extrahepatic.sites"}


@dataclass(frozen=True)
class Covariate:
    name: str
    level: str | None = None          # indicator of this value

    @property
    def spec(self) -> str:
        return self.name if self.level is None else f"{self.name}:{self.level}"

    @property
    def label(self) -> str:
        base = variable_label(self.name)
        return base if self.level is None else f"{base}: {value_label(self.name, _typed(self.level))}"


def _typed(level: str) -> Any:
    return {"true": True, "false": False}.get(level.lower(), level)


def parse(text: str | None) -> list[Covariate]:
    if not text:
        return []
    out = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            name, _, level = part.partition(":")
            out.append(Covariate(name.strip(), level.strip() or None))
    return out


def allowed(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in _NOT_COVARIATES and not c.startswith(("__", "outcome__"))]


def check(covariates: list[Covariate], frame: pl.DataFrame, what: str = "--covariates") -> None:
    """Refuse a name that is no column, or a level a text column never takes."""
    names = set(allowed(frame))
    for c in covariates:
        if c.name not in names:
            raise ValueError(f"{what}: {c.name!r} is not a column of the registry or a derived variable; "
                             f"allowed: {', '.join(sorted(names))}")
        if c.level is not None and frame.schema[c.name] == pl.String:
            seen = set(frame[c.name].drop_nulls().unique().to_list())
            if c.level not in seen:
                raise ValueError(f"{what}: {c.name} never takes the value {c.level!r}; it takes: {', '.join(sorted(seen))}")


def column(frame: pl.DataFrame, c: Covariate) -> pl.Series:
    """The covariate's values (an indicator for ``name:level``), null where unknown."""
    s = frame[c.name]
    if c.level is None:
        return s
    if s.dtype == pl.Boolean:
        return (s == (c.level.lower() == "true")).alias(c.spec)
    if s.dtype.is_numeric():
        return (s == float(c.level)).alias(c.spec)
    return (s.cast(pl.String) == c.level).alias(c.spec)


@dataclass
class Term:
    key: str           # column of the design matrix
    label: str         # as people read it, with the reference
    covariate: str


def design(frame: pl.DataFrame, covariates: list[Covariate]) -> tuple[np.ndarray, list[Term], np.ndarray]:
    """The design matrix (float), its terms and the mask of complete rows."""
    cols: list[np.ndarray] = []
    terms: list[Term] = []
    complete = np.ones(frame.height, dtype=bool)
    for c in covariates:
        s = column(frame, c)
        complete &= s.is_not_null().to_numpy()
        if s.dtype == pl.Boolean:
            cols.append(s.fill_null(False).cast(pl.Float64).to_numpy())
            terms.append(Term(c.spec, f"{c.label}: yes vs no" if c.level is None else f"{c.label} vs other", c.spec))
        elif s.dtype.is_numeric() and c.level is None:
            cols.append(s.cast(pl.Float64).fill_null(0.0).to_numpy())
            terms.append(Term(c.spec, f"{c.label} (per unit)", c.spec))
        else:
            values = sorted(v for v in s.drop_nulls().unique().to_list())
            ref = values[0] if values else None
            for v in values[1:]:
                cols.append((s.cast(pl.String) == str(v)).fill_null(False).cast(pl.Float64).to_numpy())
                terms.append(Term(f"{c.spec}={v}", f"{c.label}: {value_label(c.name, v)} vs {value_label(c.name, ref)}",
                                  c.spec))
    matrix = np.column_stack(cols) if cols else np.empty((frame.height, 0))
    return matrix, terms, complete
