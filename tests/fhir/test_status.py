"""Clinical and verification status (issue 20 item 2): a Condition is a fact only when confirmed
(or unstated) and current (active, recurrence, relapse; or unstated without an abatement); a
therapy whose records are only partly read keeps `ongoing` unknown."""
from __future__ import annotations

import pytest

from nelm.fhir import read_bundle

from bundles import ATC, ON, bundle, condition, medication, patient

VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _bone(verification: str | None = None, clinical: str | None = None, abatement: str | None = None) -> dict:
    c = condition("bone", "C7B.03", verification=verification)
    if clinical:
        c["clinicalStatus"] = {"coding": [{"system": CLIN, "code": clinical}]}
    if abatement:
        c["abatementDateTime"] = abatement
    return c


def _reason(imported) -> str:
    return next(u.reason for u in imported.unread if u.resource == "Condition/bone")


@pytest.mark.parametrize("verification", ["provisional", "differential", "unconfirmed", "refuted", "entered-in-error"])
def test_an_unconfirmed_metastasis_is_listed_not_read(verification):
    imported = read_bundle(bundle(patient(), _bone(verification, "active")), ON)
    assert "extrahepatic" not in imported.document
    assert _reason(imported).startswith("verification status") and "not a confirmed fact" in _reason(imported)


def test_a_provisional_bone_metastasis_does_not_make_extrahepatic_disease_present():
    """The issue's case: a suspected bone metastasis (PET pending) must not read as present."""
    imported = read_bundle(bundle(patient(), _bone("provisional", "active")), ON)
    assert imported.document == {"age_years": 58}
    assert "provisional (suspected, not confirmed)" in _reason(imported)


@pytest.mark.parametrize("clinical", ["resolved", "remission", "inactive"])
def test_a_metastasis_no_longer_current_is_listed_not_read(clinical):
    imported = read_bundle(bundle(patient(), _bone("confirmed", clinical, "2022-08-02")), ON)
    assert "extrahepatic" not in imported.document
    assert _reason(imported).startswith("clinical status") and "not a current fact" in _reason(imported)


def test_resolved_lymph_node_metastases_from_2022_are_not_extrahepatic_disease():
    c = condition("bone", "C7B.01", verification="confirmed")
    c |= {"clinicalStatus": {"coding": [{"system": CLIN, "code": "resolved"}]}, "abatementDateTime": "2022-08-02"}
    imported = read_bundle(bundle(patient(), c), ON)
    assert "extrahepatic" not in imported.document


@pytest.mark.parametrize("clinical", ["active", "recurrence", "relapse", None])
@pytest.mark.parametrize("verification", ["confirmed", None])
def test_a_confirmed_current_metastasis_is_read(clinical, verification):
    imported = read_bundle(bundle(patient(), _bone(verification, clinical)), ON)
    assert imported.document["extrahepatic"] == {"present": True, "sites": ["bone"]}


def test_an_abatement_without_clinical_status_is_not_current():
    imported = read_bundle(bundle(patient(), _bone(abatement="2023-01-01")), ON)
    assert "extrahepatic" not in imported.document
    assert _reason(imported) == "abated on 2023-01-01 (no clinical status given): not a current fact"


def test_an_active_condition_with_an_abatement_is_contradictory_and_not_read():
    imported = read_bundle(bundle(patient(), _bone("confirmed", "active", "2023-01-01")), ON)
    assert "extrahepatic" not in imported.document
    assert "contradictory" in _reason(imported)


def test_an_unknown_status_code_is_not_read():
    imported = read_bundle(bundle(patient(), _bone("maybe", "active")), ON)
    assert "extrahepatic" not in imported.document


# ------------------------------------------------------------------ therapies partly read

def _unreadable_active_order() -> dict:
    return {"resourceType": "MedicationRequest", "id": "mystery", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-10-15",
            "medicationCodeableConcept": {"coding": [{"system": "http://example.org/local-drugs", "code": "X-17"}]}}


def test_a_therapy_whose_records_are_partly_read_keeps_ongoing_unknown():
    """The issue's case: octreotide completed, then an SSA order that cannot be read: not 'not ongoing'."""
    done = medication("octreotide", "H01CB02", status="completed", system=ATC, start="2024-01-10", end="2025-09-30")
    imported = read_bundle(bundle(patient(), done, _unreadable_active_order()), ON)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa"}]  # ongoing unknown
    assert any("MedicationRequest/mystery" in n for n in imported.notes)
    assert any(u.resource == "MedicationRequest/mystery" for u in imported.unread)


def test_all_treatment_records_read_and_ended_is_not_ongoing():
    done = medication("octreotide", "H01CB02", status="completed", system=ATC, start="2024-01-10", end="2025-09-30")
    imported = read_bundle(bundle(patient(), done), ON)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa", "ongoing": False}]
    assert imported.notes == []


def test_an_unreadable_ended_record_does_not_unsettle_ongoing():
    done = medication("octreotide", "H01CB02", status="completed", system=ATC, start="2024-01-10", end="2025-09-30")
    old = _unreadable_active_order() | {"status": "completed"}
    imported = read_bundle(bundle(patient(), done, old), ON)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa", "ongoing": False}]


def test_an_ongoing_record_stays_ongoing_whatever_is_unread():
    active = medication("octreotide", "H01CB02", status="active", system=ATC)
    imported = read_bundle(bundle(patient(), active, _unreadable_active_order()), ON)
    assert imported.document["prior_therapies"] == [{"therapy": "ssa", "ongoing": True}]
