"""Patient identity (issue 20 item 1): only the records of the Bundle's one Patient are read.

Each edge case is a named test: a record naming its patient by another patient's identifier,
a record naming no patient, two Patients, merged records (Patient.link), references by
fullUrl / urn:uuid / absolute URL / version, and the CDS hook's context.patientId.
"""
from __future__ import annotations

import copy

import pytest

from nelm.assessment import assess
from nelm.fhir import InvalidBundle, read_bundle

from bundles import ON, bundle, condition, observation, patient

MRN = {"system": "http://hospital.example.org/mrn", "value": "m-1"}


def _with_identifier(p: dict, *idents: dict) -> dict:
    return p | {"identifier": list(idents)}


def _unread(imported, name: str) -> str:
    return next(u.reason for u in imported.unread if u.resource == name)


def test_another_patients_ki67_by_identifier_is_not_the_governing_value():
    """The issue's case: another patient's Ki-67 35 %, naming that patient only by a logical
    identifier, must not turn this patient's G1 into G3."""
    mine = observation("ki-mine", "29593-1", 1.5, "%", date="2026-01-10")
    theirs = observation("ki-theirs", "29593-1", 35, "%", date="2026-10-01",
                         subject={"identifier": {"system": MRN["system"], "value": "m-999"}})
    imported = read_bundle(bundle(_with_identifier(patient(), MRN), mine, theirs), ON)
    assert imported.document["pathology"]["ki67_percent"] == 1.5
    assert imported.conflicts == []
    assert _unread(imported, "Observation/ki-theirs").startswith("cannot tell whose")
    assert assess(imported.patient())["classification"]["who_grade"] == "G1"


def test_a_record_naming_the_patient_by_an_identifier_it_carries_is_read():
    ki = observation("ki", "29593-1", 4, "%", subject={"identifier": MRN})
    imported = read_bundle(bundle(_with_identifier(patient(), MRN), ki), ON)
    assert imported.document["pathology"]["ki67_percent"] == 4.0


def test_an_identifier_without_its_system_cannot_be_matched():
    ki = observation("ki", "29593-1", 4, "%", subject={"identifier": {"value": MRN["value"]}})
    imported = read_bundle(bundle(_with_identifier(patient(), MRN), ki), ON)
    assert "pathology" not in imported.document
    assert _unread(imported, "Observation/ki").startswith("cannot tell whose")


def test_a_record_naming_no_patient_is_not_read():
    ki = observation("ki", "29593-1", 35, "%")
    del ki["subject"]
    imported = read_bundle(bundle(patient(), ki), ON)
    assert "pathology" not in imported.document
    assert _unread(imported, "Observation/ki") == "cannot tell whose: the record names no patient (subject)"


def test_a_bundle_without_a_patient_reads_no_record():
    b = bundle(observation("ki", "29593-1", 35, "%"), add_patient=False)
    imported = read_bundle(b, ON)
    assert imported.document == {}
    assert _unread(imported, "Observation/ki").startswith("cannot tell whose")


def test_a_record_about_a_group_or_device_is_not_read():
    ki = observation("ki", "29593-1", 35, "%", subject={"reference": "Group/cohort-1"})
    imported = read_bundle(bundle(patient(), ki), ON)
    assert "pathology" not in imported.document
    assert _unread(imported, "Observation/ki") == "not about a patient: subject Group/cohort-1"


def test_another_patients_record_by_reference_is_listed_as_another_patient():
    ki = observation("ki", "29593-1", 60, "%", subject={"reference": "https://ehr.example.org/fhir/Patient/other"})
    imported = read_bundle(bundle(patient(), ki), ON)
    assert "pathology" not in imported.document
    assert _unread(imported, "Observation/ki").startswith("another patient")


@pytest.mark.parametrize("ref", ["Patient/p1", "Patient/p1/_history/3", "https://ehr.example.org/fhir/Patient/p1",
                                 "urn:uuid:patient-p1"])
def test_references_that_resolve_to_the_patient_are_read(ref):
    # bundles.bundle gives the Patient the fullUrl urn:uuid:patient-p1
    ki = observation("ki", "29593-1", 4, "%", subject={"reference": ref})
    assert read_bundle(bundle(patient(), ki), ON).document["pathology"]["ki67_percent"] == 4.0


def test_urn_uuid_of_another_entry_is_another_patient():
    ki = observation("ki", "29593-1", 4, "%", subject={"reference": "urn:uuid:0000-other"})
    imported = read_bundle(bundle(patient(), ki), ON)
    assert "pathology" not in imported.document


def test_two_unlinked_patients_are_refused_naming_both():
    with pytest.raises(InvalidBundle, match=r"more than one Patient \(Patient/p1, Patient/p2\)"):
        read_bundle(bundle(patient(), patient(pid="p2")), ON)


