"""The one-row Python executor (nelm.rowcode) against Polars: identical rows, column by column.

The knowledge base's SQL conditions are evaluated two ways: by Polars over a frame (the
batch engine, and the reference) and by generated Python for one patient (what
``assess`` uses). For thousands of random patients, with and without unknowns, under
every guideline, both passes must give the same columns in the same order with the same
value and the same Python type (1 is not 1.0, False is not None).
"""
from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

from nelm import rowcode
from nelm.engine import _lazy, evaluate, patients_frame, row_program, verdicts_under
from nelm.engine.verdicts import resolve_all
from nelm.knowledge import load
from nelm.outcomes.matching import matcher
from nelm.patient import flatten, validate_patient
from nelm.testing import make_patient, random_patient_dict

GUIDELINES = sorted(load().manifest.guidelines)
SHARES = (0.0, 0.1, 0.3, 0.6, 1.0)
N_PER_SHARE = 600


def _patients(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = [flatten(make_patient())]
    for share in SHARES:
        rows += [flatten(validate_patient(random_patient_dict(rng, share))) for _ in range(N_PER_SHARE)]
    return rows


ROWS = _patients(12)


def _same(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    assert list(ours) == list(theirs), f"{where}: columns differ"
    bad = [(c, ours[c], theirs[c]) for c in theirs
           if ours[c] != theirs[c] or type(ours[c]) is not type(theirs[c])]
    assert not bad, f"{where}: {len(bad)} column(s) differ, first {bad[:5]}"


@pytest.mark.parametrize("guideline", GUIDELINES)
def test_both_passes_equal_polars_for_every_column(guideline: str) -> None:
    kb = load(guideline)
    m = matcher(kb)
    program = row_program(kb, m.sql)
    assert program is not None, "every condition of the knowledge base translates"
    frame = patients_frame(ROWS)
    raw = _lazy(frame.lazy(), kb, True, False, m.exprs).collect()
    filled = _lazy(frame.lazy().with_columns(kb.assume), kb, False, False, None).collect()
    for i, flat in enumerate(ROWS):
        _same(program.facts(program.inputs(flat)), raw.row(i, named=True), f"{guideline} patient {i} facts")
        _same(program.verdicts(program.inputs(flat)), filled.row(i, named=True), f"{guideline} patient {i} verdicts")
    # one row holds a category (Enum) column's values as plain strings
    one_row = {c: pl.String if isinstance(t, pl.Enum) else t for c, t in filled.schema.items()}
    assert dict(program.verdict_types) == one_row
    assert any(isinstance(t, pl.Enum) for t in filled.schema.values())


@pytest.mark.parametrize("guideline", GUIDELINES)
def test_evaluate_and_other_guidelines_equal_the_polars_path(guideline: str) -> None:
    kb = load(guideline)
    sql = matcher(kb).sql
    for flat in ROWS[::25]:
        ours = evaluate(flat, kb, extra_sql=sql)
        theirs = evaluate(flat, kb, extra_sql=sql, executor="polars")
        _same(ours.facts, theirs.facts, "facts")
        _same(ours.verdicts, theirs.verdicts, "verdicts")
        for other in GUIDELINES:
            if other != guideline:
                _same(verdicts_under(ours, kb, load(other)), verdicts_under(theirs, kb, load(other)),
                      f"{guideline} under {other}")


@pytest.mark.parametrize("guideline", GUIDELINES)
def test_generated_resolution_equals_resolve_all(guideline: str) -> None:
    """The program's written-out resolution (verdicts.resolution_source) gives resolve_all's row:
    the same possible__ and verdict__ columns, in the same order, of the same values."""
    kb = load(guideline)
    program = row_program(kb)
    assert program is not None and program.resolve is not None
    for flat in ROWS[::5]:
        row = program.verdicts(program.inputs(flat))
        ours, theirs = program.resolve(dict(row)), dict(row)
        resolve_all(kb.options, theirs)
        _same(ours, theirs, f"{guideline} resolution")


@pytest.mark.parametrize("sql, row, expected", [
    ("a AND b", {"a": True, "b": None}, None),
    ("a AND b", {"a": False, "b": None}, False),
    ("a OR b", {"a": True, "b": None}, True),
    ("a OR b", {"a": False, "b": None}, None),
    ("NOT a", {"a": None}, None),
    ("x >= 2", {"x": None}, None),
    ("x >= 2", {"x": 2.0}, True),
    ("s IN ('p', 'q')", {"s": None}, None),
    ("s IN ('p', 'q')", {"s": "q"}, True),
    ("CASE WHEN a THEN 1 ELSE 2 END", {"a": None}, 2),
    ("CASE WHEN a THEN 1 END", {"a": False}, None),
    ("IF(a, 1, 2)", {"a": None}, 2),
    ("COALESCE(x, y)", {"x": None, "y": 3}, 3),
    ("GREATEST(x, y)", {"x": None, "y": 3}, 3),
    ("GREATEST(x, y)", {"x": None, "y": None}, None),
    ("s IS NULL OR s <> 'p'", {"s": None}, True),
    ("s IS NULL OR s <> 'p'", {"s": "p"}, False),
])
def test_kleene_semantics_match_polars(sql: str, row: dict[str, Any], expected: Any) -> None:
    ours = eval(rowcode.translate(sql), dict(rowcode.HELPERS), {"r": row})  # noqa: S307 - generated from the test's SQL
    dtypes = {"a": pl.Boolean, "b": pl.Boolean, "x": pl.Float64, "y": pl.Float64, "s": pl.String}
    frame = pl.DataFrame([row], schema={k: dtypes[k] for k in row})
    theirs = frame.select(pl.sql_expr(sql).alias("o")).item()
    assert ours == expected == theirs


def test_unsupported_sql_is_refused_not_guessed() -> None:
    with pytest.raises(rowcode.Unsupported):
        rowcode.translate("x / 2 > 2")   # division: Python and Polars differ on / 0
    with pytest.raises(rowcode.Unsupported):
        rowcode.coercion("Decimal(precision=38, scale=1)")


@pytest.mark.parametrize("guideline", GUIDELINES)
def test_outcome_matcher_on_a_frame_row_equals_polars(guideline: str) -> None:
    """Matcher.evaluate on a row without its columns (e.g. from evaluate_frame) runs the
    conditions as Python; the values are those Polars computes."""
    kb = load(guideline)
    m = matcher(kb)
    frame = patients_frame(ROWS[::10])
    rows = _lazy(frame.lazy(), kb, True, True, None).collect()
    theirs = rows.select(m.exprs)
    for i in range(rows.height):
        got = m.evaluate(rows.row(i, named=True))
        want = theirs.row(i, named=True)
        assert got == {name: want[col] for name, col in m.names.items()}
        assert all(v is None or type(v) is bool for v in got.values())


def test_addition_subtraction_multiplication_as_polars_computes_them() -> None:
    """+ - * (the consistency checks compare months with age_years * 12): an unknown side unknown."""
    import polars as pl

    sql = "a * 12 - b + 1 > c"
    frame = pl.DataFrame({"a": [1.0, None, 2.0, 30.0], "b": [0.5, 1.0, None, 1.0], "c": [5.0, 1.0, 1.0, None]})
    expected = frame.select(pl.sql_expr(sql).alias("x"))["x"].to_list()
    fn = rowcode.compile_functions(rowcode.function_source("f", [("x", rowcode.translate(sql), "bool")]))["f"]
    assert [fn(dict(r))["x"] for r in frame.iter_rows(named=True)] == expected == [True, None, None, None]


def test_typed_steps_give_the_helpers_values_and_types() -> None:
    """With the columns' kinds known, Kleene AND/OR/NOT and COALESCE are written inline and
    casts a value already has are left out (the engine's passes); every combination of
    True/False/NULL operands gives what the helpers give, of the same type."""
    import itertools

    steps = [("and3", "_and(r['a'], r['b'], r['c'])", "bool"), ("or3", "_or(r['a'], r['b'], r['c'])", "bool"),
             ("not1", "_not(r['a'])", "bool"), ("mixed", "_or(_and(r['a'], _not(r['b'])), r['c'])", "bool"),
             ("co", "_coalesce(r['a'], r['b'], False)", "bool"), ("s", "_coalesce(r['t'], 'none')", "str"),
             ("f", "_coalesce(r['x'], 1)", "float"), ("chained", "_and(r['and3'], r['co'])", "bool")]
    kinds = {"a": "bool", "b": "bool", "c": "bool", "t": "str", "x": "float"}
    typed = rowcode.compile_functions(rowcode.function_source("typed", steps, kinds))["typed"]
    plain = rowcode.compile_functions(rowcode.function_source("plain", steps))["plain"]
    source = rowcode.function_source("typed", steps, kinds)
    assert "_and(" not in source and "_or(" not in source and "_b(" not in source
    for a, b, c in itertools.product([True, False, None], repeat=3):
        for t, x in (("x", 2.5), (None, None)):
            row = {"a": a, "b": b, "c": c, "t": t, "x": x}
            got, want = typed(dict(row)), plain(dict(row))
            assert got == want and all(type(got[k]) is type(want[k]) for k in want), row
