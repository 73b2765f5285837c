"""Knowledge fixes for the defects the red-line test found (tests/test_safety_red_lines.py), each
checked on the verdict itself: the red-line test checks the plans."""
from nelm.assessment import assess
from nelm.testing import make_patient

UNRESECTABLE = {"liver.resectable_fraction_percent": 50, "liver.pattern": "disseminated", "liver.lesion_count": 30,
                "liver.burden_percent": 40, "liver.lobes": "bilobar", "course.status": "progressive"}


def _verdicts(**changes):
    return {o["id"]: o["verdict"] for o in assess(make_patient(**changes))["options"]}


def test_chemoembolization_that_failed_within_six_months_is_not_repeated():
    early = _verdicts(prior_therapies=[{"therapy": "tace", "outcome": "progression", "months_to_progression": 4}],
                      **UNRESECTABLE)
    assert early["tace"] == "not_recommended"
    unknown = _verdicts(prior_therapies=[{"therapy": "tace", "outcome": "progression"}], **UNRESECTABLE)
    assert unknown["tace"] in ("reasonable", "undetermined")


def test_an_embolization_not_tolerated_is_not_offered_again():
    v = _verdicts(prior_therapies=[{"therapy": "tace", "outcome": "intolerance"}], **UNRESECTABLE)
    assert v["tace"] == "not_recommended"


def test_uptake_below_the_liver_is_no_antiproliferative_indication_for_the_analogue():
    assert _verdicts(sstr_uptake_krenning=1, **UNRESECTABLE)["ssa"] == "not_recommended"
    # a syndrome keeps it
    assert _verdicts(sstr_uptake_krenning=1, functional_syndrome="carcinoid", symptomatic=True,
                     **UNRESECTABLE)["ssa"] == "preferred"


def test_resectable_liver_disease_is_not_transplanted_when_resection_is_barred():
    assert _verdicts(age_years=50, **{"liver.bilirubin_mg_dl": 2.5})["liver_transplant"] == "not_recommended"


def test_deposits_judged_unremovable_are_extrahepatic_disease():
    a = assess(make_patient(extrahepatic={"resectable": False}))
    plan = a["plan"]
    assert all(s["intent"] != "curative" for s in plan["steps"] if s["when"] == "now"), plan["steps"]


def test_a_disease_that_progressed_on_the_analogue_with_nothing_given_since_is_planned_as_progressing():
    """Red-line test, kind 5: with the course unrecorded the plan assumed the disease stable and restarted
    the analogue alone, PRRT only 'at progression'. The last thing the record says is a progression."""
    from nelm.patient import validate_patient

    doc = {"age_years": 62, "ecog": 1, "primary": {"site": "jejunum_ileum", "resected": True},
           "pathology": {"differentiation": "well", "ki67_percent": 5}, "liver": {"lobes": "bilobar", "resectable": False},
           "sstr_imaging": "positive", "prior_therapies": [{"therapy": "ssa", "outcome": "progression"}]}
    plan = assess(validate_patient(doc))["plan"]
    first = plan["steps"][0]
    assert first["options"][0] == "prrt" and "ssa" in first["add_on"], first
    course = [a for a in plan["assumptions"] if a["field"] == "course.status"]
    assert course and course[0]["assumed"] == "progressive"
    stable = [b for b in plan["branches"] if any(c["field"] == "course.status" and c["value"] == "stable" for c in b["if"])]
    assert stable, plan["branches"]
    # on a new treatment whose outcome is not recorded, the next restaging decides instead
    doc["prior_therapies"].append({"therapy": "everolimus", "ongoing": True})
    plan = assess(validate_patient(doc))["plan"]
    assert not any(a["field"] == "course.status" and a["assumed"] == "progressive" for a in plan["assumptions"])
