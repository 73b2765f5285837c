"""FHIR Bundle → patient document: complete, partial, conflicting, unknown codes, units, statuses."""
from __future__ import annotations

import copy
import glob
import json
from pathlib import Path

import pytest

from nelm.fhir import InvalidBundle, read_bundle, read_bundle_text
from nelm.fhir.mapping import load_mapping
from nelm.patient import InvalidPatient, set_field, validate_patient

from bundles import (ATC, ICD10CM, LOINC, ON, OPTION, SNOMED, bundle, bundle_of, condition, medication, observation,
                     patient, readable_part)

ROOT = Path(__file__).parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "solitary_resectable.json").read_text())
VIGNETTES = sorted(glob.glob(str(ROOT / "tests" / "vignettes" / "*.json")))


def _doc(path: str) -> dict:
    data = json.loads(Path(path).read_text())
    return data.get("patient", data)


# ------------------------------------------------------------------ whole Bundles

def test_complete_bundle_gives_the_expected_document():
    imported = read_bundle(bundle_of(EXAMPLE), ON)
    assert imported.document == {
        "age_years": 58, "ecog": 0, "pathology": {"ki67_percent": 1.0}, "primary": {"site": "jejunum_ileum"},
        "liver": {"bilirubin_mg_dl": 0.6},
        "labs": {"egfr_ml_min": 88, "platelets_10e9_per_l": 240, "neutrophils_10e9_per_l": 4.1}}
    assert imported.conflicts == [] and imported.unread == []
    assert imported.patient_reference == "Patient/p1"
    fields = {r.field for r in imported.provenance}
    assert fields >= {"age_years", "ecog", "pathology.ki67_percent", "primary.site", "liver.bilirubin_mg_dl"}
    ki67 = next(r for r in imported.provenance if r.field == "pathology.ki67_percent")
    assert str(ki67) == "pathology.ki67_percent = 1 ← Observation/ki67 (LOINC 29593-1, 2026-10-01)"
    liver_mets = next(r for r in imported.provenance if r.field is None)
    assert liver_mets.source.code == "SNOMED CT 94381002"


@pytest.mark.parametrize("path", VIGNETTES, ids=lambda p: Path(p).stem)
def test_every_vignette_round_trips_what_fhir_can_say(path):
    doc = _doc(path)
    imported = read_bundle(bundle_of(doc), ON)
    assert imported.document == readable_part(doc)
    assert imported.unread == [] and imported.conflicts == []
    validate_patient(imported.document)


def test_partial_bundle_leaves_the_rest_unknown():
    imported = read_bundle(bundle(patient(), observation("ki67", "29593-1", 12, "%")), ON)
    assert imported.document == {"age_years": 58, "pathology": {"ki67_percent": 12.0}}
    p = imported.patient()
    # nothing read is never "no": no extrahepatic disease, therapy or syndrome is assumed
    assert p.extrahepatic is None and p.prior_therapies is None and p.functional_syndrome is None


def test_an_empty_bundle_is_an_all_unknown_patient():
    imported = read_bundle({"resourceType": "Bundle", "type": "searchset"}, ON)
    assert imported.document == {} and imported.provenance == []


@pytest.mark.parametrize("kind", ["transaction", "collection", "searchset", "batch", "document"])
def test_bundle_types_read(kind):
    assert read_bundle(bundle(patient(), kind=kind), ON).document == {"age_years": 58}


# ------------------------------------------------------------------ conflicts

def test_conflicting_values_most_recent_governs_and_is_listed():
    b = bundle(patient(), observation("ki-old", "29593-1", 2, "%", date="2024-01-10"),
               observation("ki-new", "29593-1", 15, "%", date="2026-09-01"),
               observation("ki-undated", "29593-1", 40, "%", date=None))
    imported = read_bundle(b, ON)
    assert imported.document["pathology"]["ki67_percent"] == 15.0
    [conflict] = imported.conflicts
    assert conflict.field == "pathology.ki67_percent"
    assert conflict.governing.source.resource == "Observation/ki-new"
    assert [r.source.resource for r in conflict.readings] == ["Observation/ki-new", "Observation/ki-old",
                                                              "Observation/ki-undated"]
    assert "the most recent governs: 15" in str(conflict)


