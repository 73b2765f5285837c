"""Portal vein thrombosis as a pre-treatment check (checks.yaml).

Portal vein patency is read on the planning imaging before any embolization or ablation. While
it is unknown, TAE/TACE/DEB-TACE and thermal ablation get the verdict of a patent portal vein
and name "no portal vein thrombosis" among their conditions; a known thrombosis still rules
them out, and SIRT (which it does not rule out) becomes preferred where the sources prefer it.
"""
from nelm.assessment import assess
from nelm.knowledge import load
from nelm.patient import validate_patient
from nelm.plan import _lead_conditions, raises_only

PVT = "liver.portal_vein_thrombosis"
KB = load()

# sparse records: what a referral note or a case report gives, nothing about the portal vein
REFRACTORY_CARCINOID = {
    "functional_syndrome": "carcinoid", "symptomatic": True, "functional_control": "refractory",
    "pathology": {"differentiation": "well", "ki67_percent": 2},
    "primary": {"site": "jejunum_ileum", "resected": True},
    "liver": {"pattern": "disseminated", "lobes": "bilobar", "burden_percent": 30},
    "extrahepatic": {"present": False},
    "prior_therapies": [{"therapy": "ssa", "outcome": "stable", "ongoing": True}],
}
PROGRESSIVE_BULKY_CARCINOID = {
    "functional_syndrome": "carcinoid", "symptomatic": True,
    # G1 small-intestinal: the embolization the plan names is bland (bland_embolization_first)
    "pathology": {"differentiation": "well", "ki67_percent": 2},
    "primary": {"site": "jejunum_ileum", "resected": True},
    "liver": {"pattern": "disseminated", "lobes": "bilobar", "burden_percent": 60},
    "extrahepatic": {"present": False}, "course": {"status": "progressive"},
    "prior_therapies": [{"therapy": "ssa", "outcome": "progression"}],
}


def _with(doc, **liver):
    return {**doc, "liver": {**doc["liver"], **liver}}


def _assess(doc):
    a = assess(validate_patient(doc))
    return a, {o["id"]: o for o in a["options"]}


def _pvt_condition(option):
    return next((c for c in option.get("conditions", []) if c["field"] == PVT), None)


def test_portal_vein_thrombosis_is_a_check_assumed_absent():
    check = next(c for c in KB.checks if c.field == PVT)
    assert check.assume == "false" and check.sources
    # the plan no longer keeps its own assumption record: the check makes it unreachable
    assert PVT not in {a.field for a in KB.assumptions}


def test_refractory_carcinoid_syndrome_gets_embolization_in_the_first_step():
    """Issue 19 item 2: arterial therapy comes first when the syndrome is refractory; a record
    silent on the portal vein no longer leaves TAE undetermined and out of the first step."""
    a, o = _assess(REFRACTORY_CARCINOID)
    for i in ("tae", "tace"):
        assert o[i]["verdict"] == "preferred", i
        assert _pvt_condition(o[i])["requirement"] == "no portal vein thrombosis", i
    assert "tae" in a["plan"]["steps"][0]["options"]
    # the same as with a patent portal vein known, less the condition
    known, ko = _assess(_with(REFRACTORY_CARCINOID, portal_vein_thrombosis=False))
    assert ko["tae"]["verdict"] == "preferred" and _pvt_condition(ko["tae"]) is None
    assert known["plan"]["steps"][0]["options"] == a["plan"]["steps"][0]["options"]


def test_a_known_thrombosis_still_rules_out_embolization_and_ablation():
    a, o = _assess(_with(REFRACTORY_CARCINOID, portal_vein_thrombosis=True))
    for i in ("tae", "tace", "deb_tace", "thermal_ablation"):
        assert o[i]["verdict"] == "contraindicated", i
        assert o[i]["reasons"][0]["rule"] == "pvt_or_impaired_liver", i
    assert o["sirt"]["verdict"] in ("preferred", "reasonable")
    now = a["plan"]["steps"][0]["options"]
    assert not {"tae", "tace", "deb_tace"} & set(now) and "sirt" in now


def test_impaired_liver_function_keeps_its_own_condition_text():
    _, o = _assess(REFRACTORY_CARCINOID)
    texts = {c["field"]: c["requirement"] for c in o["tae"]["conditions"]}
    assert texts["liver.liver_function"] == "liver function tests normal"
    _, o = _assess(_with(REFRACTORY_CARCINOID, liver_function="impaired"))
    assert o["tae"]["verdict"] == "contraindicated"


