"""ENETS curative-resection and Milan transplant checklists, item by item."""
import pytest

from nelm.assessment import assess
from nelm.testing import make_patient

MILAN_OK = {"age_years": 50, "primary.site": "pancreas", "liver.burden_percent": 25, "liver.resectable_fraction_percent": 20,
            "liver.pattern": "disseminated", "liver.lesion_count": 25}


def criteria(**changes):
    return assess(make_patient(**changes))["criteria"]


def items(cset):
    return {i["id"]: i["status"] for i in cset["items"]}


def test_enets_all_met_for_solitary_resectable_g1():
    c = criteria()["enets_curative_resection"]
    assert c["status"] == "met" and set(items(c).values()) == {"met"}


@pytest.mark.parametrize("changes,item", [
    ({"pathology.ki67_percent": 30}, "resectable_g1_g2"),
    ({"liver.resectable_fraction_percent": 90}, "resectable_g1_g2"),
    ({"fit_for_major_surgery": False}, "resectable_g1_g2"),
    ({"right_heart_insufficiency": True}, "no_right_heart_insufficiency"),
    ({"extrahepatic": {"present": True, "sites": ["bone"], "resectable": False}}, "no_unresectable_nodal_or_extra_abdominal"),
    ({"extrahepatic": {"present": True, "sites": ["peritoneum"], "peritoneal_carcinomatosis": "diffuse_unresectable"}},
     "no_diffuse_peritoneal_carcinomatosis"),
])
def test_enets_each_item_can_fail_alone(changes, item):
    c = criteria(**changes)["enets_curative_resection"]
    failed = [k for k, v in items(c).items() if v == "not_met"]
    assert failed == [item] and c["status"] == "not_met"


def test_enets_resectable_nodes_and_limited_peritoneal_disease_still_qualify():
    c = criteria(extrahepatic={"present": True, "sites": ["lymph_nodes", "peritoneum"], "resectable": True,
                               "peritoneal_carcinomatosis": "limited_resectable"})["enets_curative_resection"]
    assert c["status"] == "met"


def test_enets_unknown_item_makes_the_set_unknown_and_quotes_the_values():
    c = criteria(right_heart_insufficiency=None)["enets_curative_resection"]
    assert c["status"] == "unknown"
    item = next(i for i in c["items"] if i["id"] == "no_right_heart_insufficiency")
    assert item["status"] == "unknown" and "unknown" in item["reason"]
    assert "Ki-67 1 %" in next(i for i in c["items"] if i["id"] == "resectable_g1_g2")["reason"]


def test_one_not_met_item_settles_the_set_even_with_unknowns():
    c = criteria(right_heart_insufficiency=None, fit_for_major_surgery=False)["enets_curative_resection"]
    assert c["status"] == "not_met"


def test_milan_met_for_the_classic_candidate():
    assert criteria(**MILAN_OK)["milan_transplant"]["status"] == "met"


@pytest.mark.parametrize("changes,item", [
    ({"pathology.ki67_percent": 12}, "low_grade"),
    ({"primary.site": "rectum"}, "portal_drainage"),
    ({"primary.site": "lung"}, "portal_drainage"),
    ({"primary.resected": False}, "primary_removed"),
    ({"liver.burden_percent": 51}, "liver_involvement"),
    ({"course.stable_months": 5}, "stable_six_months"),
    ({"course.status": "progressive"}, "stable_six_months"),
    ({"age_years": 56}, "age"),
    ({"extrahepatic": {"present": True, "sites": ["lymph_nodes"]}}, "no_extrahepatic_disease"),
    ({"transplant_contraindication": True}, "no_other_contraindication"),
])
def test_milan_each_item_can_fail_alone(changes, item):
    c = criteria(**{**MILAN_OK, **changes})["milan_transplant"]
    failed = [k for k, v in items(c).items() if v == "not_met"]
    assert failed == [item]


def test_milan_high_grade_fails_grade_and_exclusion():
    c = criteria(**{**MILAN_OK, "pathology.differentiation": "poor", "pathology.ki67_percent": 60})["milan_transplant"]
    failed = {k for k, v in items(c).items() if v == "not_met"}
    assert failed == {"low_grade", "not_high_grade"}


