"""The column-wise tests of nelm.screen.validate let through only what the patient model
accepts: probed at the model's own boundaries, every combination of a grid of values
(valid, boundary and invalid), each row it accepts checked with validate_patient; and the
consistency checks (knowledge/consistency.yaml), applied column-wise, refuse exactly what
the model refuses on a grid around each check's own thresholds."""
from __future__ import annotations

import itertools
import math

import polars as pl
import pytest

from nelm import consistency
from nelm.patient import SCALAR_FIELDS, InvalidPatient, _bounds, flatten, set_field, validate_patient
from nelm.screen.layout import PRIOR, PRIOR_STRUCT, SCHEMA, document_row
from nelm.screen.validate import _certainly_accepted, problems
from nelm.testing import patient_dict

NUMBERS = [None, -1.0, 0.0, 1.9, 2.0, 2.9, 3.0, 20.0, 20.5, 100.0, 100.5, 1000.0, 1001.0, math.nan, math.inf]


def _accepted_by_model(doc: dict) -> bool:
    try:
        validate_patient(doc)
    except InvalidPatient:
        return False
    return True


# every number field with a column-wise test: a grid of valid, boundary and invalid values
NUMBER_FIELDS = [f for f, kind in SCALAR_FIELDS.items() if kind == "float"]


def _doc(path: str, value) -> dict:
    doc: dict = {}
    if value is not None:
        set_field(doc, path, value)
    return doc


@pytest.mark.parametrize("path", NUMBER_FIELDS)
def test_number_field_rows_it_accepts_are_valid_and_it_accepts_every_valid_one(path):
    lo, hi = _bounds(tuple(path.split(".")))
    grid = sorted({*NUMBERS[1:-2], lo - 1, lo - 0.005, lo, lo + 0.5, (lo + hi) / 2, hi - 0.5, hi, hi + 0.005, hi + 1,
                   math.floor((lo + hi) / 2) + 0.5}) + [None, math.nan, math.inf, -math.inf]
    ok = _certainly_accepted(pl.DataFrame({path: grid}, schema={path: pl.Float64}), (path,))
    assert ok is not None, path   # the test applies: every number field has bounds in the model
    for value, fast in zip(grid, ok.to_list()):
        model = _accepted_by_model(_doc(path, value))
        assert fast == model, (path, value, fast, model)  # exactly the model's boundary


@pytest.mark.parametrize("therapy", ["ssa", "prrt", "not_an_option", None])
def test_prior_therapy_lists_it_accepts_are_valid(therapy):
    records = [{"therapy": therapy, "outcome": o, "months_to_progression": m, "ongoing": g}
               for o, m, g in itertools.product([None, "response", "progression", "cured"],
                                                [None, -1.0, 0.0, 7.5, 600.0, 601.0, math.nan], [None, True])]
    lists = [[r] for r in records] + [records[:3], []]
    frame = pl.DataFrame({PRIOR: lists}, schema={PRIOR: pl.List(PRIOR_STRUCT)})
    ok = _certainly_accepted(frame, (PRIOR,))
    assert ok is not None
    for lst, fast in zip(lists, ok.to_list()):
        doc = {"prior_therapies": [{k: v for k, v in r.items() if v is not None} for r in lst]}
        model = _accepted_by_model(doc)
        assert not (fast and not model), lst
        if model and lst and all(isinstance(r["months_to_progression"], float) or r["months_to_progression"] is None
                                 for r in lst):
            assert fast, lst  # the ordinary case takes the fast way


def test_free_text_id():
    ids = ["case 1", "x" * 10_000, "x" * 10_001, "a\x00b", ""]
    ok = _certainly_accepted(pl.DataFrame({"id": ids}), ("id",))
    assert ok.to_list() == [_accepted_by_model({"id": i}) for i in ids] == [True, True, False, False, True]


def test_another_dtype_takes_the_model_s_way():
    frame = pl.DataFrame({"id": [1, 2]})
    assert _certainly_accepted(frame, ("id",)) is None


