"""What a red-line scan of 14,000 random patients found in session 17 (more than the suite's ~3,100 reach), each
held by a test that failed before the fix."""
from __future__ import annotations

import pytest

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.testing import red_lines


def _check(doc: dict) -> tuple[dict, list[str]]:
    a = assess(validate_patient(doc))
    return a, red_lines(doc, a)


@pytest.mark.parametrize("barred", [{"fit_for_major_surgery": False}, {"liver": {"child_pugh": "B"}}])
def test_no_ablation_added_to_a_resection_that_cannot_be_done(barred):
    # the surgeon calls the disease resectable, but the patient is not fit for major surgery (or has Child-Pugh B):
    # ablation of lesions up to 6 cm was offered "added to a resection"
    doc = {"age_years": 75, "fit_for_major_surgery": True, "primary": {"site": "other", "resected": True},
           "pathology": {"differentiation": "well", "ki67_percent": 10},
           "liver": {"timing": "synchronous", "burden_percent": 40, "lesion_count": 5, "largest_lesion_cm": 6,
                     "pattern": "dominant_with_satellites", "resectable": True},
           "extrahepatic": {"present": False, "sites": []}, "course": {"status": "progressive"},
           "sstr_imaging": "positive"}
    for key, value in barred.items():
        doc[key] = doc[key] | value if isinstance(value, dict) else value
    a, lines = _check(doc)
    assert not lines, lines
    ablation = next(o for o in a["options"] if o["id"] == "thermal_ablation")
    assert ablation["verdict"] == "not_recommended"
    assert ablation["reasons"][0]["rule"] == "no_resection_to_add_to"


def test_a_refractory_vipoma_never_given_the_analogue_starts_it_before_chemotherapy():
    doc = {"age_years": 55, "primary": {"site": "pancreas"}, "pathology": {"differentiation": "well", "ki67_percent": 1},
           "functional_syndrome": "vipoma", "functional_control": "refractory", "symptomatic": True,
           "liver": {"resectable": False, "resectable_fraction_percent": 40}, "sstr_imaging": "positive",
           "course": {"status": "stable", "progression_within_12_months": False}, "prior_therapies": []}
    a, lines = _check(doc)
    assert not lines, lines
    first = a["plan"]["steps"][0]["options"]
    assert first[0] == "ssa", first
    assert not {"capecitabine_temozolomide", "streptozocin_based"} & set(first), first


def test_a_branch_step_carries_the_intent_of_the_rule_that_decides_there():
    # a branch where a refractory syndrome makes liver resection lead as debulking, with nodes that cannot be removed:
    # the step read "curative"
    doc = {"age_years": 55, "ecog": 1, "fit_for_major_surgery": True, "pathology": {"differentiation": "well"},
           "functional_syndrome": "other", "symptomatic": True,
           "liver": {"timing": "synchronous", "largest_lesion_cm": 3, "portal_vein_thrombosis": True, "resectable": True},
           "extrahepatic": {"present": True, "sites": ["lymph_nodes"], "peritoneal_carcinomatosis": "none",
                            "resectable": False},
           "right_heart_insufficiency": False, "sstr_imaging": "positive", "course": {"stable_months": 6}}
    a, lines = _check(doc)
    assert not lines, lines
    for b in a["plan"]["branches"]:
        s = b["steps"][0] if b["steps"] else None
        if s and s["options"][:1] == ["liver_resection"]:
            assert s["intent"] != "curative", (b["if"], s["intent"])


def test_no_ablation_for_debulking_where_deposits_outside_the_liver_stay_behind():
    # a gastrinoma, 30 lesions up to 6 cm, 95 % removable, deposits outside the liver that cannot be removed (sites not
    # listed): the resection was held back (its debulking rule reads those deposits) while ablation "completing" it was
    # named alone in a branch; both now read the one condition
    doc = {"primary": {"site": "other"}, "functional_syndrome": "gastrinoma", "symptomatic": True,
           "pathology": {"reported_grade": "G2"},
           "liver": {"burden_percent": 75, "lesion_count": 30, "largest_lesion_cm": 6, "lobes": "unilobar",
                     "pattern": "dominant_with_satellites", "resectable_fraction_percent": 95},
           "extrahepatic": {"present": True, "sites": ["bone"], "resectable": False},
           "sstr_imaging": "negative", "course": {"status": "stable", "stable_months": 24},
           "functional_control": "controlled"}
    a, lines = _check(doc)
    assert not lines, lines
    verdicts = {o["id"]: o["verdict"] for o in a["options"]}
    assert verdicts["thermal_ablation"] == verdicts["liver_resection"] == "not_recommended", verdicts
