"""The analyses recover the effects the calibrated synthetic registry was drawn with.

``nelm synth --registry`` draws overall survival from each modality's published curve with
the Mayo 2010 hazard ratios (synchronous 1.9, non-functional 2.0, extrahepatic disease 3.0,
read from the evidence record), centred so that each modality's patients have the published
median. At a fixed seed: every generating hazard ratio lies inside the Cox model's 95 % CI,
and each modality's Kaplan–Meier median lies within 10 % of the published one (and its CI
covers it).
"""
from __future__ import annotations

import pytest

from nelm.screen.synth import registry_truth

TRUTH = registry_truth()
TERMS = {"liver.timing": "liver.timing=synchronous", "functional_syndrome": "functional_syndrome:none",
         "extrahepatic.present": "extrahepatic.present"}


def test_truth_is_read_from_the_evidence():
    hrs = {p["field"]: p["hazard_ratio"] for p in TRUTH["prognostic"]}
    assert hrs == {"liver.timing": 1.9, "functional_syndrome": 2.0, "extrahepatic.present": 3.0}
    assert TRUTH["modalities"]["surgery"]["os_median_months"] == pytest.approx(84.0)
    assert TRUTH["modalities"]["intra_arterial"]["os_median_months"] == pytest.approx(38.9)


@pytest.mark.parametrize("prognostic", TRUTH["prognostic"], ids=lambda p: p["field"])
def test_cox_recovers_the_generating_hazard_ratios(design_result, prognostic):
    terms = {t["term"]: t for t in design_result.report["cox"]["terms"]}
    t = terms[TERMS[prognostic["field"]]]
    assert t["ci_low"] <= prognostic["hazard_ratio"] <= t["ci_high"], t
    assert t["p"] < 0.001


def _median_close(summary, published):
    lo, hi = summary["median_ci"]
    assert lo <= published <= hi, summary
    assert summary["median_months"] == pytest.approx(published, rel=0.10)


@pytest.mark.parametrize("arm,modality", [("Surgery", "surgery"), ("Intra-arterial therapy", "intra_arterial")])
def test_design_arms_recover_the_published_medians(design_result, arm, modality):
    groups = {g["group"]: g for g in design_result.report["kaplan_meier"]["groups"]}
    _median_close(groups[arm], TRUTH["modalities"][modality]["os_median_months"])


def test_treatment_groups_recover_prrt_and_nec_medians(big_registry):
    from nelm.cohort.analysis import analyse

    report = analyse(big_registry, figures=False).report
    groups = {g["group"]: g for g in report["kaplan_meier"]["groups"]}
    _median_close(groups["PRRT"], TRUTH["modalities"]["prrt"]["os_median_months"])
    _median_close(groups["platinum-etoposide"], TRUTH["modalities"]["nec_chemotherapy"]["os_median_months"])


def test_pfs_uses_progression_columns_and_names_the_exclusions(big_registry):
    from nelm.cohort.analysis import analyse

    report = analyse(big_registry, endpoint="pfs", figures=False).report
    groups = {g["group"]: g for g in report["kaplan_meier"]["groups"]}
    assert set(groups) == {"PRRT", "platinum-etoposide"}   # the modalities with a published PFS
    _median_close(groups["platinum-etoposide"], TRUTH["modalities"]["nec_chemotherapy"]["pfs_median_months"])
    (excluded,) = report["flow"]["excluded"]
    assert "progression-free survival not recorded" in excluded["reason"]
    assert excluded["n"] == report["flow"]["rows_valid"] - report["flow"]["analysed"]


def test_matching_balances_and_keeps_the_direction_of_the_published_comparison(design_result):
    ps = design_result.report["propensity"]
    assert ps["caliper_sd"] == 0.2 and ps["pairs"] > 500
    before = {b["term"]: b["smd_before"] for b in ps["balance"]}
    assert abs(before["Hepatic tumour burden (per unit)"]) > 0.3     # confounding by indication was there
    assert all(abs(b["smd_after"]) < 0.1 for b in ps["balance"]), ps["balance"]
    (hr,) = ps["matched"]["cox"]["terms"]
    assert ps["matched"]["cox"]["robust"]
    assert hr["ci_high"] < 1      # surgery better than IAT in matched patients, as Mayo 2011 found
    arms = {g["group"]: g["n"] for g in ps["matched"]["kaplan_meier"]}
    assert arms["Surgery"] == arms["Intra-arterial therapy"] == ps["pairs"]


def test_same_seed_same_pairs(big_registry, design_result):
    from nelm.cohort.analysis import analyse

    again = analyse(big_registry, design="mayo2011", figures=False).report["propensity"]
    first = design_result.report["propensity"]
    assert again["pairs"] == first["pairs"]
    assert again["matched"]["cox"]["terms"][0]["hr"] == pytest.approx(first["matched"]["cox"]["terms"][0]["hr"])


def test_design_adjusts_for_the_propensity_covariates_and_finds_no_effect_where_none_was_drawn(big_registry):
    from nelm.cohort.analysis import analyse

    terms = {t["term"]: t for t in analyse(big_registry, design="mayo2011", figures=False).report["cox"]["terms"]}
    functional = terms["derived.hormonal_syndrome"]        # functional vs not: the inverse of Mayo 2010's 2.0
    assert functional["ci_low"] <= 1 / 2.0 <= functional["ci_high"]
    assert terms["derived.extrahepatic_disease"]["ci_low"] <= 3.0 <= terms["derived.extrahepatic_disease"]["ci_high"]
    for null in ("liver.burden_percent", "primary.site:unknown_primary", "symptomatic"):
        assert terms[null]["ci_low"] <= 1.0 <= terms[null]["ci_high"], terms[null]