# ------------------------------------------------------------------ consistency checks at their thresholds

def _literals(sql: str) -> list[float]:
    import sqlglot
    from sqlglot import exp

    return [float(x.this) for x in sqlglot.parse_one(sql).find_all(exp.Literal) if not x.is_string]


def _grid(check: consistency.Check) -> tuple[list[str], list[list]]:
    """For each scalar field the check reads: its threshold literals and their neighbours (and
    12× them: ages are compared in months), the example's and BASE's values, unknown; every
    value of an enumeration or a Boolean."""
    from nelm.patient import COLUMN_FIELDS, column_values
    from nelm.testing import BASE

    def get(doc, path):
        for part in path.split("."):
            doc = doc.get(part) if isinstance(doc, dict) else None
        return doc

    fields, values = [], []
    for col in check.columns:
        path = COLUMN_FIELDS[col]
        if path not in SCALAR_FIELDS or path in fields:
            continue
        kind = SCALAR_FIELDS[path]
        if kind == "str":
            vals = [None, *column_values()[col]]
        elif kind == "bool":
            vals = [None, True, False]
        else:
            lo, hi = _bounds(tuple(path.split(".")))
            lits = _literals(check.condition)
            cand = {get(BASE, path), check.example.get(path)} | {x + d for x in lits for d in (-0.5, 0, 0.5)}
            cand |= {x / 12 for x in cand if x is not None} if path == "age_years" else set()
            whole = path in ("liver.lesion_count", "ecog", "sstr_uptake_krenning")
            vals = [None, *sorted(v for v in cand if v is not None and lo <= v <= hi and (not whole or v == int(v)))]
        fields.append(path)
        values.append(vals)
    return fields, values


@pytest.mark.parametrize("check", consistency.checks(), ids=lambda c: c.id)
def test_consistency_check_refuses_column_wise_exactly_what_the_model_refuses(check):
    fields, values = _grid(check)
    docs = []
    for combo in itertools.product(*values):
        doc = patient_dict(**{**check.example, **{f: (... if v is None else v) for f, v in zip(fields, combo)}})
        docs.append(doc)
    assert len(docs) <= 20_000, len(docs)
    lay = pl.DataFrame([document_row(d) for d in docs], schema=SCHEMA, strict=False).with_row_index("__row", offset=1)
    found: dict[int, set] = {}
    for p in problems(lay):
        found.setdefault(p.row, set()).add((p.field, p.message))
    hits = 0
    for n, doc in enumerate(docs, 1):
        try:
            validate_patient(doc)
            expected: set = set()
        except InvalidPatient as exc:
            expected = set(exc.problems)
        assert found.get(n, set()) == expected, (check.id, doc)
        hits += check in consistency.failing(flatten(validate_patient(doc, consistency=False)))
    # the grid straddles the check: some documents fail it, some do not
    assert 0 < hits < len(docs) or not fields, (check.id, hits, len(docs))


def test_the_engine_frame_validation_hands_on_is_the_one_screening_builds():
    """nelm screen assesses the engine frame the consistency checks read when no row is refused
    (validate.checked): it is engine_frame of the typed rows, column for column; with a refused
    row none is handed on."""
    from nelm.screen import validate
    from nelm.screen.flat import engine_frame
    from nelm.screen.layout import complete, typed
    from nelm.screen.synth import synthesize

    frame = complete(synthesize(3000, seed=9, unknown_fraction=0.2).with_row_index("__row", offset=1))
    found, engine = validate.checked(frame)
    assert found == [] and engine is not None
    assert engine.equals(engine_frame(typed(frame)), null_equal=True)
    broken = frame.with_columns(pl.when(pl.col("__row") == 5).then(pl.lit(150.0)).otherwise(pl.col("pathology.ki67_percent"))
                                .alias("pathology.ki67_percent"))
    found, engine = validate.checked(broken)
    assert found and engine is None
