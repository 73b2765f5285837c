"""evaluate_frame's cheaper plan (nelm.engine.frame_fast) against the knowledge base's plain
expressions: every column, dtype and value, NULL for NULL, over random patients with unknowns."""
from __future__ import annotations

import random

import polars as pl
import pytest

from nelm.engine import evaluate_both_passes, evaluate_frame, patients_frame
from nelm.engine import frame as engine_frame_module
from nelm.knowledge import load
from nelm.patient import flatten, validate_patient
from nelm.testing import random_patient_dict


def _plain(fn, *args, **kwargs):
    engine_frame_module.FAST = False
    try:
        return fn(*args, **kwargs)
    finally:
        engine_frame_module.FAST = True


def _same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    assert a.schema == b.schema
    for c in a.columns:
        assert a[c].equals(b[c]), c   # null-aware


@pytest.fixture(scope="module")
def patients() -> pl.DataFrame:
    rng = random.Random(22)
    docs = [random_patient_dict(rng, unknown_share=s) for s in (0.0, 0.15, 0.4, 0.8) for _ in range(400)]
    return patients_frame([flatten(validate_patient(d)) for d in docs])


@pytest.fixture(scope="module")
def synthetic() -> pl.DataFrame:
    from nelm.screen.flat import engine_frame
    from nelm.screen.synth import synthesize

    return pl.concat([engine_frame(synthesize(3000, seed=s, unknown_fraction=u).with_row_index("__row", offset=1))
                      for s, u in ((3, 0.0), (4, 0.15), (5, 0.5))])


@pytest.mark.parametrize("guideline", [None, "review002", "esmo2020", "enets2023"])
def test_evaluate_frame_equals_the_plain_expressions(patients, synthetic, guideline):
    kb = load(guideline)
    for frame in (patients, synthetic):
        _same(evaluate_frame(frame, kb), _plain(evaluate_frame, frame, kb))
        _same(evaluate_frame(frame, kb, variants=False), _plain(evaluate_frame, frame, kb, variants=False))


def test_both_passes_equal_the_plain_expressions(patients, synthetic):
    kb = load()
    for frame in (patients, synthetic):
        for fast, plain in zip(evaluate_both_passes(frame, kb), _plain(evaluate_both_passes, frame, kb)):
            _same(fast, plain)


def test_one_row_and_sliced_frames(patients):
    kb = load()
    for frame in (patients.head(0), patients.head(1), patients.slice(5, 37), pl.concat([patients.head(50), patients.tail(50)])):
        _same(evaluate_frame(frame, kb), _plain(evaluate_frame, frame, kb))


def test_the_rewrites_apply():
    """The rewrites this module exists for are made (a knowledge base that no longer has such
    conditions would leave them unused: then this test says so)."""
    kb = load()
    fast = engine_frame_module._fast(kb)
    assert "category" in fast.recoded
    assert fast.nodes and fast.assume
    assert len(fast.rules.programs) > 0.9 * sum(1 for c in kb.roots if c.startswith("rule__"))


@pytest.mark.parametrize("offset", [0, 3, 8, 13])
def test_bitmaps_of_sliced_columns(offset):
    """A rule column may be a slice of an input column (a rule that reads one flag), whose
    bits start inside a byte: its words are the slice's own."""
    import numpy as np

    from nelm.engine.frame_fast import _bitmaps

    s = pl.Series([True, None, False, True, None, True, False, False, True, True, None, False] * 30).slice(offset, 200)
    values, valid = _bitmaps(s, len(s), (len(s) + 63) // 64)
    bits = np.unpackbits(values.view(np.uint8), bitorder="little")[:len(s)].astype(bool)
    known = np.unpackbits(valid.view(np.uint8), bitorder="little")[:len(s)].astype(bool)
    assert (known == s.is_not_null().to_numpy()).all()
    assert (bits[known] == s.fill_null(False).to_numpy()[known]).all()


def test_a_frame_typed_otherwise_keeps_the_plain_expressions(patients):
    """The rewrites are built for engine.SCHEMA's dtypes: a text column as String instead of its
    Enum, or a flag as integers, takes the plain path (whatever Polars makes of it)."""
    kb = load()
    for frame in (patients.with_columns(pl.col("primary_site").cast(pl.String)),
                  patients.with_columns(pl.col("symptomatic").cast(pl.Int8))):
        try:
            plain = _plain(evaluate_frame, frame, kb)
        except Exception as exc:  # noqa: BLE001 - then the new path must fail alike
            with pytest.raises(type(exc)):
                evaluate_frame(frame, kb)
            continue
        _same(evaluate_frame(frame, kb), plain)
