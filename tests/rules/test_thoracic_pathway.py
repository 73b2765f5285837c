"""Lung and thymic carcinoids follow their own sequence (ESMO 2021 thoracic guidance).

Before, a lung or thymic carcinoid with unresectable liver metastases followed the small-intestinal
sequence (analogue, then PRRT before everolimus), and only the step's text said that the thoracic
guidance orders the lines differently. The guidance, as the evidence record esmo2021_thoracic
summarises it: an analogue first for receptor-positive, slowly growing disease of low proliferation;
everolimus first in most atypical carcinoids and after the analogue in typical ones (RADIANT-4 enrolled
lung primaries); PRRT mainly after the analogue and everolimus, earlier for an uncontrolled carcinoid
syndrome; temozolomide-based chemotherapy for disease refractory to everolimus.
"""
import copy

from nelm.assessment import assess
from nelm.patient import validate_patient

LUNG = {
    "ecog": 1, "primary": {"site": "lung", "resected": True},
    "liver": {"pattern": "disseminated", "lobes": "bilobar", "resectable": False, "burden_percent": 20},
    "extrahepatic": {"present": False}, "sstr_imaging": "positive", "functional_syndrome": "none",
    "symptomatic": False,
}


def _doc(**changes):
    d = copy.deepcopy(LUNG)
    d.update(copy.deepcopy(changes))
    return d


def _plan(doc):
    return assess(validate_patient(doc))["plan"]


def _step(plan, when):
    return next((s for s in plan["steps"] if s["when"] == when), None)


ATYPICAL_PROGRESSIVE_AFTER_SSA = _doc(
    pathology={"differentiation": "well", "ki67_percent": 12, "mitoses_per_10hpf": 5},
    course={"status": "progressive"}, prior_therapies=[{"therapy": "ssa", "outcome": "progression"}])


def test_a_progressive_atypical_lung_carcinoid_after_the_analogue_leads_with_everolimus_and_names_prrt_later():
    plan = _plan(ATYPICAL_PROGRESSIVE_AFTER_SSA)
    assert plan["pathway"] == "thoracic_carcinoid"
    now = plan["steps"][0]
    assert now["options"][0] == "everolimus"
    # PRRT is mainly a third line in thoracic carcinoids: not beside everolimus today, but at progression
    assert "prrt" not in now["options"], now["options"]
    later = _step(plan, "at_progression")
    assert later and "prrt" in later["options"], plan["steps"]
    assert later["expected_verdicts"]["prrt"] in ("preferred", "reasonable")
    assert "esmo2021_thoracic" in now["sources"] and "radiant4" in now["sources"]
    # at most three options, and one embolization
    assert len(now["options"]) <= 3
    for step in plan["steps"]:
        assert not {"tae", "tace"} <= set(step["options"]), step


def test_a_stable_typical_lung_carcinoid_gets_the_analogue_then_everolimus_before_prrt():
    plan = _plan(_doc(pathology={"differentiation": "well", "ki67_percent": 2, "mitoses_per_10hpf": 1},
                      course={"status": "stable"}, prior_therapies=[]))
    assert plan["pathway"] == "thoracic_carcinoid"
    assert plan["steps"][0]["options"] == ["ssa"]
    later = _step(plan, "at_progression")["options"]
    assert later[0] == "everolimus" and "prrt" in later, later
    assert later.index("everolimus") < later.index("prrt")


def test_an_atypical_carcinoid_of_low_ki67_that_is_stable_starts_with_the_analogue():
    plan = _plan(_doc(pathology={"differentiation": "well", "ki67_percent": 4, "mitoses_per_10hpf": 3},
                      course={"status": "stable", "progression_within_12_months": False}, prior_therapies=[]))
    assert plan["steps"][0]["options"][0] == "ssa"


def test_an_uncontrolled_carcinoid_syndrome_keeps_the_analogue_beside_the_next_line_and_brings_prrt_forward():
    plan = _plan(_doc(pathology={"differentiation": "well", "ki67_percent": 3},
                      functional_syndrome="carcinoid", functional_control="refractory", symptomatic=True,
                      course={"status": "stable"},
                      prior_therapies=[{"therapy": "ssa", "outcome": "stable", "ongoing": True}]))
    assert plan["pathway"] == "thoracic_carcinoid"
    now = plan["steps"][0]
    # the analogue the syndrome is refractory to continues beside the next line, with telotristat
    assert {"ssa", "telotristat"} <= set(now["add_on"]), now
    assert now["options"][0] not in ("ssa", "telotristat")
    assert len(now["options"]) <= 3
    # PRRT is the second line for an uncontrolled syndrome: named before everolimus
    named = [o for s in plan["steps"] if s["when"] in ("now", "at_progression") for o in s["options"]]
    assert "prrt" in named, plan["steps"]
    assert "everolimus" not in named or named.index("prrt") < named.index("everolimus"), named


