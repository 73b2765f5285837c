"""Liver transplantation (rules/transplant.yaml)."""
from tests.test_criteria import MILAN_OK


def test_within_milan_is_reasonable_and_investigational_never_preferred(assess_with):
    _, o = assess_with(**MILAN_OK)
    t = o["liver_transplant"]
    assert t["verdict"] == "reasonable"
    assert "investigational" in t["reasons"][0]["text"]
    assert o["clinical_trial"]["verdict"] == "preferred"


def test_outside_milan_names_the_failed_items(assess_with):
    _, o = assess_with(**{**MILAN_OK, "liver.burden_percent": 70})
    assert o["liver_transplant"]["verdict"] == "not_recommended"
    assert "50 %" in o["liver_transplant"]["reasons"][0]["text"]


def test_exclusions_contraindicate(assess_with):
    for changes in ({"transplant_contraindication": True}, {"primary.site": "lung"},
                    {"pathology.differentiation": "poor", "pathology.ki67_percent": 60}):
        _, o = assess_with(**{**MILAN_OK, **changes})
        assert o["liver_transplant"]["verdict"] == "contraindicated", changes


def test_resectable_disease_is_resected_not_transplanted(assess_with):
    _, o = assess_with(age_years=45)
    assert o["liver_transplant"]["verdict"] == "not_recommended"
