"""A registry table read for outcome analysis: the patients as ``nelm screen`` reads them,
the outcome columns, and every derived variable computed by the engine.

The patient columns go through the screening pipeline unchanged (:mod:`nelm.screen.layout`
reads and lays out, :mod:`nelm.screen.validate` names invalid rows, :func:`nelm.screen.columns.assess_batch`
and :func:`nelm.engine.evaluate_frame` compute classification, criteria, verdicts, the plan's
leading option and the derived variables). The outcome columns are read here:

``treatment``           an option id (``liver_resection``) or its label (``liver resection``);
                        empty = unknown
``time_months``         follow-up from the treatment, months; or ``start_date`` and ``last_date``
                        (ISO dates), converted at 365.25/12 days a month
``event``               1 died, 0 alive at last follow-up
``progression_months``, ``progression_event``  the same for progression-free survival

A value that cannot be read (a word where a number belongs, a negative time, an event
other than 0/1, an unknown treatment name, a last date before the start) makes the row
invalid: it is named with its row number and field, and left out, as in ``nelm screen``.
A missing outcome is not invalid; the row is excluded from the analyses that need it,
and the exclusion is counted and its rows listed (the STROBE flow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..knowledge import KnowledgeBase
from ..knowledge.ruleset import OPTION_LABELS
from ..screen import layout, validate
from ..screen.columns import assess_batch, output_columns
from ..screen.flat import engine_frame
from ..screen.layout import RowProblem

OUTCOME_COLUMNS = ("treatment", "time_months", "start_date", "last_date", "event",
                   "progression_months", "progression_event")
MONTH_DAYS = 365.25 / 12


@dataclass
class Registry:
    """The rows that passed validation, with their outcome and derived columns."""

    frame: pl.DataFrame                 # __row, id, layout fields, outcome columns, derived columns
    rows_read: int
    problems: list[RowProblem] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)      # names of the engine's columns offered
    outcome_columns: set[str] = field(default_factory=set)  # outcome columns the input has

    @property
    def invalid_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})


def treatment_ids() -> dict[str, str]:
    """Accepted spellings of a treatment (option id or label, case-insensitive) -> option id."""
    out: dict[str, str] = {}
    for oid, label in OPTION_LABELS.items():
        out[oid.lower()] = oid
        out[label.lower()] = oid
    return out


def _outcomes(raw: pl.DataFrame) -> tuple[pl.DataFrame, list[RowProblem]]:
    """The outcome columns typed, with the problems of each row named."""
    problems: list[RowProblem] = []
    rows = raw["__row"]
    out: dict[str, pl.Series] = {"__row": rows}

    def text(name: str) -> pl.Series | None:
        if name not in raw.columns:
            return None
        s = raw[name]
        if s.dtype == pl.String:
            s = s.str.strip_chars().replace("", None)
        return s

    def number(name: str, whole01: bool = False) -> pl.Series:
        s = text(name)
        if s is None:
            return pl.Series(name, [None] * raw.height, dtype=pl.Float64)
        typed = s.cast(pl.Float64, strict=False)
        if s.dtype == pl.Boolean:
            typed = s.cast(pl.Float64)
        bad_type = s.is_not_null() & typed.is_null()
        if whole01:
            bad_value = typed.is_not_null() & ~typed.is_in([0.0, 1.0])
            what = "must be 1 (event) or 0 (no event)"
        else:
            bad_value = typed.is_not_null() & (typed.is_nan() | (typed < 0) | typed.is_infinite())
            what = "must be a number of months, 0 or more"
        for r, v in zip(rows.filter(bad_type | bad_value).to_list(), s.filter(bad_type | bad_value).to_list()):
            problems.append(RowProblem(int(r), name, f"{what} (got {v!r})"))
        return _null_where(typed, bad_type | bad_value).alias(name)

    time = number("time_months")
    start, last = text("start_date"), text("last_date")
    if start is not None or last is not None:
        start_d = _dates(start, rows, "start_date", problems, raw.height)
        last_d = _dates(last, rows, "last_date", problems, raw.height)
        days = (last_d - start_d).dt.total_days()
        backwards = days.is_not_null() & (days < 0)
        for r in rows.filter(backwards).to_list():
            problems.append(RowProblem(int(r), "last_date", "is before start_date"))
        from_dates = _null_where(days.cast(pl.Float64) / MONTH_DAYS, backwards)
        both = time.is_not_null() & from_dates.is_not_null() & ((time - from_dates).abs() > 0.5)
        for r in rows.filter(both).to_list():
            problems.append(RowProblem(int(r), "time_months", "disagrees with start_date and last_date"))
        time = pl.select(pl.coalesce(time, from_dates).alias("time_months")).to_series()
    out["time_months"] = time
    out["event"] = number("event", whole01=True)
    out["progression_months"] = number("progression_months")
    out["progression_event"] = number("progression_event", whole01=True)
    prog_after = (out["progression_months"] > out["time_months"] + 0.5).fill_null(False)
    for r in rows.filter(prog_after).to_list():
        problems.append(RowProblem(int(r), "progression_months", "is later than the last follow-up (time_months)"))

    t = text("treatment")
    if t is None:
        out["treatment"] = pl.Series("treatment", [None] * raw.height, dtype=pl.String)
    else:
        names = treatment_ids()
        t = t.cast(pl.String)
        ids = t.str.to_lowercase().replace_strict(names, default=None, return_dtype=pl.String)
        bad = t.is_not_null() & ids.is_null()
        if bad.any():
            allowed = ", ".join(OPTION_LABELS)
            for r, v in zip(rows.filter(bad).to_list(), t.filter(bad).to_list()):
                problems.append(RowProblem(int(r), "treatment", f"not a treatment option (got {v!r}); "
                                                                f"an option id or its label: {allowed}"))
        out["treatment"] = ids.alias("treatment")
    return pl.DataFrame(out), problems


def _null_where(s: pl.Series, mask: pl.Series) -> pl.Series:
    return pl.select(pl.when(mask.fill_null(False)).then(None).otherwise(s).alias(s.name)).to_series()


def _dates(s: pl.Series | None, rows: pl.Series, name: str, problems: list[RowProblem], n: int) -> pl.Series:
    if s is None:
        return pl.Series(name, [None] * n, dtype=pl.Date)
    if s.dtype in (pl.Date, pl.Datetime):
        return s.cast(pl.Date)
    typed = s.cast(pl.String).str.to_date("%Y-%m-%d", strict=False)
    bad = s.is_not_null() & typed.is_null()
    for r, v in zip(rows.filter(bad).to_list(), s.filter(bad).to_list()):
        problems.append(RowProblem(int(r), name, f"not a date YYYY-MM-DD (got {v!r})"))
    return typed


def derived_names(kb: KnowledgeBase) -> list[str]:
    """The engine's derived variables offered as covariates (``derived.<name>``)."""
    return [d.name for d in kb.derived]


