"""nelm screen / nelm synth / the table layout: formats agree, invalid rows are reported
by row and field without stopping the rest, absent columns are unknown, the column-wise
flat view and validation equal the per-patient ones."""
from __future__ import annotations

import json
import random

import polars as pl
import pytest

from nelm.engine import patients_frame
from nelm.patient import InvalidPatient, flatten, validate_patient
from nelm.screen.flat import engine_frame
from nelm.screen.layout import SCHEMA, document_row
from nelm.screen.run import screen
from nelm.screen.synth import synthesize, write_table
from nelm.screen.validate import problems
from nelm.testing import random_patient_dict


@pytest.mark.parametrize("unknown", [0.0, 0.3, 0.8])
def test_flat_view_equals_flatten(unknown):
    rng = random.Random(int(unknown * 10))
    patients = [validate_patient(random_patient_dict(rng, unknown)) for _ in range(400)]
    lay = pl.DataFrame([document_row(p.model_dump()) for p in patients], schema=SCHEMA).with_row_index("__row", offset=1)
    got = engine_frame(lay)
    ref = patients_frame([flatten(p) for p in patients])
    for c in ref.columns:
        assert ref[c].equals(got[c], check_names=False, null_equal=True), c


# contradictions the model refuses, one per cross-field check, and field-level refusals
BREAKS = [
    {"pathology": {"differentiation": "poor", "ki67_percent": 2.0}},
    {"pathology": {"reported_grade": "G1", "ki67_percent": 30.0}},
    {"liver": {"pattern": "single", "lesion_count": 4}},
    {"liver": {"pattern": "disseminated", "lesion_count": 30, "resectable_fraction_percent": 100}},
    {"liver": {"liver_function": "normal", "child_pugh": "C"}},
    {"extrahepatic": {"present": False, "sites": ["lung"]}},
    {"sstr_imaging": "negative", "sstr_uptake_krenning": 3},
    {"functional_syndrome": "none", "functional_control": "refractory"},
    {"prior_therapies": [{"therapy": "ssa", "outcome": "response", "months_to_progression": 4}]},
    {"ecog": 7},
    {"primary": {"site": "liver"}},
    {"liver": {"lesion_count": 2.5}},
]


def test_grouped_validation_equals_validate_patient():
    rng = random.Random(3)
    docs = []
    for i in range(600):
        doc = random_patient_dict(rng, 0.2)
        if i % 3 == 0:
            brk = BREAKS[rng.randrange(len(BREAKS))]
            for k, v in brk.items():
                doc[k] = {**(doc.get(k) or {}), **v} if isinstance(v, dict) else v
        docs.append(doc)
    lay = pl.DataFrame([document_row(_dump(d)) for d in docs], schema=SCHEMA, strict=False).with_row_index("__row", offset=1)
    found: dict[int, set[str]] = {}
    for p in problems(lay):
        found.setdefault(p.row, set()).add(p.field)
    for n, doc in enumerate(docs, 1):
        try:
            validate_patient(doc)
            expected: set[str] = set()
        except InvalidPatient as exc:
            expected = {f for f, _ in exc.problems}
        assert found.get(n, set()) == expected, (n, doc)


def _dump(doc):
    """A raw document as layout values (no validation: bad values stay bad)."""
    return {**doc, "extrahepatic": doc.get("extrahepatic"), "prior_therapies": doc.get("prior_therapies")}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("screen")
    # 600 rows carry every value of every column that 3000 did (each category, list element,
    # unknown and fractional number): what the three formats must read alike
    frame = synthesize(600, seed=1, unknown_fraction=0.2)
    paths = {ext: d / f"in.{ext}" for ext in ("csv", "parquet", "jsonl")}
    for p in paths.values():
        write_table(frame, p)
    return d, paths


def test_synthetic_patients_are_valid_and_seeded():
    a = synthesize(5000, seed=9, unknown_fraction=0.3)
    assert problems(a.with_row_index("__row", offset=1)) == []
    assert a.equals(synthesize(5000, seed=9, unknown_fraction=0.3))
    assert not a.equals(synthesize(5000, seed=10, unknown_fraction=0.3))
    shares = synthesize(20000, seed=2)["primary.site"].value_counts(normalize=True)
    pancreas = shares.filter(pl.col("primary.site") == "pancreas")["proportion"].item()
    assert abs(pancreas - 0.40) < 0.02   # population.yaml: review000, Mayo 2011


def test_every_format_gives_the_same_result(synthetic):
    d, paths = synthetic
    outs = []
    for ext, p in paths.items():
        out = d / f"out_{ext}.parquet"
        result = screen(p, out)
        assert result.problems == [] and result.assessed == 600
        outs.append(pl.read_parquet(out))
    assert outs[0].equals(outs[1]) and outs[0].equals(outs[2])


def test_invalid_rows_are_reported_and_the_rest_assessed(tmp_path):
    rows = [{"id": "a", "pathology.differentiation": "poor", "pathology.ki67_percent": "2"},
            {"id": "b", "pathology.ki67_percent": "abc"},
            {"id": "c", "pathology.ki67_percent": "5", "liver.pattren": "single"},
            {"id": "d", "pathology.ki67_percent": "1"}]
    src = tmp_path / "in.csv"
    pl.DataFrame(rows).write_csv(src)
    out = tmp_path / "out.jsonl"
    result = screen(src, out, select=["classification.who_grade", "criteria.*"])
    by_row = {(p.row, p.field) for p in result.problems}
    assert (1, "pathology") in by_row or any(r == 1 and f.startswith("pathology") for r, f in by_row)
    assert (2, "pathology.ki67_percent") in by_row
    assert (3, "liver.pattren") in by_row
    assert all(r != 4 for r, _ in by_row)
    got = pl.read_ndjson(out)
    assert got["id"].to_list() == ["d"]
    assert got["classification.who_grade"].to_list() == ["G1"]
    # absent columns are unknown for every row: the Milan criteria cannot be settled
    assert got["criteria.milan_transplant"].to_list() == ["unknown"]
    errors = pl.read_csv(tmp_path / "out.jsonl.errors.csv")
    assert set(errors["row"]) == {1, 2, 3}


def test_cli_screen_and_synth(tmp_path):
    from typer.testing import CliRunner

    from nelm.cli import app

    runner = CliRunner()
    src = tmp_path / "p.parquet"
    assert runner.invoke(app, ["synth", "--n", "500", "--seed", "3", "--out", str(src)]).exit_code == 0
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["screen", str(src), "--out", str(out), "--select", "plan.leading,options.*.verdict",
                            "--chart", "svg"])
    assert r.exit_code == 0, r.output
    got = pl.read_csv(out)
    assert got.columns[0] == "id" and "plan.leading" in got.columns and got.height == 500
    assert (tmp_path / "o.csv.summary.svg").exists()
    bad = runner.invoke(app, ["screen", str(src), "--out", str(tmp_path / "o.xlsx")])
    assert bad.exit_code == 2
    sql = runner.invoke(app, ["sql", "--dialect", "spark", "--table", "registry.patients", "--view", "v"])
    assert sql.exit_code == 0 and sql.output.startswith("CREATE VIEW v AS")
    json.dumps(sql.output)
