"""PRRT, SSAs, targeted agents, chemotherapy, interferon, EBRT, trials."""
import pytest

UNRESECTABLE = {"liver.burden_percent": 35, "liver.pattern": "disseminated", "liver.lesion_count": 30,
                "liver.largest_lesion_cm": 3, "liver.resectable_fraction_percent": 20}
PROGRESSIVE = {"course.status": "progressive", "course.progression_within_12_months": True, "course.stable_months": 0}
ANALOGUE_FAILED = [{"therapy": "ssa", "outcome": "progression", "ongoing": True}]
NEC = {"pathology.differentiation": "poor", "pathology.ki67_percent": 75, "pathology.mitoses_per_10hpf": 40}


def test_prrt_needs_sstr_positive_imaging(assess_with):
    _, o = assess_with(sstr_imaging="negative", **UNRESECTABLE, **PROGRESSIVE)
    assert o["prrt"]["verdict"] == "contraindicated"
    _, o = assess_with(sstr_imaging="positive", **UNRESECTABLE, **PROGRESSIVE, prior_therapies=ANALOGUE_FAILED)
    assert o["prrt"]["verdict"] == "preferred"


@pytest.mark.parametrize("changes,prrt", [
    ({}, "reasonable"),                                              # never treated: the analogue first (NETTER-1 setting later)
    ({"prior_therapies": ANALOGUE_FAILED}, "preferred"),             # progressed on the analogue: NETTER-1
    ({"pathology.ki67_percent": 15}, "preferred"),                   # Ki-67 10-55 %: first-line PRRT (NETTER-2)
    ({"primary.site": "pancreas"}, "preferred"),                     # pancreatic: beside everolimus (COMPETE)
    ({"prior_therapies": [{"therapy": "liver_resection", "outcome": "progression"}]}, "reasonable"),  # a recurrence after surgery
])
def test_prrt_waits_for_the_analogue_in_an_untreated_non_pancreatic_net(assess_with, changes, prrt):
    base = {"primary.site": "jejunum_ileum", "pathology.differentiation": "well", "pathology.ki67_percent": 5,
            "functional_syndrome": "none", "sstr_imaging": "positive", "prior_therapies": []}
    _, o = assess_with(**{**base, **UNRESECTABLE, **PROGRESSIVE, **changes})
    assert o["prrt"]["verdict"] == prrt
    if prrt == "reasonable":
        assert o["ssa"]["verdict"] == "preferred"


def test_prrt_does_worse_with_extensive_liver_involvement(assess_with):
    _, o = assess_with(**{**UNRESECTABLE, **PROGRESSIVE, "liver.burden_percent": 70})
    assert o["prrt"]["verdict"] == "reasonable"
    assert "kwekkeboom2008" in o["prrt"]["reasons"][0]["sources"]


def test_unknown_sstr_status_is_asked_for(assess_with):
    a, o = assess_with(sstr_imaging=None, **UNRESECTABLE, **PROGRESSIVE)
    assert o["prrt"]["verdict"] == "undetermined" and o["ssa"]["verdict"] == "undetermined"
    missing = {m["field"]: m["affects"] for m in a["missing_data"]}
    assert {"prrt", "ssa"} <= set(missing["sstr_imaging"])


def test_ssa_for_sstr_positive_unresectable_g1_g2_and_for_hormonal_symptoms(assess_with):
    _, o = assess_with(**UNRESECTABLE)
    assert (o["ssa"]["verdict"], o["ssa"]["intent"]) == ("preferred", "disease_control")
    _, o = assess_with(functional_syndrome="carcinoid", symptomatic=True, sstr_imaging="negative", **UNRESECTABLE)
    assert (o["ssa"]["verdict"], o["ssa"]["intent"]) == ("preferred", "symptom_control")
    _, o = assess_with(sstr_imaging="negative", **UNRESECTABLE)
    assert o["ssa"]["verdict"] == "not_recommended"


def test_everolimus_and_sunitinib_for_progressive_pancreatic_net(assess_with):
    _, o = assess_with(**{"primary.site": "pancreas"}, **UNRESECTABLE, **PROGRESSIVE)
    assert o["everolimus"]["verdict"] == "preferred" and o["sunitinib"]["verdict"] == "preferred"
    assert "radiant3" in o["everolimus"]["reasons"][0]["sources"]