def read_registry(source: str | Path, kb: KnowledgeBase, *, extra: list[pl.Expr] | None = None,
                  plan: bool = False, batch_size: int = 200_000) -> Registry:
    """Read, validate and evaluate a registry table (see the module docstring). ``extra``
    expressions (the outcome cohorts' matching conditions) are evaluated on each patient's
    facts with the derived variables and kept as columns. The plan's columns (``plan.*``,
    the costliest to compute) only with ``plan``."""
    columns = [c for c in output_columns(kb) if plan or not c.startswith("plan.")]
    fmt = layout.input_format(source)
    frames: list[pl.DataFrame] = []
    problems: list[RowProblem] = []
    rows_read = 0
    names = derived_names(kb)
    seen: set[str] = set()
    for raw in layout.batches(source, batch_size):
        rows_read += raw.height
        present = [c for c in OUTCOME_COLUMNS if c in raw.columns]
        seen.update(present)
        outcome, outcome_problems = _outcomes(raw.select("__row", *present))
        patient_raw = raw.drop(present)
        frame, batch_problems = layout.to_layout(patient_raw, fmt)
        frame = layout.complete(frame)
        batch_problems += validate.problems(frame)
        batch_problems += outcome_problems
        problems += batch_problems
        bad = list({p.row for p in batch_problems})
        ok = layout.typed(frame.filter(~pl.col("__row").is_in(bad)) if bad else frame)
        if not ok.height:
            continue
        screened, _ = assess_batch(ok, kb, columns)
        facts = evaluate_derived(ok, kb, extra)
        derived = facts.select([pl.col(n).alias(f"derived.{n}") for n in names]
                               + [pl.col("burden_band").alias("classification.burden_band")]
                               + ([pl.col(e.meta.output_name()) for e in extra] if extra else []))
        outcome = outcome.filter(~pl.col("__row").is_in(bad)) if bad else outcome
        frames.append(ok.hstack(screened).hstack(derived).join(outcome, on="__row", how="left"))
    problems.sort(key=lambda p: (p.row, p.field))
    if frames:
        frame = pl.concat(frames, how="vertical_relaxed")
    else:
        frame = pl.DataFrame(schema={"__row": pl.UInt32, **layout.SCHEMA})
    return Registry(frame=frame, rows_read=rows_read, problems=problems,
                    derived=[f"derived.{n}" for n in names], outcome_columns=seen)


def evaluate_derived(typed_layout: pl.DataFrame, kb: KnowledgeBase, extra: list[pl.Expr] | None) -> pl.DataFrame:
    """The derived variables on the facts as entered (the engine's own columns)."""
    from ..engine import evaluate_frame

    return evaluate_frame(engine_frame(typed_layout), kb, variants=False, verdicts=False, extra=extra)


def variable_label(name: str) -> str:
    """A covariate's name as people read it (labels.yaml), its dotted path otherwise."""
    from .. import labels

    if name == "treatment":
        return "Treatment"
    if name.startswith("classification."):
        return labels.classification_label(name.removeprefix("classification."))
    if name.startswith("derived."):
        key = name.removeprefix("derived.")
        label = labels.table()["classification"].get(key)
        return label or key.replace("_", " ").capitalize()
    if name.startswith("options.") and name.endswith(".verdict"):
        oid = name.removeprefix("options.").removesuffix(".verdict")
        return f"Verdict: {OPTION_LABELS.get(oid, oid)}"
    if name.startswith("criteria."):
        return "Criteria: " + name.removeprefix("criteria.").replace("_", " ")
    if name == "plan.leading":
        return "Plan: leading option"
    return labels.field_label(name)


def value_label(name: str, value: Any) -> str:
    from .. import labels

    if value is None:
        return "unknown"
    if name in ("treatment", "plan.leading"):
        return OPTION_LABELS.get(value, str(value))
    if name.startswith("classification."):
        return labels.classification_value(name.removeprefix("classification."), value)
    if name.startswith("options."):
        return labels.verdict_label(value)
    if name.startswith("criteria."):
        return labels.status_label(value)
    if isinstance(value, bool) or name in labels.table()["values"]:
        return labels.value_label(name, value)
    return labels.plain(value)