def test_two_patients_with_the_one_asked_about_named_read_only_that_one():
    theirs = observation("ki-theirs", "29593-1", 35, "%", subject={"reference": "Patient/p2"})
    mine = observation("ki-mine", "29593-1", 2, "%")
    imported = read_bundle(bundle(patient(), patient(pid="p2"), mine, theirs), ON, patient_id="p1")
    assert imported.document["pathology"]["ki67_percent"] == 2.0
    assert imported.patient_reference == "Patient/p1"
    assert _unread(imported, "Patient/p2").startswith("another patient")
    assert _unread(imported, "Observation/ki-theirs").startswith("another patient")


def test_the_patient_asked_about_must_be_in_the_bundle():
    with pytest.raises(InvalidBundle, match="no Patient 'p9'"):
        read_bundle(bundle(patient()), ON, patient_id="p9")


def _merged_pair() -> tuple[dict, dict]:
    new = patient() | {"link": [{"other": {"reference": "Patient/old"}, "type": "replaces"}]}
    old = patient(pid="old") | {"active": False, "link": [{"other": {"reference": "Patient/p1"}, "type": "replaced-by"}]}
    return new, old


def test_a_merged_export_is_read_as_one_person():
    new, old = _merged_pair()
    ki = observation("ki-old-record", "29593-1", 3, "%", subject={"reference": "Patient/old"})
    ecog = observation("ecog", "89247-1", 1, integer=True)
    imported = read_bundle(bundle(old, new, ki, ecog), ON)
    assert imported.patient_reference == "Patient/p1"  # the surviving record
    assert imported.document == {"age_years": 58, "ecog": 1, "pathology": {"ki67_percent": 3.0}}
    assert not any(u.resource.startswith("Patient/") for u in imported.unread)


def test_a_record_of_a_replaced_patient_not_in_the_bundle_is_read_through_the_link():
    new, _ = _merged_pair()
    ki = observation("ki", "29593-1", 3, "%", subject={"reference": "Patient/old"})
    assert read_bundle(bundle(new, ki), ON).document["pathology"]["ki67_percent"] == 3.0


def test_a_seealso_link_does_not_merge_two_people():
    a = patient() | {"link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]}
    with pytest.raises(InvalidBundle, match="more than one Patient"):
        read_bundle(bundle(a, patient(pid="p2")), ON)


def test_another_patients_condition_is_not_read():
    c = condition("bone", "C7B.03")
    c["subject"] = {"reference": "Patient/someone-else"}
    imported = read_bundle(bundle(patient(), c), ON)
    assert "extrahepatic" not in imported.document


def test_unmatched_identity_does_not_change_a_copy_of_the_bundle():
    b = bundle(patient(), observation("ki", "29593-1", 3, "%"))
    before = copy.deepcopy(b)
    read_bundle(b, ON)
    assert b == before


# ------------------------------------------------------------------ CDS hooks: context.patientId

def _hook(prefetch: dict, patient_id: str = "p1") -> dict:
    import uuid
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": patient_id}, "prefetch": prefetch}


def _search(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def _prefetch(pat: dict, *observations: dict) -> dict:
    return {"patient": pat, "conditions": _search(condition("mets", "94381002", system="http://snomed.info/sct")),
            "observations": _search(*observations), "procedures": None, "medications": None,
            "medicationRequests": None}


def test_cds_a_prefetched_patient_that_is_not_the_context_patient_gets_a_critical_card_only(client, app):
    other = patient(pid="someone-else")
    ki = observation("ki", "29593-1", 35, "%", subject={"reference": "Patient/someone-else"})
    response = client.post("/cds-services/nelm-plan", json=_hook(_prefetch(other, ki), patient_id="p1"))
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "critical"
    assert "another patient" in cards[0]["summary"]
    assert "someone-else" in cards[0]["detail"]
    assert app.state.store.list().total == 0  # nothing assessed, nothing stored


def test_cds_prefetched_records_of_another_patient_are_not_read(client):
    mine = observation("ki-mine", "29593-1", 1.5, "%", date="2026-01-10")
    theirs = observation("ki-theirs", "29593-1", 35, "%", date="2026-10-01",
                         subject={"reference": "Patient/someone-else"})
    response = client.post("/cds-services/nelm-plan", json=_hook(_prefetch(patient(), mine, theirs)))
    card = response.json()["cards"][0]
    assert "Observation/ki-theirs" in card["detail"]  # listed as not read
    assert card["indicator"] != "critical"


def test_cds_read_hook_reads_only_the_context_patient():
    from nelm.fhir.cds import read_hook
    mine = observation("ki-mine", "29593-1", 1.5, "%", date="2026-01-10")
    theirs = observation("ki-theirs", "29593-1", 35, "%", date="2026-10-01",
                         subject={"identifier": {"system": MRN["system"], "value": "m-999"}})
    imported = read_hook(_hook(_prefetch(_with_identifier(patient(), MRN), mine, theirs)), ON)
    assert imported.document["pathology"]["ki67_percent"] == 1.5