def test_same_date_disagreement_stays_unknown():
    b = bundle(observation("a", "89247-1", 1, integer=True, date="2026-05-01"),
               observation("b", "89247-1", 3, integer=True, date="2026-05-01"))
    imported = read_bundle(b, ON)
    assert "ecog" not in imported.document
    [conflict] = imported.conflicts
    assert conflict.governing is None and "stays unknown" in str(conflict)


def test_agreeing_records_are_no_conflict():
    b = bundle(observation("a", "89247-1", 1, integer=True, date="2025-05-01"),
               observation("b", "89247-1", 1, integer=True, date="2026-05-01"))
    imported = read_bundle(b, ON)
    assert imported.document == {"ecog": 1} and imported.conflicts == []
    assert len([r for r in imported.provenance if r.field == "ecog"]) == 2  # both sources listed


def test_conflicting_primary_sites():
    b = bundle(condition("c1", "C7A.012", onset="2020-01-01"), condition("c2", "C25.4", onset="2023-01-01"))
    imported = read_bundle(b, ON)
    assert imported.document["primary"]["site"] == "pancreas"
    assert imported.conflicts[0].field == "primary.site"


# ------------------------------------------------------------------ units

@pytest.mark.parametrize("value, unit, expected", [
    (20.5, "umol/L", 1.2), (20.5, "µmol/L", 1.2), (34.2, "μmol/L", 2.0), (1.1, "mg/dL", 1.1), (12, "mg/L", 1.2)])
def test_bilirubin_is_converted_to_mg_dl(value, unit, expected):
    imported = read_bundle(bundle(observation("bili", "1975-2", value, unit)), ON)
    assert imported.document == {"liver": {"bilirubin_mg_dl": expected}}
    reading = imported.provenance[0]
    assert (reading.note is None) == (unit == "mg/dL")
    if reading.note:
        assert reading.note == f"converted from {value:g} {unit}"


def test_unit_by_display_text_when_no_ucum_code():
    imported = read_bundle(bundle(observation("bili", "1975-2", 17.1, "µmol/L", ucum=False)), ON)
    assert imported.document == {"liver": {"bilirubin_mg_dl": 1.0}}


def test_platelets_in_10e3_per_ul_equal_10e9_per_l():
    imported = read_bundle(bundle(observation("plt", "777-3", 180, "10*3/uL")), ON)
    assert imported.document == {"labs": {"platelets_10e9_per_l": 180.0}}


@pytest.mark.parametrize("unit", ["g/L", None, "mmol/L"])
def test_unconvertible_unit_is_reported_not_guessed(unit):
    imported = read_bundle(bundle(observation("bili", "1975-2", 20, unit)), ON)
    assert imported.document == {}
    [unread] = imported.unread
    assert unread.resource == "Observation/bili" and "cannot be converted" in unread.reason
    assert "umol/L" in unread.reason  # says what is convertible


def test_a_bound_is_not_a_value():
    o = observation("ki", "29593-1", 2, "%")
    o["valueQuantity"]["comparator"] = "<"
    imported = read_bundle(bundle(o), ON)
    assert imported.document == {} and "a bound (<2)" in imported.unread[0].reason


# ------------------------------------------------------------------ unknown codes and resources