def test_a_progressive_thymic_carcinoid_after_the_analogue_leads_with_everolimus():
    plan = _plan(_doc(primary={"site": "thymus", "resected": True},
                      pathology={"differentiation": "well", "ki67_percent": 8},
                      course={"status": "progressive"}, prior_therapies=[{"therapy": "ssa", "outcome": "progression"}]))
    assert plan["pathway"] == "thoracic_carcinoid"
    assert plan["steps"][0]["options"][0] == "everolimus"
    assert "prrt" not in plan["steps"][0]["options"]


def test_after_the_analogue_and_everolimus_prrt_comes_now():
    plan = _plan(_doc(pathology={"differentiation": "well", "ki67_percent": 8}, course={"status": "progressive"},
                      prior_therapies=[{"therapy": "ssa", "outcome": "progression"},
                                       {"therapy": "everolimus", "outcome": "progression"}]))
    assert plan["steps"][0]["options"][0] == "prrt"


def test_the_step_texts_are_clinician_prose():
    plan = _plan(ATYPICAL_PROGRESSIVE_AFTER_SSA)
    for s in plan["steps"]:
        for word in ("_", "thoracic_type", "net_g1g2", "prior_ssa"):
            assert word not in s["reason"], (word, s["reason"])


def test_a_lung_carcinoid_above_the_digestive_g2_band_follows_the_net_g3_pathway():
    plan = _plan(_doc(pathology={"differentiation": "well", "ki67_percent": 30}, course={"status": "progressive"}))
    assert plan["pathway"] == "net_g3"


def test_small_intestinal_and_pancreatic_nets_keep_their_pathways():
    ileal = _doc(primary={"site": "jejunum_ileum", "resected": True},
                 pathology={"differentiation": "well", "ki67_percent": 5},
                 course={"status": "progressive"}, prior_therapies=[{"therapy": "ssa", "outcome": "progression"}])
    plan = _plan(ileal)
    assert plan["pathway"] == "non_pancreatic_g1g2"
    assert plan["steps"][0]["options"][0] == "prrt"   # NETTER-1: PRRT before everolimus after the analogue
    pnet = _doc(primary={"site": "pancreas", "resected": True}, pathology={"differentiation": "well", "ki67_percent": 5},
                course={"status": "progressive"}, prior_therapies=[{"therapy": "ssa", "outcome": "progression"}])
    assert _plan(pnet)["pathway"] == "pancreatic_g1g2"


def test_temozolomide_based_chemotherapy_after_everolimus_in_a_lung_carcinoid():
    # progressing on the analogue and then on everolimus: capecitabine-temozolomide was 'not recommended'
    # (the small-intestinal reading: only for FDG-avid or Ki-67 10 % or more) though the thoracic guidance
    # names temozolomide-based chemotherapy there
    doc = _doc(pathology={"differentiation": "well", "ki67_percent": 5, "mitoses_per_10hpf": 3},
               course={"status": "progressive"},
               prior_therapies=[{"therapy": "ssa", "outcome": "progression"},
                                {"therapy": "everolimus", "outcome": "progression"}])
    a = assess(validate_patient(doc))
    o = {x["id"]: x for x in a["options"]}["capecitabine_temozolomide"]
    assert o["verdict"] == "reasonable", o["verdict"]
    assert "temozolomide_bronchial_carcinoid" in o["reasons"][0]["sources"]
    assert "after everolimus (outcome on it: progression)" in o["reasons"][0]["text"]
    # a small-intestinal NET in the same place keeps the old reading
    ileal = {**doc, "primary": {"site": "jejunum_ileum", "resected": True}}
    o = {x["id"]: x for x in assess(validate_patient(ileal))["options"]}["capecitabine_temozolomide"]
    assert o["verdict"] != "reasonable" or "lung" not in o["reasons"][0]["text"]
