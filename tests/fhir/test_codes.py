"""Entry kinds added to the mapping table: a primary tumour's bodySite, procedures, coded
observation values. Every code of each kind reads into its field; an unknown code stays unread."""
from __future__ import annotations

import pytest

from nelm.fhir import read_bundle
from nelm.fhir.mapping import load_mapping
from nelm.patient import set_field

from bundles import ICD10CM, ON, SNOMED, SUBJECT, bundle, condition

MAPPING = load_mapping()


def _with_body_site(c: dict, code: str, system: str = SNOMED) -> dict:
    return c | {"bodySite": [{"coding": [{"system": system, "code": code}]}]}


# ------------------------------------------------------------------ Condition.bodySite

@pytest.mark.parametrize("key", sorted(MAPPING.body_sites), ids=lambda k: k[1])
def test_every_body_site_of_a_primary_net_sets_the_primary_site(key):
    system, code = key
    primary = _with_body_site(condition("c", "C7A.00"), code, system)  # NET of unspecified site
    imported = read_bundle(bundle(primary), ON)
    assert imported.document == {"primary": {"site": MAPPING.body_sites[key].site}}
    assert imported.unread == []
    assert any(r.source.code == f"bodySite {MAPPING.system_name(system)} {code}" for r in imported.provenance)


def test_an_unknown_body_site_is_reported_and_the_site_stays_unknown():
    primary = _with_body_site(condition("c", "C7A.00"), "30315005")  # small intestine: names no single site
    imported = read_bundle(bundle(primary), ON)
    assert imported.document == {}
    assert len(imported.unread) == 1 and "bodySite SNOMED CT 30315005" in imported.unread[0].reason


def test_the_body_site_of_a_metastasis_is_not_the_primary_site():
    metastasis = _with_body_site(condition("m", "94381002", system=SNOMED), "15776009")
    imported = read_bundle(bundle(metastasis), ON)
    assert "primary" not in imported.document


def test_a_body_site_disagreeing_with_the_code_is_a_conflict():
    ileal = _with_body_site(condition("c", "C7A.012"), "15776009")  # ileal code, pancreatic bodySite
    imported = read_bundle(bundle(ileal), ON)
    assert [c.field for c in imported.conflicts] == ["primary.site"]
    assert "primary" not in imported.document  # same record, same date: nothing settles it


def test_icd_o_3_topography_is_read_in_its_own_system_only():
    icdo3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
    pancreatic = read_bundle(bundle(_with_body_site(condition("c", "C7A.00"), "C25.4", icdo3)), ON)
    assert pancreatic.document == {"primary": {"site": "pancreas"}}
    # the same characters in ICD-10-CM are a diagnosis code, not a topography: not a body site
    wrong_system = read_bundle(bundle(_with_body_site(condition("c", "C7A.00"), "C25.4", ICD10CM)), ON)
    assert wrong_system.document == {} and "bodySite ICD-10-CM C25.4" in wrong_system.unread[0].reason


def test_a_body_site_agreeing_with_the_code_is_one_fact():
    ileal = _with_body_site(condition("c", "C7A.012"), "34516001")
    imported = read_bundle(bundle(ileal), ON)
    assert imported.document == {"primary": {"site": "jejunum_ileum"}} and imported.conflicts == []


def test_poorly_differentiated_net_code_sets_differentiation():
    imported = read_bundle(bundle(condition("c", "C7A.1", system=ICD10CM)), ON)
    assert imported.document == {"pathology": {"differentiation": "poor"}}


# ------------------------------------------------------------------ Procedure

def procedure(pid: str, code: str, status: str = "completed", system: str = SNOMED,
              date: str = "2024-03-01") -> dict:
    return {"resourceType": "Procedure", "id": pid, "status": status, "subject": SUBJECT,
            "code": {"coding": [{"system": system, "code": code}]}, "performedDateTime": date}


def _expected(rule) -> dict:
    doc: dict = {}
    for dotted, value in rule.sets.items():
        set_field(doc, dotted, value)
    return doc


@pytest.mark.parametrize("key", sorted(MAPPING.procedures), ids=lambda k: k[1])
def test_every_procedure_code_sets_its_fields_and_resects_only_the_primary_there(key):
    system, code = key
    rule = MAPPING.procedures[key]
    alone = read_bundle(bundle(procedure("p", code, system=system)), ON)
    assert alone.document == _expected(rule)
    # with the primary site unknown, a resection is reported, never taken as the primary's
    assert [u.resource for u in alone.unread] == (["Procedure/p"] if rule.resects else [])
    for site in rule.resects:
        site_system, site_code = next(k for k, b in MAPPING.body_sites.items() if b.site == site)
        primary = _with_body_site(condition("c", "C7A.00"), site_code, site_system)
        imported = read_bundle(bundle(primary, procedure("p", code, system=system)), ON)
        assert imported.document["primary"] == {"site": site, "resected": True}
        assert imported.unread == []


def test_a_resection_of_another_organ_is_not_the_primary_resection():
    ileal = condition("c", "C7A.012")
    imported = read_bundle(bundle(ileal, procedure("p", "80146002")), ON)  # appendectomy, ileal primary
    assert imported.document == {"primary": {"site": "jejunum_ileum"}}
    assert "the primary site read is jejunum_ileum" in imported.unread[0].reason


def test_whipple_means_a_bilio_enteric_anastomosis_and_resects_a_pancreatic_primary():
    imported = read_bundle(bundle(condition("c", "C25.4"), procedure("p", "116241004")), ON)
    assert imported.document == {"primary": {"site": "pancreas", "resected": True},
                                 "liver": {"biliary_enteric_bypass": True}}


@pytest.mark.parametrize("status", ["in-progress", "stopped"])
def test_a_procedure_not_completed_states_nothing(status):
    imported = read_bundle(bundle(procedure("p", "55253009", status=status)), ON)
    assert imported.document == {}
    assert "only a completed procedure is read" in imported.unread[0].reason


def test_an_unknown_procedure_code_stays_unread():
    imported = read_bundle(bundle(procedure("p", "34068001")), ON)  # generic heart valve replacement: left out
    assert imported.document == {}
    assert "SNOMED CT 34068001" in imported.unread[0].reason


def test_lutetium_dotatate_by_snomed_is_prrt():
    med = {"resourceType": "MedicationAdministration", "id": "m", "status": "completed", "subject": SUBJECT,
           "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "781259000"}]},
           "effectivePeriod": {"start": "2024-01-01", "end": "2024-06-01"}}
    imported = read_bundle(bundle(med), ON)
    assert imported.document == {"prior_therapies": [{"therapy": "prrt", "ongoing": False}]}
