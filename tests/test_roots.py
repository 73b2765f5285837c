"""The bit-mask walk of one assessment (UnknownRoots) names the same missing inputs as
input_roots, for every computed column of random patients with and without unknowns."""
from __future__ import annotations

import random

import pytest

from nelm.engine import evaluate
from nelm.knowledge import UnknownRoots, input_roots, load
from nelm.patient import COLUMN_FIELDS, Patient, validate_patient
from nelm.testing import random_patient_dict


def _patients():
    rng = random.Random(11)
    yield Patient()
    for unknown in (0.0, 0.3, 0.7):
        for _ in range(15):
            yield validate_patient(random_patient_dict(rng, unknown))


@pytest.mark.parametrize("guideline", [None, "esmo2020"])
def test_unknown_roots_agree_with_input_roots(guideline):
    kb = load(guideline)
    computed = [c for c in kb.roots if c not in COLUMN_FIELDS]
    for patient in _patients():
        ev = evaluate(patient, kb)
        for row in (ev.facts, ev.verdicts):
            nulls = {c for c, v in row.items() if v is None}
            fast, memo = UnknownRoots(kb, nulls), {}
            # the row read as the walk goes (the plan's what-ifs), fresh so it walks from each column
            by_row = UnknownRoots.of_row(kb, row)
            assert by_row._null_inputs == fast._null_inputs
            for col in computed:
                expected = input_roots(kb, col, nulls, memo)
                assert fast.columns(col) == sorted(expected), col
                assert fast.fields(col) == sorted({COLUMN_FIELDS[c] for c in expected}), col
                assert UnknownRoots.of_row(kb, row).mask(col) == fast.mask(col) == by_row.mask(col), col


def test_a_known_derived_value_does_not_pass_on_its_missing_inputs():
    kb = load()
    col = next(c for c, roots in kb.roots.items()
               if c not in COLUMN_FIELDS and any(r not in COLUMN_FIELDS for r in roots))
    assert UnknownRoots(kb, set()).columns(col) == []