def test_unknown_codes_and_types_are_reported_not_dropped():
    b = bundle(patient(), observation("mystery", "12345-6", 3, "%"),
               condition("other", "I10"),
               {"resourceType": "Encounter", "id": "e1", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
               {"resourceType": "Procedure", "id": "whipple", "status": "completed", "subject": {"reference": "Patient/p1"},
                "code": {"text": "pancreaticoduodenectomy"}},
               medication("aspirin", "B01AC06"))
    imported = read_bundle(b, ON)
    assert imported.document == {"age_years": 58}
    reasons = {u.resource: u.reason for u in imported.unread}
    assert set(reasons) == {"Observation/mystery", "Condition/other", "Encounter/e1", "Procedure/whipple",
                            "MedicationStatement/aspirin"}
    assert reasons["Observation/mystery"].startswith("LOINC 12345-6: not in the mapping table")
    assert reasons["Encounter/e1"] == "resource type 'Encounter' is not read by nelm"
    assert "text 'pancreaticoduodenectomy' without a code" in reasons["Procedure/whipple"]


def test_invalid_resource_is_unread_with_the_library_reason():
    bad = observation("bad", "29593-1", 5, "%")
    bad["valueQuantity"] = "five"
    imported = read_bundle(bundle(patient(), bad), ON)
    assert imported.document == {"age_years": 58}
    assert imported.unread[0].resource == "Observation/bad"
    assert imported.unread[0].reason.startswith("not a valid FHIR R4 resource: valueQuantity")


@pytest.mark.parametrize("status", ["preliminary", "entered-in-error", "cancelled", "registered"])
def test_observations_not_final_are_unread(status):
    imported = read_bundle(bundle(observation("ki", "29593-1", 5, "%", status=status)), ON)
    assert imported.document == {} and f"status {status!r}" in imported.unread[0].reason


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_conditions_are_not_facts(verification):
    imported = read_bundle(bundle(condition("c", "C7B.03", verification=verification)), ON)
    assert imported.document == {} and "not a confirmed fact" in imported.unread[0].reason


def test_resources_about_another_patient_are_unread():
    other = observation("ki", "29593-1", 5, "%", subject={"reference": "Patient/someone-else"})
    imported = read_bundle(bundle(patient(), other), ON)
    assert imported.document == {"age_years": 58}
    assert imported.unread[0].reason == "another patient (Patient/someone-else), not Patient/p1"


def test_age_is_whole_years_on_the_assessment_date():
    import datetime as dt

    b = bundle(patient("1960-11-23"))
    assert read_bundle(b, dt.date(2026, 11, 22)).document == {"age_years": 65}
    assert read_bundle(b, dt.date(2026, 11, 23)).document == {"age_years": 66}


# ------------------------------------------------------------------ sites, syndrome, treatments

def test_metastatic_sites_accumulate_and_mean_extrahepatic_disease():
    b = bundle(condition("n", "C7B.01"), condition("b", "C7B.03"), condition("b2", "C7B.03", onset="2026-01-01"),
               condition("liver", "C7B.02"))
    imported = read_bundle(b, ON)
    assert imported.document == {"extrahepatic": {"present": True, "sites": ["bone", "lymph_nodes"]}}
    assert imported.conflicts == []


def test_carcinoid_syndrome():
    assert read_bundle(bundle(condition("s", "E34.00")), ON).document == {"functional_syndrome": "carcinoid"}


@pytest.mark.parametrize("kind, status, ongoing", [
    ("MedicationStatement", "active", True), ("MedicationStatement", "completed", False),
    ("MedicationAdministration", "in-progress", True), ("MedicationAdministration", "completed", False),
    ("MedicationRequest", "active", True), ("MedicationRequest", "stopped", False),
    ("MedicationStatement", "unknown", None)])
def test_medications_become_prior_therapies(kind, status, ongoing):
    imported = read_bundle(bundle(medication("m", "H01CB03", status=status, kind=kind)), ON)
    entry = {"therapy": "ssa"} | ({} if ongoing is None else {"ongoing": ongoing})
    assert imported.document == {"prior_therapies": [entry]}


def test_a_period_that_ended_means_no_longer_given():
    imported = read_bundle(bundle(medication("m", "L01EG02", status="unknown", end="2025-06-01")), ON)
    assert imported.document == {"prior_therapies": [{"therapy": "everolimus", "ongoing": False}]}


@pytest.mark.parametrize("status", ["not-taken", "entered-in-error", "intended"])
def test_medications_not_given_are_unread(status):
    imported = read_bundle(bundle(medication("m", "H01CB02", status=status)), ON)
    assert imported.document == {} and f"status {status!r}" in imported.unread[0].reason


def test_medication_by_reference_and_two_ssa_records_make_one_entry():
    med = {"resourceType": "Medication", "id": "lan", "code": {"coding": [{"system": ATC, "code": "H01CB03"}]}}
    st = medication("m1", "unused", status="completed")
    del st["medicationCodeableConcept"]
    st["medicationReference"] = {"reference": "Medication/lan"}
    imported = read_bundle(bundle(med, st, medication("m2", "H01CB02", status="active")), ON)
    assert imported.document == {"prior_therapies": [{"therapy": "ssa", "ongoing": True}]}


def test_nelm_option_codes_name_options_directly():
    proc = {"resourceType": "Procedure", "id": "tace1", "status": "completed", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": OPTION, "code": "tace"}]}, "performedDateTime": "2025-03-01"}
    assert read_bundle(bundle(proc), ON).document == {"prior_therapies": [{"therapy": "tace", "ongoing": False}]}


# ------------------------------------------------------------------ refusals

@pytest.mark.parametrize("data, field", [
    ({"resourceType": "Patient"}, "resourceType"), ([], "resourceType"),
    ({"resourceType": "Bundle", "type": "history"}, "type"),
    ({"resourceType": "Bundle", "type": "collection", "entry": {}}, "entry"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [1]}, "entry.0"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "x"}}]}, "entry.0.resource.resourceType"),
])
def test_not_a_bundle_is_refused_by_path(data, field):
    with pytest.raises(InvalidBundle) as exc:
        read_bundle(data, ON)
    assert exc.value.problems[0][0] == field