def test_sunitinib_only_for_pancreatic_and_everolimus_for_nonfunctional_gi(assess_with):
    _, o = assess_with(**UNRESECTABLE, **PROGRESSIVE)
    assert o["sunitinib"]["verdict"] == "not_recommended"
    assert o["everolimus"]["verdict"] == "preferred"
    assert "radiant4" in o["everolimus"]["reasons"][0]["sources"]


def test_everolimus_with_ssa_in_carcinoid_syndrome(assess_with):
    _, o = assess_with(functional_syndrome="carcinoid", symptomatic=True, **UNRESECTABLE, **PROGRESSIVE)
    assert o["everolimus"]["verdict"] == "reasonable"
    assert "radiant2" in o["everolimus"]["reasons"][0]["sources"]


def test_targeted_agents_not_for_stable_disease(assess_with):
    _, o = assess_with(**{"primary.site": "pancreas"}, **UNRESECTABLE)
    assert o["everolimus"]["verdict"] == "not_recommended" and o["sunitinib"]["verdict"] == "not_recommended"


def test_platinum_for_nec_and_not_for_low_grade(assess_with):
    _, o = assess_with(**NEC)
    assert o["platinum_etoposide"]["verdict"] == "preferred"
    assert o["clinical_trial"]["verdict"] == "preferred"
    _, o = assess_with(**UNRESECTABLE)
    assert o["platinum_etoposide"]["verdict"] == "not_recommended"


def test_alkylating_chemotherapy_for_pancreatic_net_but_not_over_75_percent(assess_with):
    _, o = assess_with(**{"primary.site": "pancreas"}, **UNRESECTABLE, **PROGRESSIVE)
    assert o["capecitabine_temozolomide"]["verdict"] == "reasonable"
    assert o["streptozocin_based"]["verdict"] == "reasonable"
    _, o = assess_with(**{"primary.site": "pancreas", **UNRESECTABLE, **PROGRESSIVE, "liver.burden_percent": 80})
    assert o["capecitabine_temozolomide"]["verdict"] == "not_recommended"
    assert "kouvaraki2004" in o["streptozocin_based"]["reasons"][0]["sources"]


def test_interferon_for_symptomatic_carcinoid_syndrome_only(assess_with):
    _, o = assess_with(functional_syndrome="carcinoid", symptomatic=True, functional_control="refractory", **UNRESECTABLE)
    assert o["interferon_alpha"]["verdict"] == "reasonable"
    _, o = assess_with(functional_syndrome="carcinoid", symptomatic=True, functional_control="untreated", **UNRESECTABLE)
    assert o["interferon_alpha"]["verdict"] == "not_recommended"  # the analogue first
    _, o = assess_with(**UNRESECTABLE)
    assert o["interferon_alpha"]["verdict"] == "not_recommended"


def test_ebrt_palliates_extrahepatic_disease(assess_with):
    _, o = assess_with(extrahepatic={"present": True, "sites": ["bone"], "resectable": False, "symptomatic": True},
                       **UNRESECTABLE)
    assert (o["ebrt"]["verdict"], o["ebrt"]["intent"]) == ("reasonable", "palliative")
    # radiotherapy palliates symptomatic sites, not asymptomatic ones
    _, o = assess_with(extrahepatic={"present": True, "sites": ["lymph_nodes"], "resectable": True, "symptomatic": False},
                       **UNRESECTABLE)
    assert o["ebrt"]["verdict"] == "not_recommended"
    _, o = assess_with(symptomatic=None, extrahepatic={"present": True, "sites": ["bone"], "resectable": False},
                       **UNRESECTABLE)
    assert o["ebrt"]["verdict"] == "undetermined"
    # a patient known to have no symptoms has no symptomatic site (contract v3, facts that follow from facts) ...
    _, o = assess_with(symptomatic=False, extrahepatic={"present": True, "sites": ["bone"], "resectable": False},
                       **UNRESECTABLE)
    assert o["ebrt"]["verdict"] == "not_recommended"
    # ... and a symptomatic deposit is a symptom: the patient is symptomatic
    a, _ = assess_with(symptomatic=None, extrahepatic={"present": True, "sites": ["bone"], "resectable": False,
                                                       "symptomatic": True}, **UNRESECTABLE)
    assert "symptomatic" not in {m["field"] for m in a["missing_data"]}
    _, o = assess_with(**UNRESECTABLE)
    assert o["ebrt"]["verdict"] == "not_recommended"


