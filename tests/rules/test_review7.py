"""Board review 7: two rule defects found on published patients (REVIEW7.md).

1. The analogue's antiproliferative reason quoted PROMID and CLARINET, trials of digestive
   (midgut; gastro-entero-pancreatic) NETs, for a lung or thymic carcinoid as well (rc78, an
   atypical bronchial carcinoid with liver metastases). The thoracic evidence is SPINET
   (lanreotide in receptor-positive typical and atypical bronchopulmonary carcinoids: 77
   randomised, median progression-free survival 16.6 months on lanreotide, 13.6 months on
   placebo in the double-blind phase, not significant; recruitment stopped early), which the
   rule listed as a source but did not say. The verdict is unchanged; the reason now says what
   the thoracic evidence is.
2. Liver resection's fitness rule gave one requirement text for its two checks (fitness for
   major surgery and ECOG), so a patient with both unknown (rc73) was shown the same condition
   twice. Each check now names what passing means for it, as the transplant fitness gate does.
"""
import copy

from nelm.assessment import assess
from nelm.patient import validate_patient

LUNG = {
    "ecog": 1, "primary": {"site": "lung", "resected": True},
    "pathology": {"differentiation": "well", "ki67_percent": 3, "mitoses_per_10hpf": 1},
    "liver": {"pattern": "disseminated", "lobes": "bilobar", "resectable": False, "burden_percent": 20},
    "extrahepatic": {"present": False}, "sstr_imaging": "positive", "functional_syndrome": "none",
    "symptomatic": False, "course": {"status": "stable"},
}


def _options(doc):
    a = assess(validate_patient(doc))
    return a, {o["id"]: o for o in a["options"]}


def _decisive_text(option):
    return " ".join(r["text"] for r in option["reasons"] if r.get("kind") == "decisive")


def test_the_analogue_for_a_lung_carcinoid_cites_the_thoracic_trial_not_the_digestive_ones():
    a, o = _options(LUNG)
    ssa = o["ssa"]
    assert ssa["verdict"] == "preferred"
    text = _decisive_text(ssa)
    assert "SPINET" in text and "16.6" in text, text
    assert "PROMID" not in text and "CLARINET" not in text, text
    decisive = [r for r in ssa["reasons"] if r.get("kind") == "decisive"]
    assert "spinet" in decisive[0]["sources"]
    assert "promid2009" not in decisive[0]["sources"] and "clarinet2014" not in decisive[0]["sources"]
    # the thoracic sequence is unchanged: the analogue still leads
    assert a["plan"]["steps"][0]["options"][0] == "ssa"


def test_a_thymic_carcinoid_is_told_that_spinet_enrolled_lung_primaries():
    doc = copy.deepcopy(LUNG)
    doc["primary"]["site"] = "thymus"
    _, o = _options(doc)
    text = _decisive_text(o["ssa"])
    assert "SPINET" in text and "lung" in text, text


def test_a_digestive_net_keeps_the_digestive_trials():
    doc = copy.deepcopy(LUNG)
    doc["primary"]["site"] = "jejunum_ileum"
    _, o = _options(doc)
    text = _decisive_text(o["ssa"])
    assert "PROMID" in text and "CLARINET" in text, text


def test_liver_resection_names_each_fitness_check_once():
    # rc73's facts: rectal NET G3 after abdominoperineal resection, fitness and ECOG unknown
    doc = {"age_years": 71, "primary": {"site": "rectum", "resected": True},
           "pathology": {"differentiation": "well", "reported_grade": "G3"}, "liver": {"timing": "synchronous"}}
    _, o = _options(doc)
    conditions = o["liver_resection"].get("conditions") or []
    by_field = {c["field"]: c["requirement"] for c in conditions}
    assert "fit_for_major_surgery" in by_field and "ecog" in by_field, conditions
    texts = [c["requirement"] for c in conditions]
    assert len(texts) == len(set(texts)), texts
    assert "ECOG 0-2" in by_field["ecog"] and "ECOG" not in by_field["fit_for_major_surgery"], by_field


# 3. PRRT above Ki-67 55 %: its reason said chemotherapy comes first, and the plan named it at
#    no later step. Once chemotherapy has failed in receptor-positive NET G3 it is a later line
#    (reasonable), with the short control a G3 series reported above 55 %.
G3_ABOVE_55 = {
    "age_years": 60, "ecog": 1, "primary": {"site": "pancreas", "resected": False},
    "pathology": {"differentiation": "well", "ki67_percent": 60},
    "liver": {"lobes": "bilobar", "resectable": False, "child_pugh": "A", "bilirubin_mg_dl": 0.7},
    "extrahepatic": {"present": False}, "sstr_imaging": "positive", "course": {"status": "progressive"},
}


def test_prrt_above_55_percent_waits_for_chemotherapy_and_comes_at_progression():
    a, o = _options(G3_ABOVE_55)
    assert o["prrt"]["verdict"] == "not_recommended"
    first = a["plan"]["steps"][0]["options"]
    assert "prrt" not in first and {"capecitabine_temozolomide", "platinum_etoposide"} & set(first), first
    later = [s for s in a["plan"]["steps"] if s["when"] == "at_progression"]
    assert later and "prrt" in later[0]["options"], a["plan"]["steps"]
    assert later[0]["expected_verdicts"]["prrt"] == "reasonable"


def test_prrt_above_55_percent_after_chemotherapy_is_reasonable_and_says_why():
    doc = copy.deepcopy(G3_ABOVE_55)
    doc["prior_therapies"] = [{"therapy": "capecitabine_temozolomide", "outcome": "progression"}]
    _, o = _options(doc)
    assert o["prrt"]["verdict"] == "reasonable"
    text = _decisive_text(o["prrt"])
    assert "after chemotherapy" in text and "4 months" in text, text
    # receptor-negative disease gains nothing from it
    doc["sstr_imaging"] = "negative"
    _, o = _options(doc)
    assert o["prrt"]["verdict"] in ("not_recommended", "contraindicated")


# 4. Carcinoid heart disease not yet operated: the first step gives the analogue and says the
#    heart comes before any liver treatment (rc75, rc76: only other options' gates said so).
def test_carcinoid_heart_disease_the_first_step_says_the_valves_come_before_the_liver():
    doc = {"pathology": {"differentiation": "well"}, "functional_syndrome": "carcinoid", "symptomatic": True,
           "carcinoid_heart_disease": "present"}
    a, o = _options(doc)
    assert o["ssa"]["verdict"] == "preferred"
    first = a["plan"]["steps"][0]
    assert first["options"][0] == "ssa", first
    text = _decisive_text(o["ssa"])
    assert "valve replacement comes before any liver" in text and "not operated" in text, text
    # operated valves: the ordinary syndrome reason
    doc["carcinoid_heart_disease"] = "valves_replaced"
    _, o = _options(doc)
    assert "valve replacement comes before" not in _decisive_text(o["ssa"])