def test_milan_boundaries_as_written_in_review_000():
    assert criteria(**{**MILAN_OK, "age_years": 55, "liver.burden_percent": 50})["milan_transplant"]["status"] == "met"


def test_review_002_wording_is_kept_and_shown_at_the_boundary():
    a = assess(make_patient(**{**MILAN_OK, "age_years": 55}))
    topics = {d["topic"] for d in a["disagreements"]}
    assert "milan_transplant__age" in topics
    b = assess(make_patient(**{**MILAN_OK, "age_years": 55}), guideline="review002")
    assert b["criteria"]["milan_transplant"]["status"] == "not_met"
    assert b["knowledge_base"]["guideline"] == "review002"


def test_unverified_esmo_limits_no_longer_change_the_milan_verdict():
    # The ESMO 2020 Ki-67 <10 % and age <60 variants were removed (2026 verification pass: not confirmed
    # against the guideline text), so the ESMO profile now reads the Milan checklist as the reviews do.
    changes = {**MILAN_OK, "age_years": 58, "pathology.ki67_percent": 7}
    assert criteria(**changes)["milan_transplant"]["status"] == "not_met"
    esmo = assess(make_patient(**changes), guideline="esmo2020")
    assert esmo["criteria"]["milan_transplant"]["status"] == "not_met"
    assert {o["id"]: o["verdict"] for o in esmo["options"]}["liver_transplant"] == "not_recommended"
    assert not any("esmo2020" in d["verdict_changes"] for d in assess(make_patient(**changes))["disagreements"])


def test_a_disagreement_says_which_verdicts_the_other_source_would_change():
    a = assess(make_patient(**{**MILAN_OK, "age_years": 55}))
    d = next(x for x in a["disagreements"] if x["topic"] == "milan_transplant__age")
    change = next(c for c in d["verdict_changes"]["review002"] if c["option"] == "liver_transplant")
    assert (change["governing_verdict"], change["verdict"]) == ("reasonable", "not_recommended")


def test_milan_grade_item_follows_the_milan_group_with_review_002_as_its_variant():
    """Issue 19: Ki-67 5-9 % failed Milan on review 002's Ki-67 < 5 %, credited to Mazzaferro 2007; the Milan
    group's 2023 statement reads G1-G2 or Ki-67 under 10 %, and review 002's figure is its variant."""
    c = criteria(**{**MILAN_OK, "pathology.ki67_percent": 7})["milan_transplant"]
    assert items(c)["low_grade"] == "met"
    item = next(i for i in c["items"] if i["id"] == "low_grade")
    assert "citterio2023" in item["sources"] and "review002" not in item["sources"]
    a = assess(make_patient(**{**MILAN_OK, "pathology.ki67_percent": 7}))
    d = next(x for x in a["disagreements"] if x["topic"] == "milan_transplant__low_grade")
    assert {v["source"]: v["value"] for v in d["values"]} == {"reviews": "met", "review002": "not_met"}
    b = assess(make_patient(**{**MILAN_OK, "pathology.ki67_percent": 7}), guideline="review002")
    assert b["criteria"]["milan_transplant"]["status"] == "not_met"


def test_no_extrahepatic_disease_without_a_site_list_settles_the_extrahepatic_items():
    """A referral that says only 'no extrahepatic disease' (present: false, no site list) has no
    nodal, bone or other deposits to be unresectable: the ENETS items are met, not unknown, and
    resection of a fully removable G1 liver stays preferred (board review, controlled carcinoid
    syndrome going to hepatectomy)."""
    a = assess(make_patient(extrahepatic={"present": False}))
    c = a["criteria"]["enets_curative_resection"]
    assert items(c)["no_unresectable_nodal_or_extra_abdominal"] == "met"
    assert c["status"] == "met"
    assert next(o for o in a["options"] if o["id"] == "liver_resection")["verdict"] == "preferred"
    assert not any(f["field"].startswith("extrahepatic.sites") for f in a["missing_data"])
    # disease outside the liver that is present keeps its sites and resectability open
    c = criteria(extrahepatic={"present": True})["enets_curative_resection"]
    assert items(c)["no_unresectable_nodal_or_extra_abdominal"] == "unknown"
