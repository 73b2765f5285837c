"""The consistency checks of knowledge/consistency.yaml: one definition, applied by the
patient model (one document) and by nelm screen's batch validator (column-wise), each
refusal naming every field it reads, in a clinician's words; the generators of
nelm.testing stay inside them."""
from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from nelm import consistency, labels
from nelm.patient import COLUMN_FIELDS, InvalidPatient, flatten, validate_patient
from nelm.screen.layout import SCHEMA, document_row
from nelm.screen.validate import problems as batch_problems
from nelm.summary import fact_label
from nelm.testing import BASE as BASE_DOC, make_patient, patient_dict, patient_strategy, perturbed_patient_dict, random_patient_dict

CHECKS = consistency.checks()


def _model_problems(doc: dict) -> set[tuple[str, str]]:
    try:
        validate_patient(doc)
    except InvalidPatient as exc:
        return set(exc.problems)
    return set()


def _batch_problems(docs: list[dict]) -> dict[int, set[tuple[str, str]]]:
    lay = pl.DataFrame([document_row(d) for d in docs], schema=SCHEMA, strict=False).with_row_index("__row", offset=1)
    found: dict[int, set[tuple[str, str]]] = {}
    for p in batch_problems(lay):
        found.setdefault(p.row, set()).add((p.field, p.message))
    return found


def _expected(check: consistency.Check, doc: dict) -> set[tuple[str, str]]:
    row = flatten(validate_patient(doc, consistency=False))
    assert check in consistency.failing(row), check.id
    return set(consistency.problems_of(check, row))


# --------------------------------------------------------------------------- every record, both executors

def test_the_file_has_the_checks_the_issue_asks_for():
    ids = {c.id for c in CHECKS}
    for wanted in ("burden_vs_one_lesion", "burden_vs_large_lesion", "unknown_primary_resected",
                   "stable_course_vs_recent_progression", "stable_longer_than_life",
                   "progression_months_longer_than_life_ssa", "ongoing_procedure_liver_resection",
                   "ongoing_procedure_ebrt", "resectable_vs_removable_share", "no_extrahepatic_vs_sites"):
        assert wanted in ids


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_check_is_applied_by_the_model_and_by_the_batch_validator(check):
    doc = patient_dict(**check.example)
    expected = _expected(check, doc)
    assert len({f for f, _ in expected}) >= 2, expected         # a refusal names both (all) fields
    assert expected <= _model_problems(doc)
    assert expected <= _batch_problems([doc]).get(1, set())
    assert _batch_problems([doc]).get(1, set()) == _model_problems(doc)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_every_message_names_its_fields_in_words(check):
    text = check.message
    for f in check.fields:
        words = {labels.field_label(f)} | {fact_label(COLUMN_FIELDS[c], c) for c in check.field_columns(f)}
        shown = consistency.message(check, flatten(validate_patient(patient_dict(**check.example), consistency=False)))
        assert any(w.lower() in shown.lower() for w in words), (check.id, f, shown)
    assert "allowed:" in text and "_" not in consistency._TOKEN.sub("", text).replace("n't", ""), check.id


def test_a_new_check_is_picked_up_by_both_without_code(tmp_path, monkeypatch):
    """A record added to the file: the model and the batch validator refuse with it at once."""
    extra = tmp_path / "consistency.yaml"
    extra.write_text(consistency.FILE.read_text(encoding="utf-8") + """
  - id: test_only_old_and_ecog
    fields: [age_years, ecog]
    condition: age_years > 100 AND ecog = 0
    message: "{label:age_years} {value:age_years} with {label:ecog} {value:ecog}; allowed: a test's own rule"
    example: {age_years: 101}
""", encoding="utf-8")
    monkeypatch.setattr(consistency, "FILE", extra)
    consistency.checks.cache_clear()
    consistency._row_function.cache_clear()
    try:
        doc = patient_dict(age_years=101)
        want = {("age_years", "Age 101 years with ECOG performance status 0; allowed: a test's own rule"),
                ("ecog", "Age 101 years with ECOG performance status 0; allowed: a test's own rule")}
        assert _model_problems(doc) == want
        assert _batch_problems([doc])[1] == want
        assert not _model_problems(patient_dict(age_years=100))
    finally:
        consistency.checks.cache_clear()
        consistency._row_function.cache_clear()