def test_cabozantinib_after_progression_on_or_intolerance_of_a_non_analogue_line(assess_with):
    """Issue 19: CABINET required progression on (or intolerance of) an approved non-analogue therapy."""
    ssa = {"therapy": "ssa", "outcome": "progression"}
    a, o = assess_with(prior_therapies=[ssa], **UNRESECTABLE, **PROGRESSIVE)
    assert o["cabozantinib"]["verdict"] == "not_recommended"
    assert o["cabozantinib"]["reasons"][0]["rule"] == "analogue_progression_only"
    for line in ({"therapy": "prrt", "outcome": "progression"}, {"therapy": "everolimus", "outcome": "intolerance"}):
        a, o = assess_with(prior_therapies=[ssa, line], **UNRESECTABLE, **PROGRESSIVE)
        assert o["cabozantinib"]["verdict"] == "reasonable", line
        assert o["cabozantinib"]["reasons"][0]["sources"] == ["cabinet"]
        # small-intestinal NET: cabozantinib is in the plan (now or at progression)
        assert "cabozantinib" in [x for s in a["plan"]["steps"] for x in s["options"]], line
    # chemotherapy in a pancreatic NET counts as CABINET's pancreatic cohort did; not outside the pancreas
    cap = {"therapy": "capecitabine_temozolomide", "outcome": "progression"}
    _, o = assess_with(prior_therapies=[ssa, cap], **UNRESECTABLE, **PROGRESSIVE, **{"primary.site": "pancreas"})
    assert o["cabozantinib"]["verdict"] == "reasonable"
    _, o = assess_with(prior_therapies=[ssa, cap], **UNRESECTABLE, **PROGRESSIVE)
    assert o["cabozantinib"]["verdict"] == "not_recommended"


def test_chemotherapy_after_other_lines_counts_lines_besides_the_analogue(assess_with):
    ssa = {"therapy": "ssa", "outcome": "progression"}
    prrt = {"therapy": "prrt", "outcome": "progression"}
    _, o = assess_with(prior_therapies=[ssa, prrt], **UNRESECTABLE, **PROGRESSIVE)
    assert o["capecitabine_temozolomide"]["verdict"] == "not_recommended"
    _, o = assess_with(prior_therapies=[ssa, prrt, {"therapy": "everolimus", "outcome": "intolerance"}],
                       **UNRESECTABLE, **PROGRESSIVE)
    assert o["capecitabine_temozolomide"]["verdict"] == "reasonable"
    assert o["capecitabine_temozolomide"]["reasons"][0]["rule"] == "after_other_lines"


def test_thoracic_carcinoids_everolimus_and_prrt_say_whom_the_trials_enrolled(assess_with):
    """Issue 19: everolimus had 'no indication' for a progressive thymic carcinoid; PRRT reasons for lung and
    thymus quoted GEP trials without saying so."""
    for site, verdict in (("thymus", "reasonable"), ("lung", "preferred")):
        _, o = assess_with(prior_therapies=[{"therapy": "ssa", "outcome": "progression"}], **UNRESECTABLE, **PROGRESSIVE,
                           **{"primary.site": site})
        assert o["everolimus"]["verdict"] == verdict, site
        assert "esmo2021_thoracic" in o["everolimus"]["reasons"][0]["sources"]
        assert o["prrt"]["verdict"] == "reasonable"
        assert o["prrt"]["reasons"][0]["rule"] == "progressive_thoracic"
        assert "gastro-entero-pancreatic NET only" in o["prrt"]["reasons"][0]["text"]


