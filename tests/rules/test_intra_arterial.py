"""Embolization, chemoembolization, DEB-TACE and SIRT (rules/embolization.yaml, radioembolization.yaml)."""
UNRESECTABLE = {"liver.burden_percent": 35, "liver.pattern": "dominant_with_satellites", "liver.lesion_count": 6,
                "liver.largest_lesion_cm": 5, "liver.resectable_fraction_percent": 40}


def test_asymptomatic_unresectable_over_25_percent_prefers_iat(assess_with):
    _, o = assess_with(symptomatic=False, **UNRESECTABLE)
    assert o["tae"]["verdict"] == "preferred" and o["tace"]["verdict"] == "preferred"
    assert o["sirt"]["verdict"] == "reasonable"


def test_symptomatic_unresectable_disease_prefers_iat_for_symptoms(assess_with):
    _, o = assess_with(symptomatic=True, functional_syndrome="carcinoid", **UNRESECTABLE)
    assert o["tace"]["verdict"] == "preferred"


def test_portal_vein_thrombosis_rules_out_tace_and_tae_but_not_sirt(assess_with):
    _, o = assess_with(symptomatic=False, **{**UNRESECTABLE, "liver.portal_vein_thrombosis": True})
    assert o["tace"]["verdict"] == "contraindicated" and o["tae"]["verdict"] == "contraindicated"
    assert o["deb_tace"]["verdict"] == "contraindicated"
    assert o["sirt"]["verdict"] == "preferred"


def test_sirt_works_best_below_50_percent_without_extrahepatic_disease(assess_with):
    _, o = assess_with(symptomatic=False, **{**UNRESECTABLE, "liver.burden_percent": 60, "liver.liver_function": "impaired"})
    assert o["sirt"]["verdict"] == "reasonable"
    assert any(r["kind"] == "note" and "50 %" in r["text"] for r in o["sirt"]["reasons"])


def test_deb_tace_is_avoided_for_small_disseminated_lesions(assess_with):
    _, o = assess_with(symptomatic=False, **{**UNRESECTABLE, "liver.lesion_count": 20, "liver.largest_lesion_cm": 1.5})
    assert o["deb_tace"]["verdict"] == "not_recommended"
    assert "guiu2012" in o["deb_tace"]["reasons"][0]["sources"]


def test_no_embolization_when_curative_resection_is_possible(assess_with):
    _, o = assess_with()
    assert {o[i]["verdict"] for i in ("tae", "tace", "deb_tace", "sirt")} == {"not_recommended"}


def test_disseminated_disease_without_syndrome_is_for_medical_therapy(assess_with):
    _, o = assess_with(symptomatic=False, **{**UNRESECTABLE, "liver.pattern": "disseminated", "liver.lesion_count": 40})
    assert o["tace"]["verdict"] == "not_recommended"
    _, o = assess_with(symptomatic=True, functional_syndrome="carcinoid",
                       **{**UNRESECTABLE, "liver.pattern": "disseminated", "liver.lesion_count": 40})
    assert o["tace"]["verdict"] == "reasonable"


def test_nodal_disease_beside_the_liver_keeps_iat_preferred_distant_metastases_do_not(assess_with):
    nodes = {"present": True, "sites": ["lymph_nodes"], "resectable": False, "peritoneal_carcinomatosis": "none"}
    _, o = assess_with(symptomatic=False, extrahepatic=nodes, **UNRESECTABLE)
    assert o["tace"]["verdict"] == "preferred"
    bone = {**nodes, "sites": ["lymph_nodes", "bone"]}
    _, o = assess_with(symptomatic=False, extrahepatic=bone, **UNRESECTABLE)
    assert o["tace"]["verdict"] == "reasonable"