def test_sirt_is_preferred_with_a_thrombosis_and_names_the_check_while_unknown(assess_with):
    """Progressive unresectable disease under half the liver, no extrahepatic disease: a known
    thrombosis rules out TAE/TACE and makes SIRT preferred (as before); while unknown, SIRT has the
    verdict of a patent portal vein and says what it rests on, in the direction it goes."""
    liver = {"liver.burden_percent": 35, "liver.pattern": "dominant_with_satellites", "liver.lesion_count": 6,
             "liver.largest_lesion_cm": 5, "liver.resectable_fraction_percent": 40}
    progressive = {"course.status": "progressive", "course.stable_months": 0, "course.progression_within_12_months": True}
    _, found = assess_with(symptomatic=False, **liver, **progressive, **{PVT: True})
    assert found["tae"]["verdict"] == found["tace"]["verdict"] == "contraindicated"
    assert found["sirt"]["verdict"] == "preferred" and found["sirt"]["reasons"][0]["rule"] == "only_arterial_option"
    _, unknown = assess_with(symptomatic=False, **liver, **progressive, **{PVT: None})
    assert unknown["tae"]["verdict"] == unknown["tace"]["verdict"] == "preferred"
    assert unknown["sirt"]["verdict"] == "reasonable"
    assert "make SIRT preferred" in _pvt_condition(unknown["sirt"])["requirement"]
    _, patent = assess_with(symptomatic=False, **liver, **progressive, **{PVT: False})
    assert patent["sirt"]["verdict"] == "reasonable" and _pvt_condition(patent["sirt"]) is None


def test_a_check_that_can_only_raise_sirt_is_no_check_a_sirt_led_plan_hangs_on():
    assert raises_only(KB, "sirt", PVT)
    assert not raises_only(KB, "tae", PVT) and not raises_only(KB, "thermal_ablation", PVT)
    assert not raises_only(KB, "sirt", "liver.lung_shunt_percent")
    options = {"sirt": {"conditions": [{"field": PVT, "requirement": "x"},
                                       {"field": "liver.lung_shunt_percent", "requirement": "y"}]}}
    assert [c["field"] for c in _lead_conditions(options, "sirt", KB)] == ["liver.lung_shunt_percent"]
    # the plan's per-field reading and the screen's per-rule reading agree only if no option has
    # both kinds of rule on one check (engine/plan_program.has_conditions)
    from nelm.plan import _checks_read
    for opt in KB.options:
        for c in KB.checks:
            kinds = {r.raises_only for _, r in opt.requirement_rules() if c.field in _checks_read(KB, opt.id, r)}
            assert len(kinds) <= 1, (opt.id, c.field)


def test_every_rule_reading_the_portal_vein_says_what_passing_means():
    from nelm.plan import _checks_read
    readers = [(opt.id, r) for opt in KB.options for _, r in opt.requirement_rules() if PVT in _checks_read(KB, opt.id, r)]
    assert {oid for oid, _ in readers} >= {"tae", "tace", "deb_tace", "thermal_ablation", "sirt"}
    for oid, r in readers:
        assert isinstance(r.requirement, dict) and "portal vein thrombosis" in r.requirement[PVT], (oid, r.id)


def test_an_embolization_led_plan_says_what_leads_if_a_thrombosis_is_found():
    """With the portal vein unknown, a plan led by TAE assumes it patent; its fallback names the
    lead of the plan with a thrombosis found (settled, not guessed), never TACE, which it rules
    out as well, and never says SIRT may be ruled out."""
    a, _ = _assess(PROGRESSIVE_BULKY_CARCINOID)
    plan = a["plan"]
    assert plan["steps"][0]["options"][0] == "tae"
    check = next(x for x in plan["assumptions"] if x["field"] == PVT)
    assert check["check"] and check["assumed"] == "no portal vein thrombosis"
    found, _ = _assess(_with(PROGRESSIVE_BULKY_CARCINOID, portal_vein_thrombosis=True))
    from nelm.plan import _label
    new_lead = found["plan"]["steps"][0]["options"][0]
    assert new_lead not in ("tae", "tace", "deb_tace")
    assert check["if_not"].endswith(f"; {_label(new_lead)} would lead instead.")
    # (chemoembolization, which the same check rules out, is not named beside bland embolization in this plan)
    assert "bland embolization (TAE)" in check["if_not"].split(";")[0]
    for x in plan["assumptions"]:
        assert "SIRT may be ruled out" not in x["if_not"]