def test_two_patients_are_refused():
    with pytest.raises(InvalidBundle, match="more than one Patient"):
        read_bundle(bundle(patient(), patient(pid="p2")), ON)


def test_invalid_values_are_refused_with_dotted_path_and_source():
    b = bundle(observation("ki", "29593-1", 150, "%"), observation("ecog", "89247-1", 7, integer=True))
    imported = read_bundle(b, ON)
    with pytest.raises(InvalidPatient) as exc:
        imported.patient()
    problems = dict(exc.value.problems)
    assert set(problems) == {"pathology.ki67_percent", "ecog"}
    assert "read from Observation/ki (LOINC 29593-1, 2026-10-01)" in problems["pathology.ki67_percent"]


def test_text_goes_through_the_input_gate():
    with pytest.raises(InvalidPatient, match="more than once"):
        read_bundle_text('{"resourceType": "Bundle", "type": "collection", "type": "batch"}', ON)


# ------------------------------------------------------------------ the table itself

MAPPING = load_mapping()


@pytest.mark.parametrize("key", sorted(MAPPING.observations), ids=lambda k: k[1])
def test_every_observation_code_sets_its_field(key):
    system, code = key
    rule = MAPPING.observations[key]
    if rule.value == "integer":
        o = observation("o", code, 1, integer=True, system=system)
        expected = 1
    elif rule.value == "coded":  # every answer gives its value (with the method the rule requires)
        for answer in rule.answers:
            o = observation("o", code, system=system)
            o["valueCodeableConcept"] = {"coding": [{"system": MAPPING.systems[answer.system], "code": answer.code}]}
            if rule.methods:
                m = rule.methods[0]
                o["method"] = {"coding": [{"system": MAPPING.systems[m.system], "code": m.code}]}
            node = read_bundle(bundle(o), ON).document
            for part in rule.field.split("."):
                node = node[part]
            assert node == answer.value
        return
    elif rule.value == "site":  # every distant-metastasis site answer
        for answer in rule.answers:
            o = observation("o", code, system=system)
            o["valueCodeableConcept"] = {"coding": [{"system": MAPPING.systems[answer.system], "code": answer.code}]}
            doc = read_bundle(bundle(o), ON).document
            if answer.value is None:
                assert doc == {}
            elif answer.value is True:
                assert doc == {"extrahepatic": {"present": True}}
            else:
                assert doc == {"extrahepatic": {"present": True, "sites": [answer.value]}}
        return
    elif rule.value == "morphology":  # every morphology the table knows
        for (msystem, mcode), morph in MAPPING.morphologies.items():
            o = observation("o", code, system=system)
            o["valueCodeableConcept"] = {"coding": [{"system": msystem, "code": mcode}]}
            expected_doc: dict = {}
            for dotted, value in morph.sets.items():
                set_field(expected_doc, dotted, value)
            assert read_bundle(bundle(o), ON).document == expected_doc
        return
    else:
        unit, factor = next(iter(rule.units.items()))
        o = observation("o", code, 2, unit, system=system)
        expected = round(2 * factor, 2) if factor != 1 else 2.0
    imported = read_bundle(bundle(o), ON)
    node = imported.document
    for part in rule.field.split("."):
        node = node[part]
    assert node == expected


