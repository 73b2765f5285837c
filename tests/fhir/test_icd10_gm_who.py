"""ICD-10-GM and WHO ICD-10 (issue 20 item 4): a German (MII-style) and a WHO-coded Bundle are
read like their ICD-10-CM twins; a German Diagnosesicherheit other than G is not a fact; codes
the lists do not have (C7A / C7B) and site codes (C17.x) are not read."""
from __future__ import annotations

import pytest

from nelm.fhir import read_bundle
from nelm.fhir.mapping import load_mapping

from bundles import ON, bundle, condition, observation

GM = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"
WHO = "http://hl7.org/fhir/sid/icd-10"
CERTAINTY = "http://fhir.de/StructureDefinition/icd-10-gm-diagnosesicherheit"
KBV = "https://fhir.kbv.de/CodeSystem/KBV_CS_SFHIR_ICD_DIAGNOSESICHERHEIT"


def gm(cid: str, code: str, certainty: str | None = "G", version: str = "2025") -> dict:
    c = condition(cid, code, GM)
    coding = c["code"]["coding"][0] | {"version": version}
    if certainty:
        coding["extension"] = [{"url": CERTAINTY, "valueCoding": {"system": KBV, "code": certainty}}]
    c["code"]["coding"] = [coding]
    return c


def _fields(imported) -> dict:
    doc = imported.document
    return {"site": doc.get("primary", {}).get("site"), "syndrome": doc.get("functional_syndrome"),
            "extrahepatic": doc.get("extrahepatic", {})}


@pytest.mark.parametrize("system", [GM, WHO])
def test_a_bundle_coded_in_icd_10_gm_or_who_is_read(system):
    make = (lambda cid, code: gm(cid, code)) if system == GM else (lambda cid, code: condition(cid, code, WHO))
    imported = read_bundle(bundle(
        make("liver", "C78.7"), make("primary", "C25.4"), make("syndrome", "E34.0"),
        make("nodes", "C77.2"), make("lung", "C78.0"), make("bone", "C79.5"), make("adrenal", "C79.7"),
        observation("ecog", "89247-1", 1)), ON)
    assert imported.unread == [] or all("Observation" in u.resource for u in imported.unread)
    got = _fields(imported)
    assert got["site"] == "pancreas" and got["syndrome"] == "carcinoid"
    assert got["extrahepatic"]["present"] is True
    assert set(got["extrahepatic"]["sites"]) == {"lymph_nodes", "lung", "bone", "other"}
    name = "ICD-10-GM" if system == GM else "ICD-10"
    liver = [r for r in imported.provenance if r.source.resource.endswith("liver")]
    assert liver and name in liver[0].source.code
    imported.patient()  # a valid patient document


@pytest.mark.parametrize("certainty", ["A", "V", "Z", "X"])
def test_a_german_diagnosis_not_certain_is_not_a_fact(certainty):
    imported = read_bundle(bundle(gm("liver", "C78.7"), gm("syndrome", "E34.0", certainty)), ON)
    assert imported.document.get("functional_syndrome") is None
    [unread] = [u for u in imported.unread if u.resource.endswith("syndrome")]
    assert "Diagnosesicherheit" in unread.reason


def test_a_german_diagnosis_without_certainty_is_read():
    imported = read_bundle(bundle(gm("liver", "C78.7"), gm("syndrome", "E34.0", None)), ON)
    assert imported.document.get("functional_syndrome") == "carcinoid"


@pytest.mark.parametrize("system, code", [
    (GM, "C7A.010"), (WHO, "C7B.02"),   # ICD-10-CM's neuroendocrine codes: in neither list
    (GM, "C17.2"), (WHO, "C17.2"),      # site codes: an adenocarcinoma has them too
    (GM, "C78.6"), (WHO, "C79.9"),      # retroperitoneum and peritoneum; no site
    (WHO, "C78.7 "),                    # not the code (trailing space)
])
def test_codes_not_in_the_table_are_unread(system, code):
    imported = read_bundle(bundle(condition("x", code, system)), ON)
    assert [u.resource for u in imported.unread if u.resource.endswith("x")]


def test_every_gm_and_who_entry_says_where_it_was_confirmed():
    m = load_mapping()
    entries = [c for c in m.conditions.values() if "ICD-10-GM" in c.label or "WHO ICD-10" in c.label]
    assert len({id(e) for e in entries}) == 14  # seven facts, in each of the two classifications
    for e in entries:
        assert ("icd10gm2017syst_kodes.txt" in e.confirmed) or ("icd_10_v2019.xml" in e.confirmed)