def test_clinical_trial_after_two_progressions(assess_with):
    _, o = assess_with(prior_therapies=[{"therapy": "ssa", "outcome": "progression"},
                                        {"therapy": "prrt", "outcome": "progression"}], **UNRESECTABLE, **PROGRESSIVE)
    assert o["clinical_trial"]["verdict"] == "preferred"


def test_ssa_after_progression_on_ssa_is_only_a_backbone(assess_with):
    _, o = assess_with(prior_therapies=[{"therapy": "ssa", "outcome": "progression"}], **UNRESECTABLE, **PROGRESSIVE)
    assert o["ssa"]["verdict"] == "reasonable"
    assert o["prrt"]["verdict"] == "preferred"


def test_no_interferon_when_curative_resection_is_possible(assess_with):
    _, o = assess_with(functional_syndrome="carcinoid", symptomatic=True)
    assert o["interferon_alpha"]["verdict"] == "not_recommended"


NET_G3 = {"pathology.differentiation": "well", "pathology.ki67_percent": 30, "sstr_imaging": "positive"}


def test_platinum_is_not_the_first_line_of_a_net_g3_within_the_netter2_range(assess_with):
    """NET G3 (Ki-67 up to 55 %): temozolomide-based chemotherapy or PRRT first, platinum
    later (net_g3_first_line_2021, nordic_nec2_2025); above 55 %, or after those, an option."""
    _, o = assess_with(**UNRESECTABLE, **NET_G3)
    assert o["platinum_etoposide"]["verdict"] == "not_recommended"
    assert o["platinum_etoposide"]["reasons"][0]["rule"] == "net_grade_3_first_line"
    _, o = assess_with(**UNRESECTABLE, **{**NET_G3, "pathology.ki67_percent": 60})
    assert o["platinum_etoposide"]["verdict"] == "reasonable"
    _, o = assess_with(**UNRESECTABLE, **NET_G3, **PROGRESSIVE,
                       prior_therapies=[{"therapy": "capecitabine_temozolomide", "outcome": "progression"}])
    assert o["platinum_etoposide"]["verdict"] == "reasonable"


def test_prrt_never_reads_a_net_g3_within_the_range_as_above_it(assess_with):
    _, o = assess_with(**UNRESECTABLE, **{**NET_G3, "pathology.ki67_percent": 23, "sstr_imaging": None})
    assert not any("above the 55 %" in r["text"] for r in o["prrt"]["reasons"])


def test_an_analogue_alone_is_not_the_first_choice_after_other_lines(assess_with):
    """Progressive pancreatic NET after everolimus and sunitinib, never given an analogue: the
    analogue trials enrolled untreated patients, so SSA monotherapy is capped at reasonable
    (real case rc43); in a first line it stays preferred."""
    after = [{"therapy": "everolimus", "outcome": "progression"}, {"therapy": "sunitinib", "outcome": "progression"}]
    _, o = assess_with(**UNRESECTABLE, **PROGRESSIVE, sstr_imaging="positive", prior_therapies=after)
    assert o["ssa"]["verdict"] == "reasonable"
    assert any(r.get("rule") == "after_other_lines" for r in o["ssa"]["reasons"])
    _, o = assess_with(**UNRESECTABLE, sstr_imaging="positive", prior_therapies=[])
    assert o["ssa"]["verdict"] == "preferred"


def test_a_targeted_drug_that_controls_the_disease_is_continued(assess_with):
    """Board review: a patient on everolimus (after progression on the analogue) with stable
    disease had everolimus 'not recommended: disease not progressive' and was planned back onto
    the analogue; a drug still given without progression is continued."""
    history = [{"therapy": "ssa", "outcome": "progression", "ongoing": False},
               {"therapy": "everolimus", "outcome": "stable", "ongoing": True}]
    a, o = assess_with(**UNRESECTABLE, sstr_imaging="positive", prior_therapies=history,
                       **{"course.status": "stable", "course.progression_within_12_months": False})
    assert o["everolimus"]["verdict"] == "preferred"
    assert o["everolimus"]["reasons"][0]["rule"] == "continue_ongoing"
    assert a["plan"]["steps"][0]["options"][0] == "everolimus"
