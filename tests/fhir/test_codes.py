"""Entry kinds added to the mapping table: a primary tumour's bodySite, procedures, coded
observation values. Every code of each kind reads into its field; an unknown code stays unread."""
from __future__ import annotations

import pytest

from nelm.fhir import read_bundle
from nelm.fhir.mapping import load_mapping

from bundles import ICD10CM, ON, SNOMED, bundle, condition

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
    assert any(r.source.code == f"bodySite SNOMED CT {code}" for r in imported.provenance)


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


def test_a_body_site_agreeing_with_the_code_is_one_fact():
    ileal = _with_body_site(condition("c", "C7A.012"), "34516001")
    imported = read_bundle(bundle(ileal), ON)
    assert imported.document == {"primary": {"site": "jejunum_ileum"}} and imported.conflicts == []


def test_poorly_differentiated_net_code_sets_differentiation():
    imported = read_bundle(bundle(condition("c", "C7A.1", system=ICD10CM)), ON)
    assert imported.document == {"pathology": {"differentiation": "poor"}}
