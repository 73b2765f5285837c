"""attach_outcomes: every option gets its list, fast, JSON-ready, no charts."""
from __future__ import annotations

import copy
import json

from nelm.engine import evaluate_frame, patients_frame
from nelm.outcomes import attach_outcomes, cohort_arms
from nelm.patient import OPTION_IDS, flatten, validate_patient

from .conftest import BIG, P01, option, run, variant

KEYS = {"source", "endpoint", "arm", "population", "reported", "median_months", "curve", "method",
        "reconstructed", "match_reason"}


def test_every_option_gets_an_outcomes_list(p01_assessment):
    assert {o["id"] for o in p01_assessment["options"]} == set(OPTION_IDS)
    for o in p01_assessment["options"]:
        assert isinstance(o["outcomes"], list)
        assert isinstance(o["risk_factors"], list)
        for item in o["outcomes"]:
            assert KEYS <= set(item), KEYS - set(item)
            assert item["reconstructed"] is True
            assert item["endpoint"] in ("overall survival", "progression-free survival", "time to progression")
            assert item["match_reason"] and "{" not in item["match_reason"]
            assert all(isinstance(p, list) and len(p) == 2 for p in item["curve"])
    assert option(p01_assessment, "liver_resection")["outcomes"]


def test_assessment_is_json_serialisable(p01_assessment):
    text = json.dumps(p01_assessment)
    back = json.loads(text)
    assert back["options"][0]["outcomes"] == p01_assessment["options"][0]["outcomes"]


def test_curves_are_fitted_once_and_copied(kb):
    assert cohort_arms(kb) is cohort_arms(kb)
    a = run(P01)
    b = run(P01)
    a_res = option(a, "liver_resection")["outcomes"][0]
    a_res["curve"][1][1] = -5.0
    a_res["reported"][0]["value"] = -5.0
    assert option(b, "liver_resection")["outcomes"][0]["curve"][1][1] != -5.0
    assert cohort_arms(kb)[a_res["cohort"]][0]["curve"][1][1] != -5.0
    assert cohort_arms(kb)[a_res["cohort"]][0]["reported"][0]["value"] != -5.0


def test_attach_fits_nothing_and_draws_no_chart_per_patient(kb, monkeypatch):
    """Curves do not depend on the patient: after the first call nothing is fitted or drawn
    again (this is what keeps one assessment fast; the speed itself is in benchmarks/)."""
    import nelm.outcomes as outcomes
    import nelm.outcomes.charts as charts

    def boom(*a, **k):
        raise AssertionError("attach_outcomes must not fit or render per patient")
    monkeypatch.setattr(charts, "render", boom)
    patient = validate_patient(variant(**{"symptomatic": True, "liver.burden_percent": 40, **BIG}))
    row = evaluate_frame(patients_frame([flatten(patient)]), kb).row(0, named=True)
    base = {"options": [{"id": i} for i in OPTION_IDS]}
    attach_outcomes(copy.deepcopy(base), row, kb)  # warm: cohorts and fits loaded once
    monkeypatch.setattr(outcomes, "fit", boom)
    for _ in range(3):
        done = copy.deepcopy(base)
        attach_outcomes(done, row, kb)
        assert any(o["outcomes"] for o in done["options"])


def test_unknown_patient_gets_only_general_cohorts():
    a = run({})
    for o in a["options"]:
        assert all(item["match"] == "general" for item in o["outcomes"]), o["id"]
        assert all(f["applies"] is None for f in o["risk_factors"]), o["id"]
