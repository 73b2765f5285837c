"""The column-wise tests of nelm.screen.validate let through only what the patient model
accepts: probed at the model's own boundaries, every combination of a grid of values
(valid, boundary and invalid), each row it accepts checked with validate_patient."""
from __future__ import annotations

import itertools
import math

import polars as pl
import pytest

from nelm.patient import InvalidPatient, validate_patient
from nelm.screen.layout import PRIOR, PRIOR_STRUCT
from nelm.screen.validate import _LIVER, _PATHOLOGY, _certainly_accepted

NUMBERS = [None, -1.0, 0.0, 1.9, 2.0, 2.9, 3.0, 20.0, 20.5, 100.0, 100.5, 1000.0, 1001.0, math.nan, math.inf]


def _accepted_by_model(doc: dict) -> bool:
    try:
        validate_patient(doc)
    except InvalidPatient:
        return False
    return True


# each section's grouped fields: a grid of valid, boundary and invalid values per field
SECTIONS = {
    _PATHOLOGY: ({"pathology.differentiation": pl.String, "pathology.ki67_percent": pl.Float64,
                  "pathology.mitoses_per_10hpf": pl.Float64, "pathology.reported_grade": pl.String},
                 [[None, "well", "poor", "moderate"], NUMBERS, NUMBERS, [None, "G1", "G2", "G3", "G4"]]),
    _LIVER: ({"liver.lesion_count": pl.Float64, "liver.pattern": pl.String, "liver.resectable_fraction_percent": pl.Float64,
              "liver.liver_function": pl.String, "liver.resectable": pl.Boolean, "liver.child_pugh": pl.String},
             [[None, 0.0, 1.0, 2.0, 2.5, 10_000.0, 10_001.0, -1.0],
              [None, "single", "dominant_with_satellites", "disseminated", "x"],
              [None, 0.0, 99.5, 100.0, 100.5, math.nan], [None, "normal", "impaired"], [None, True, False],
              [None, "A", "B", "C", "D"]]),
}


@pytest.mark.parametrize("group", list(SECTIONS), ids=lambda g: g[0].split(".")[0])
def test_section_rows_it_accepts_are_valid_and_it_accepts_every_valid_one(group):
    schema, grid = SECTIONS[group]
    rows = [dict(zip(group, combo)) for combo in itertools.product(*grid)]
    ok = _certainly_accepted(pl.DataFrame(rows, schema=schema), group)
    assert ok is not None
    let_through = valid = 0
    for row, fast in zip(rows, ok.to_list()):
        doc = {group[0].split(".")[0]: {k.split(".")[1]: v for k, v in row.items() if v is not None}}
        model = _accepted_by_model(doc)
        assert not (fast and not model), row  # never lets an invalid row through
        let_through += fast
        valid += model
    assert let_through == valid  # and here it decides every row the model accepts


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