def test_a_malformed_record_is_refused_on_loading(tmp_path, monkeypatch):
    bad = tmp_path / "consistency.yaml"
    for record, complaint in [
        ("{id: x, fields: [age_years], condition: age_yeers > 1, message: 'm allowed:', example: {}}", "not a column"),
        ("{id: x, fields: [age_years], condition: ecog > 1, message: 'm allowed:', example: {}}", "not among its fields"),
        ("{id: x, fields: [age_years], condition: age_years > 1, message: 'm allowed:'}", "needs id"),
        ("{id: x, fields: [age_years], condition: age_years > 1, message: '{value:agee}', example: {}}", "agee"),
    ]:
        bad.write_text(f"checks:\n  - {record}\n", encoding="utf-8")
        monkeypatch.setattr(consistency, "FILE", bad)
        consistency.checks.cache_clear()
        with pytest.raises(ValueError, match=complaint):
            consistency.checks()
    monkeypatch.undo()
    consistency.checks.cache_clear()
    consistency._row_function.cache_clear()


def test_random_documents_model_and_batch_agree_message_for_message():
    """Random documents with nonsense mixed in: the same (field, message) pairs from both."""
    rng = random.Random(11)
    breaks = [patient_dict(**c.example) for c in CHECKS]
    docs = []
    for i in range(300):
        doc = random_patient_dict(rng, 0.2)
        if i % 2:
            brk = breaks[rng.randrange(len(breaks))]
            for k, v in brk.items():
                doc[k] = {**(doc.get(k) or {}), **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
        docs.append(doc)
    found = _batch_problems(docs)
    refused = 0
    for n, doc in enumerate(docs, 1):
        expected = _model_problems(doc)
        refused += bool(expected)
        assert found.get(n, set()) == expected, (n, doc)
    assert refused > 50


def test_the_sql_view_refuses_what_the_model_refuses():
    """The SQL view (nelm sql) runs the same conditions: each row names the checks it fails
    (``refused``), exactly those the model finds, and a refused row gets no assessment (every
    other column NULL), as nelm screen leaves it out."""
    duckdb = pytest.importorskip("duckdb")
    from nelm.screen.sql import create_view, sql_table

    rng = random.Random(12)
    docs = [patient_dict(**c.example) for c in CHECKS] + [BASE_DOC]
    for i in range(200):
        doc = random_patient_dict(rng, 0.2)
        if i % 2:
            brk = patient_dict(**CHECKS[rng.randrange(len(CHECKS))].example)
            for k, v in brk.items():
                doc[k] = {**(doc.get(k) or {}), **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
        docs.append(doc)
    lay = (pl.DataFrame([document_row(d) for d in docs], schema=SCHEMA, strict=False)
           .with_row_index("__row", offset=1).with_columns(pl.col("__row").cast(pl.String).alias("id")))
    con = duckdb.connect()
    con.register("src", sql_table(lay).to_arrow())
    con.execute("CREATE TABLE patients AS SELECT * FROM src")
    con.execute(create_view("patients", dialect="duckdb"))
    got = {r["id"]: r for r in pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table()).iter_rows(named=True)}
    refused = 0
    for n, doc in enumerate(docs, 1):
        row = got[str(n)]
        expected = {c.id for c in consistency.failing(flatten(validate_patient(doc, consistency=False)))}
        assert set(row["refused"].split(", ") if row["refused"] else ()) == expected, (n, doc)
        if expected:
            refused += 1
            assert all(v is None for k, v in row.items() if k not in ("id", "refused")), n
        else:
            assert any(v is not None for k, v in row.items() if k.startswith("options.")), n
    assert refused > len(CHECKS) + 50


def _breaking(rule: dict):
    """A value outside a field's own constraints (nelm.patient.field_constraints)."""
    if "enum" in rule:
        return "not_a_" + rule["enum"][0]
    if "maximum" in rule:
        return rule["maximum"] + 1
    return rule["exclusiveMaximum"]


def test_the_sql_view_refuses_the_fields_the_model_refuses():
    """A value outside a field's range, allowed values or whole numbers, written into the
    view's table (a database column takes what the model would refuse): the view names the
    field, as the model refuses it, and assesses nothing else of the row."""
    duckdb = pytest.importorskip("duckdb")
    from nelm.patient import field_constraints
    from nelm.screen.sql import create_view, sql_table, table_column

    cases = [(f, _breaking(r)) for f, r in field_constraints().items() if r]
    cases += [(f, r["minimum"] + 0.5) for f, r in field_constraints().items() if r.get("integer")]
    assert len(cases) > 30
    base = pl.DataFrame([document_row(BASE_DOC)], schema=SCHEMA, strict=False).with_row_index("__row", offset=1)
    table = sql_table(base.with_columns(pl.lit("0").alias("id")))
    table = table.with_columns(pl.col(c).cast(pl.String) for c, t in table.schema.items() if isinstance(t, pl.Enum))
    rows = [table]
    for n, (field, value) in enumerate(cases, 1):
        col = table_column(field.replace(".", "_"))
        rows.append(table.with_columns(pl.lit(str(n)).alias("id"), pl.lit(value).cast(table.schema[col]).alias(col)))
        # the model refuses that value, by the field's path
        with pytest.raises(InvalidPatient) as exc:
            validate_patient(patient_dict(**{field: value}))
        assert field in {f for f, _ in exc.value.problems}, (field, value)
    con = duckdb.connect()
    con.register("src", pl.concat(rows).to_arrow())
    con.execute("CREATE TABLE patients AS SELECT * FROM src")
    con.execute(create_view("patients", dialect="duckdb"))
    got = {r["id"]: r for r in pl.from_arrow(con.sql("SELECT * FROM nelm_assessment").to_arrow_table()).iter_rows(named=True)}
    assert got["0"]["refused"] is None
    for n, (field, value) in enumerate(cases, 1):
        row = got[str(n)]
        assert row["refused"] and field in row["refused"].split(", "), (field, value, row["refused"])
        assert all(v is None for k, v in row.items() if k not in ("id", "refused")), field


# --------------------------------------------------------------------------- the issue's nonsense, in words

def _refused(**changes) -> dict[str, str]:
    with pytest.raises(InvalidPatient) as exc:
        validate_patient(patient_dict(**changes))
    return dict(exc.value.problems)


def test_full_burden_from_one_small_lesion():
    p = _refused(**{"liver.burden_percent": 100})          # BASE: one resectable 3 cm lesion
    assert {"liver.burden_percent", "liver.lesion_count", "liver.largest_lesion_cm"} <= set(p)
    assert "Hepatic tumour burden 100 %" in p["liver.burden_percent"]
    assert "Largest liver lesion 3 cm" in p["liver.burden_percent"]
    assert "plausibility bounds, not clinical thresholds" in p["liver.burden_percent"]
    validate_patient(patient_dict(**{"liver.burden_percent": 25}))      # at the bound
    validate_patient(patient_dict(**{"liver.burden_percent": 100, "liver.largest_lesion_cm": 15}))


def test_huge_lesion_at_tiny_burden():
    p = _refused(**{"liver.largest_lesion_cm": 50, "liver.burden_percent": 1})
    assert {"liver.burden_percent", "liver.largest_lesion_cm"} <= set(p)
    assert "Largest liver lesion 50 cm" in p["liver.largest_lesion_cm"]
    validate_patient(patient_dict(**{"liver.largest_lesion_cm": 12, "liver.burden_percent": 1}))


def test_many_lesions_may_fill_the_liver():
    validate_patient(patient_dict(**{"liver.burden_percent": 90, "liver.lesion_count": 30, "liver.largest_lesion_cm": 2,
                                     "liver.pattern": "disseminated", "liver.resectable_fraction_percent": 0}))
    p = _refused(**{"liver.burden_percent": 90, "liver.lesion_count": 5, "liver.largest_lesion_cm": 2,
                    "liver.pattern": "dominant_with_satellites", "liver.resectable_fraction_percent": 0})
    assert "liver.lesion_count" in p


def test_resected_unknown_primary():
    p = _refused(**{"primary.site": "unknown_primary"})   # BASE: primary resected
    assert set(p) == {"primary.site", "primary.resected"}
    assert "Primary site unknown primary (CUP)" in p["primary.site"] and "Primary tumour resected yes" in p["primary.site"]
    validate_patient(patient_dict(**{"primary.site": "unknown_primary", "primary.resected": False}))


def test_peritoneum_only_limited_carcinomatosis_is_not_unresectable_extrahepatic_disease():
    # a safety scan found curative liver surgery offered on this record: the ENETS items read the
    # limited resectable carcinomatosis and passed, beside 'extrahepatic deposits cannot be removed'
    eh = {"extrahepatic.present": True, "extrahepatic.sites": ["peritoneum"],
          "extrahepatic.peritoneal_carcinomatosis": "limited_resectable"}
    p = _refused(**eh, **{"extrahepatic.resectable": False})
    assert {"extrahepatic.resectable", "extrahepatic.peritoneal_carcinomatosis", "extrahepatic.sites"} <= set(p)
    assert "only extrahepatic site" in p["extrahepatic.resectable"]
    validate_patient(patient_dict(**eh, **{"extrahepatic.resectable": True}))
    # another site the surgeon cannot remove: no contradiction, and curative surgery is not offered
    both = patient_dict(**{**eh, "extrahepatic.resectable": False, "extrahepatic.sites": ["peritoneum", "lymph_nodes"]})
    from nelm.assessment import assess
    plan = assess(validate_patient(both), outcomes="summary")["plan"]
    assert "liver_resection" not in plan["steps"][0]["options"] or plan["pathway"] != "curative_resection"


def test_stable_for_two_years_yet_progressing_within_one():
    p = _refused(**{"course.stable_months": 24, "course.progression_within_12_months": True})
    assert {"course.status", "course.stable_months", "course.progression_within_12_months"} == set(p)
    assert "Progression within the last 12 months yes" in p["course.stable_months"]
    validate_patient(patient_dict(**{"course.stable_months": 6, "course.progression_within_12_months": True}))
    validate_patient(patient_dict(**{"course.status": "progressive", "course.stable_months": 24,
                                     "course.progression_within_12_months": True}))


def test_durations_longer_than_the_patient_s_life():
    p = _refused(age_years=1, **{"course.stable_months": 600})
    assert set(p) == {"age_years", "course.stable_months"}
    assert "Age 1 years" in p["age_years"] and "600 months" in p["age_years"]
    validate_patient(patient_dict(age_years=2, **{"course.stable_months": 24}))
    p = _refused(age_years=10, prior_therapies=[{"therapy": "ssa", "outcome": "progression", "months_to_progression": 200}])
    assert {"age_years", "prior_therapies.months_to_progression"} == set(p)
    assert "months to progression on earlier" in p["age_years"]


@pytest.mark.parametrize("field", ["labs.platelets_10e9_per_l", "labs.neutrophils_10e9_per_l", "labs.egfr_ml_min"])
def test_organ_function_of_zero_is_outside_physiology(field):
    p = _refused(**{field: 0})
    assert set(p) == {field}
    assert labels.field_label(field) in p[field] and "0 was entered" in p[field]


@pytest.mark.parametrize("therapy", ["liver_resection", "thermal_ablation", "liver_transplant", "tae", "tace",
                                     "deb_tace", "sirt", "ebrt"])
def test_a_procedure_is_never_ongoing(therapy):
    p = _refused(prior_therapies=[{"therapy": therapy, "outcome": "response", "ongoing": True}])
    assert set(p) == {"prior_therapies.therapy", "prior_therapies.ongoing"}
    assert "Still ongoing yes" in p["prior_therapies.ongoing"]
    validate_patient(patient_dict(prior_therapies=[{"therapy": therapy, "outcome": "response", "ongoing": False}]))
    validate_patient(patient_dict(prior_therapies=[{"therapy": "ssa", "outcome": "response", "ongoing": True}]))


def test_every_contradiction_is_named_at_once():
    p = _refused(**{"liver.burden_percent": 100, "primary.site": "unknown_primary", "labs.platelets_10e9_per_l": 100})
    assert {"liver.burden_percent", "primary.site", "primary.resected"} <= set(p)


# --------------------------------------------------------------------------- the generators stay inside

def test_generators_make_documents_the_model_accepts():
    rng = random.Random(5)
    make_patient()
    for _ in range(1500):
        for share in (0.0, 0.3, 0.8):
            validate_patient(random_patient_dict(rng, share))
        validate_patient(perturbed_patient_dict(rng, 6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=patient_strategy())
def test_patient_strategy_makes_documents_the_model_accepts(doc):
    validate_patient(doc)


def test_contradictions_are_named_beside_refused_fields():
    """A refused field does not hide a contradiction elsewhere (it is left unknown for the
    consistency checks), and the batch validator names the same problems."""
    doc = patient_dict(**{"pathology.ki67_percent": 150, "primary.site": "unknown_primary",
                          "course.stable_months": 24, "course.progression_within_12_months": True,
                          "prior_therapies": [{"therapy": "ssa", "outcome": "cured"}]})
    p = _model_problems(doc)
    assert {f for f, _ in p} == {"pathology.ki67_percent", "primary.site", "primary.resected", "course.status",
                                 "course.stable_months", "course.progression_within_12_months",
                                 "prior_therapies.0.outcome"}
    assert _batch_problems([doc])[1] == p
    # the refused field itself is not read by a check: 150 % Ki-67 with a G1 report is one problem
    p = _model_problems(patient_dict(**{"pathology.ki67_percent": 150, "pathology.reported_grade": "G1",
                                        "pathology.mitoses_per_10hpf": None}))
    assert {f for f, _ in p} == {"pathology.ki67_percent"}


def test_contradicts_is_whether_there_are_refusals():
    """The plan's what-if patients ask only whether a row fails a check (consistency.contradicts,
    which stops at the first): the same answer as the refusals being non-empty."""
    rng = random.Random(12)
    breaks = [patient_dict(**c.example) for c in CHECKS]
    rows = []
    for doc in breaks:
        rows.append(flatten(validate_patient(doc, consistency=False)))
    for _ in range(200):
        doc = random_patient_dict(rng, 0.3)
        brk = breaks[rng.randrange(len(breaks))]
        for k, v in brk.items():
            doc[k] = {**(doc.get(k) or {}), **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
        try:
            rows.append(flatten(validate_patient(doc, consistency=False)))
        except InvalidPatient:
            continue
    assert sum(consistency.contradicts(r) for r in rows) > 50
    for row in rows:
        assert consistency.contradicts(row) == bool(consistency.refusals(row))