@pytest.mark.parametrize("key", sorted(MAPPING.conditions), ids=lambda k: k[1])
def test_every_condition_code_sets_what_the_table_says(key):
    system, code = key
    rule = MAPPING.conditions[key]
    imported = read_bundle(bundle(condition("c", code, system=system)), ON)
    expected: dict = {}
    for dotted, value in rule.sets.items():
        set_field(expected, dotted, value)
    if rule.add_site:
        expected["extrahepatic"] = {"present": True, "sites": [rule.add_site]}
    assert imported.document == expected
    assert imported.unread == []


@pytest.mark.parametrize("key", sorted(MAPPING.treatments), ids=lambda k: k[1])
def test_every_treatment_code_names_its_option(key):
    system, code = key
    imported = read_bundle(bundle(medication("m", code, system=system, status="completed")), ON)
    assert imported.document == {"prior_therapies": [{"therapy": MAPPING.treatments[key].option, "ongoing": False}]}


def test_every_entry_says_where_its_code_was_confirmed():
    from nelm.fhir.mapping import MAPPING_FILE, MappingFile
    from nelm.yamlio import read_yaml

    data = MappingFile.model_validate(read_yaml(MAPPING_FILE))
    for entry in [*data.observations, *data.conditions, *data.body_sites, *data.procedures, *data.treatments]:
        assert entry.confirmed.strip(), entry.label
    assert {LOINC, SNOMED, ICD10CM, ATC} <= set(data.systems.values())


def test_a_table_that_sets_an_invalid_value_is_refused():
    from pydantic import ValidationError

    from nelm.fhir.mapping import ConditionMap

    with pytest.raises(ValidationError):
        ConditionMap.model_validate({"label": "x", "codes": [], "sets": {"primary.site": "ileum"}, "confirmed": "-"})


def test_mapping_identity_is_reported():
    imported = read_bundle(bundle(), ON)
    assert imported.mapping == {"version": MAPPING.version, "sha256": MAPPING.sha256}
    assert len(MAPPING.sha256) == 64


def test_import_is_json_serialisable():
    b = copy.deepcopy(bundle_of(EXAMPLE))
    b["entry"].append({"resource": observation("ki2", "29593-1", 3, "%", date="2020-01-01")})
    out = json.loads(json.dumps(read_bundle(b, ON).to_dict()))
    assert out["conflicts"][0]["field"] == "pathology.ki67_percent"
    assert out["provenance"][0]["text"].startswith("age_years = 58 ← Patient/p1")
