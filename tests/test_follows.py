"""Facts that follow from facts (knowledge/follows.yaml): one definition, three executors.

Every record is run through the patient model's flattening, ``nelm screen``'s column-wise
flattening (Polars) and the SQL view's input columns (DuckDB): under its example the column is
filled in with the record's value by all three, a value the record gives is kept, and a
reason that quotes the filled-in value says what it follows from.
"""
from __future__ import annotations

import textwrap

import polars as pl
import pytest
import sqlglot
from sqlglot import exp

from nelm import follows
from nelm.assessment import assess
from nelm.patient import COLUMN_FIELDS, COLUMN_TYPES, InvalidPatient, flatten, recorded_row, validate_patient
from nelm.screen.flat import engine_frame
from nelm.screen.layout import SCHEMA, document_row
from nelm.screen.sql import engine_inputs
from nelm.testing import patient_dict

RECORDS = follows.records()


def _frame_rows(docs: list[dict]) -> list[dict]:
    lay = pl.DataFrame([document_row(d) for d in docs], schema=SCHEMA, strict=False).with_row_index("__row", offset=1)
    return engine_frame(lay).to_dicts()


def _sql_rows(rows: list[dict]) -> list[dict]:
    """The SQL view's input columns (engine_inputs) over recorded rows, in DuckDB."""
    duckdb = pytest.importorskip("duckdb")
    cols = sorted(follows.columns())
    frame = pl.DataFrame([{c: r[c] for c in cols} for r in rows],
                         schema={c: {"bool": pl.Boolean, "str": pl.String, "float": pl.Float64}[COLUMN_TYPES[c]]
                                 for c in cols})
    con = duckdb.connect()
    con.register("recorded", frame.to_arrow())
    inputs = engine_inputs(lambda c: exp.column(c))
    select = ", ".join(f"{inputs[c].sql(dialect='duckdb')} AS {c}" for c in cols)
    return pl.from_arrow(con.sql(f"SELECT {select} FROM recorded").to_arrow_table()).to_dicts()


def test_the_file_has_records_for_every_column_it_names():
    assert RECORDS and set(follows.by_column()) <= set(COLUMN_FIELDS)


@pytest.mark.parametrize("rec", RECORDS, ids=[r.id for r in RECORDS])
def test_each_record_fills_its_column_in_every_executor(rec):
    doc = validate_patient(patient_dict(**rec.example)).model_dump()
    recorded = recorded_row(doc)
    assert recorded[rec.column] is None, "the example must leave the column unknown"
    assert follows.filled_from(recorded)[rec.column] == rec
    row = flatten(validate_patient(doc))
    assert row[rec.column] == rec.value
    assert _frame_rows([doc])[0][rec.column] == rec.value
    assert _sql_rows([recorded])[0][rec.column] == rec.value


@pytest.mark.parametrize("rec", RECORDS, ids=[r.id for r in RECORDS])
def test_a_recorded_value_is_kept(rec):
    """The record's own value always wins: try every other value the column can take."""
    field = COLUMN_FIELDS[rec.column]
    kept = 0
    for other in {"bool": [True, False], "str": ["present", "valves_replaced", "limited_resectable", "diffuse_unresectable"],
                  "float": [50.0]}[COLUMN_TYPES[rec.column]]:   # a share (review 9: the first numeric record)
        if other == rec.value:
            continue
        try:
            # (the record's consistency is not the question here: a value contradicting the example's
            # facts is refused by the model, but each executor must still keep what it is given)
            doc = validate_patient(patient_dict(**{**rec.example, field: other}), consistency=False).model_dump()
        except InvalidPatient:
            continue    # not a value of this field
        kept += 1
        recorded = recorded_row(doc)
        assert rec.column not in follows.filled_from(recorded)
        assert flatten(validate_patient(doc, consistency=False))[rec.column] == other
        assert _frame_rows([doc])[0][rec.column] == other
        assert _sql_rows([recorded])[0][rec.column] == other
    assert kept, "no other value of the column could be recorded beside the example"


def test_unknown_is_no_inference():
    """With every fact a record reads unknown, nothing is filled in by any executor."""
    doc = validate_patient({"id": "u"}).model_dump()
    recorded = recorded_row(doc)
    assert follows.filled_from(recorded) == {}
    for c in follows.by_column():
        assert flatten(validate_patient(doc))[c] is None
        assert _frame_rows([doc])[0][c] is None
        assert _sql_rows([recorded])[0][c] is None


def test_a_reason_quoting_a_filled_in_fact_says_what_it_follows_from():
    doc = patient_dict(**{"symptomatic": False, "extrahepatic.present": True, "extrahepatic.sites": ["bone"],
                          "extrahepatic.symptomatic": None})
    a = assess(validate_patient(doc))
    facts = [f for o in a["options"] for r in o["reasons"] for f in r["facts"] if f["field"] == "extrahepatic.symptomatic"]
    assert facts and all(f["value"].startswith("no — follows from ") and ": no" in f["value"] for f in facts)
    # recorded, the same fact carries no note
    doc["extrahepatic"]["symptomatic"] = False
    a = assess(validate_patient(doc))
    facts = [f for o in a["options"] for r in o["reasons"] for f in r["facts"] if f["field"] == "extrahepatic.symptomatic"]
    assert facts and all(f["value"] == "no" for f in facts)


@pytest.mark.parametrize("text, message", [
    ("{id: x, column: symptomatick, value: true, when: ecog > 1, reason: r, example: {}}", "not a column"),
    ("{id: x, column: symptomatic, value: 'yes', when: ecog > 1, reason: r, example: {}}", "is not a bool value"),
    ("{id: x, column: symptomatic, value: true, when: symptomatic, reason: r, example: {}}", "the column it fills"),
    ("{id: x, column: symptomatic, value: true, when: ecog > 1, example: {}}", "needs id"),
])
def test_a_malformed_record_is_refused(tmp_path, monkeypatch, text, message):
    bad = tmp_path / "follows.yaml"
    bad.write_text(textwrap.dedent(f"follows:\n  - {text}\n"))
    monkeypatch.setattr(follows, "FILE", bad)
    follows.records.cache_clear()
    try:
        with pytest.raises(ValueError, match=message):
            follows.records()
    finally:
        follows.records.cache_clear()


def test_every_record_cites_evidence_that_exists():
    from nelm.knowledge import load

    known = set(load().evidence)
    assert all(s in known for r in RECORDS for s in r.sources), [(r.id, r.sources) for r in RECORDS]
