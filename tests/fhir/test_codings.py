"""The codings hospitals send (issue 20 item 3), one named test each; every code here is one
mapping.yaml lists with where it was confirmed."""
from __future__ import annotations

import pytest

from nelm.fhir import read_bundle

from bundles import ATC, ICD10CM, LOINC, ON, SNOMED, UCUM, bundle, condition, medication, observation, patient

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
BFARM_ATC = "http://fhir.de/CodeSystem/bfarm/atc"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
ICDO3_OID = "urn:oid:2.16.840.1.113883.6.43.1"
MORPHOLOGY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior"


def _read(*resources):
    return read_bundle(bundle(patient(), *resources), ON)


def test_cbc_panel_components_are_read_as_results():
    panel = observation("cbc", "58410-2")
    panel["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "777-3"}]},
         "valueQuantity": {"value": 98, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}},
        {"code": {"coding": [{"system": LOINC, "code": "751-8"}]},
         "valueQuantity": {"value": 1.2, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}},
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120}}]
    imported = _read(panel)
    assert imported.document["labs"] == {"platelets_10e9_per_l": 98.0, "neutrophils_10e9_per_l": 1.2}
    src = next(r for r in imported.provenance if r.field == "labs.platelets_10e9_per_l").source
    assert src.code == "component LOINC 777-3"


def test_a_panel_with_no_known_component_is_unread():
    panel = observation("bp", "85354-9")
    panel["component"] = [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120}}]
    imported = _read(panel)
    assert "labs" not in imported.document and imported.unread[0].resource == "Observation/bp"


@pytest.mark.parametrize("unit", ["K/uL", "Gpt/l"])
def test_text_only_units_of_counts(unit):
    imported = _read(observation("plt", "777-3", 212, unit, ucum=False))
    assert imported.document["labs"]["platelets_10e9_per_l"] == 212.0


def test_an_unknown_text_unit_is_not_guessed():
    imported = _read(observation("plt", "777-3", 212, "Tsd/ul", ucum=False))
    assert "labs" not in imported.document


@pytest.mark.parametrize("answer,value", [("LA9622-7", 0), ("LA9623-5", 1), ("LA9624-3", 2), ("LA9625-0", 3),
                                          ("LA9626-8", 4)])
def test_ecog_as_a_coded_answer(answer, value):
    o = observation("ecog", "89247-1")
    o["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": answer}]}
    assert _read(o).document["ecog"] == value


def test_ecog_5_dead_is_not_a_performance_status():
    o = observation("ecog", "89247-1")
    o["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": "LA9627-6"}]}
    imported = _read(o)
    assert "ecog" not in imported.document and "answer" in imported.unread[0].reason


def test_bilirubin_in_umol_per_l_by_its_molar_loinc():
    imported = _read(observation("bili", "14631-6", 20.5, "umol/L"))
    assert imported.document["liver"]["bilirubin_mg_dl"] == 1.2


def test_bilirubin_molar_loinc_in_mg_dl_is_not_converted_by_guess():
    imported = _read(observation("bili", "14631-6", 1.2, "mg/dL"))
    assert "liver" not in imported.document


def test_egfr_ckd_epi_2021():
    imported = _read(observation("egfr", "98979-8", 78, "mL/min/{1.73_m2}"))
    assert imported.document["labs"]["egfr_ml_min"] == 78.0


def test_a_result_with_data_absent_reason_is_unread_with_why():
    o = observation("bili", "1975-2")
    o["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                         "code": "error"}]}
    imported = _read(o)
    assert imported.unread[0].reason == "total bilirubin: no value (data absent: error)"


def test_rxnorm_octreotide_ingredient():
    m = medication("oct", "7617", system=RXNORM, kind="MedicationRequest")
    assert _read(m).document["prior_therapies"] == [{"therapy": "ssa", "ongoing": True}]


def test_bfarm_atc_is_read_as_atc():
    m = medication("evero", "L01EG02", system=BFARM_ATC)
    assert _read(m).document["prior_therapies"] == [{"therapy": "everolimus", "ongoing": True}]


def test_a_contained_medication_is_read():
    r = {"resourceType": "MedicationRequest", "id": "rx", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-03-01",
         "contained": [{"resourceType": "Medication", "id": "med1", "code": {"coding": [{"system": ATC,
                                                                                     "code": "L01EG02"}]}}],
         "medicationReference": {"reference": "#med1"}}
    assert _read(r).document["prior_therapies"] == [{"therapy": "everolimus", "ongoing": True}]


def test_an_absent_medication_is_listed_and_leaves_ongoing_unknown():
    done = medication("oct", "H01CB02", status="completed", start="2024-01-01", end="2025-01-01")
    r = {"resourceType": "MedicationRequest", "id": "rx", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "medicationReference": {"reference": "Medication/not-sent"}}
    imported = _read(done, r)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa"}]
    assert any("Medication/not-sent" in u.reason and "not in the records sent" in u.reason for u in imported.unread)


def test_a_medication_named_only_in_text_by_its_inn_is_read_and_says_so():
    r = medication("lan", "x", kind="MedicationRequest")
    r["medicationCodeableConcept"] = {"text": "lanreotide (Somatuline Depot) 120 mg deep SC every 28 days"}
    imported = _read(r)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa", "ongoing": True}]
    reading = next(x for x in imported.provenance if x.field == "prior_therapies")
    assert "read from the medication's text" in reading.note


def test_a_text_naming_drugs_of_two_options_is_not_read():
    r = medication("mix", "x")
    r["medicationCodeableConcept"] = {"text": "everolimus or sunitinib, to be decided"}
    imported = _read(r)
    assert "prior_therapies" not in imported.document


def test_a_text_naming_no_known_drug_is_not_read():
    r = medication("mix", "x")
    r["medicationCodeableConcept"] = {"text": "lanreotidine 5 mg"}  # not the INN: no partial match
    assert "prior_therapies" not in _read(r).document


def test_us_core_patient_reported_medication_is_read():
    r = medication("self", "H01CB03", kind="MedicationRequest") | {"intent": "plan", "reportedBoolean": True}
    assert _read(r).document["prior_therapies"] == [{"therapy": "ssa", "ongoing": True}]


def test_a_planned_medication_not_reported_as_taken_is_not_read():
    r = medication("plan", "H01CB03", kind="MedicationRequest") | {"intent": "plan"}
    imported = _read(r)
    assert "prior_therapies" not in imported.document and "intent 'plan'" in imported.unread[0].reason


@pytest.mark.parametrize("system", [ICDO3, ICDO3_OID])
@pytest.mark.parametrize("morph,differentiation", [("8240/3", "well"), ("8249/3", "well"), ("8041/3", "poor"),
                                                   ("8013/3", "poor")])
def test_mcode_histology_morphology_behavior_sets_differentiation(system, morph, differentiation):
    c = condition("primary", "C25.4")
    c["extension"] = [{"url": MORPHOLOGY, "valueCodeableConcept": {"coding": [{"system": system, "code": morph}]}}]
    assert _read(c).document["pathology"] == {"differentiation": differentiation}


def test_an_unknown_morphology_is_listed():
    c = condition("primary", "C25.4")
    c["extension"] = [{"url": MORPHOLOGY, "valueCodeableConcept": {"coding": [{"system": ICDO3, "code": "8246/3"}]}}]
    imported = _read(c)
    assert "pathology" not in imported.document
    assert "histology-morphology-behavior" in imported.unread[0].reason


def test_mii_histology_observation_sets_differentiation():
    o = observation("histo", "59847-4")
    o["valueCodeableConcept"] = {"coding": [{"system": ICDO3_OID, "code": "8249/3"}]}
    assert _read(o).document["pathology"] == {"differentiation": "well"}


@pytest.mark.parametrize("code,site", [("C79.51", "bone"), ("C77.2", "lymph_nodes"), ("C78.01", "lung"),
                                       ("C79.71", "other")])
def test_mcode_secondary_cancer_conditions(code, site):
    assert _read(condition("met", code, system=ICD10CM)).document["extrahepatic"] == {"present": True,
                                                                                    "sites": [site]}


def test_retroperitoneal_or_peritoneal_secondary_is_not_guessed_to_be_peritoneal():
    assert "extrahepatic" not in _read(condition("met", "C78.6", system=ICD10CM)).document


def test_snomed_only_carcinoid_syndrome():
    assert _read(condition("cs", "35868009", system=SNOMED)).document["functional_syndrome"] == "carcinoid"


# ------------------------------------------------------------------ German MII oncology records
# Shapes as the MII Kerndatensatz Onkologie examples write them
# (github.com/medizininformatik-initiative/kerndatensatzmodul-onkologie, input/fsh/oBDS/...).
MII = "https://www.medizininformatik-initiative.de/fhir/ext/modul-onko/CodeSystem/"


def _facts(*resources) -> dict:
    return {k: v for k, v in _read(*resources).document.items() if k != "age_years"}
ICD10GM = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"


def _mii_metastasis(oid: str, site: str) -> dict:
    o = observation(oid, "385421009", system=SNOMED)
    o["valueCodeableConcept"] = {"coding": [{"system": MII + "mii-cs-onko-fernmetastasen", "code": site}]}
    return o


def test_mii_distant_metastasis_sites():
    imported = _read(_mii_metastasis("m1", "OSS"), _mii_metastasis("m2", "PUL"), _mii_metastasis("m3", "HEP"))
    assert imported.document["extrahepatic"] == {"present": True, "sites": ["bone", "lung"]}


def test_mii_generalised_metastases_are_present_without_a_site():
    assert _facts(_mii_metastasis("m", "GEN")) == {"extrahepatic": {"present": True}}


def test_mii_ecog_as_its_own_observation_and_as_a_component():
    direct = observation("ecog", "423740007", system=SNOMED)
    direct["valueCodeableConcept"] = {"coding": [{"system": MII + "mii-cs-onko-allgemeiner-leistungszustand-ecog",
                                                  "code": "2"}]}
    assert _facts(direct) == {"ecog": 2}
    panel = observation("lz", "423690003", system=SNOMED)
    panel["component"] = [{"code": {"coding": [{"system": SNOMED, "code": "423740007"}]},
                           "valueCodeableConcept": {"coding": [{"system": MII + "mii-cs-onko-allgemeiner-leistungszustand-ecog",
                                                                "code": "3"}]}}]
    assert _facts(panel) == {"ecog": 3}


def test_mii_ecog_unknown_stays_unknown():
    o = observation("ecog", "423740007", system=SNOMED)
    o["valueCodeableConcept"] = {"coding": [{"system": MII + "mii-cs-onko-allgemeiner-leistungszustand-ecog",
                                             "code": "U"}]}
    assert _facts(o) == {}


def test_mii_diagnosis_by_icd10gm_and_icdo3_morphology_gives_differentiation_and_site():
    c = condition("dx", "C17.2", system=ICD10GM)  # ICD-10-GM itself is not mapped (no code list retrieved)
    c["code"]["coding"].append({"system": ICDO3_OID, "code": "8240/3"})
    c["bodySite"] = [{"coding": [{"system": ICDO3, "code": "C17.2"}]}]
    assert _facts(c) == {"primary": {"site": "jejunum_ileum"}, "pathology": {"differentiation": "well"}}
