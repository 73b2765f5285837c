"""Knowledge base 2026.12.7: a hormonal syndrome's symptoms are not read as tumour bulk, and a NET reported as G3
without its Ki-67 is planned within NETTER-2's range with a branch above it."""
from __future__ import annotations

import pytest

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.testing import make_patient

UNRESECTABLE = {"liver.burden_percent": 35, "liver.pattern": "disseminated", "liver.lesion_count": 30,
                "liver.largest_lesion_cm": 3, "liver.resectable_fraction_percent": 20, "liver.resectable": False}
PROGRESSIVE = {"course.status": "progressive", "course.progression_within_12_months": True, "course.stable_months": 0}
PNET = {"primary.site": "pancreas", "pathology.differentiation": "well", "pathology.ki67_percent": 5,
        "sstr_imaging": "positive", "symptomatic": True, "fdg_pet": "negative"}


@pytest.mark.parametrize("syndrome,captem", [
    ("none", "preferred"),          # symptoms of bulk: chemotherapy, which shrinks tumours, is favoured (E2211)
    ("glucagonoma", "reasonable"),  # the symptoms are the hormone excess: not a sign of bulk
    ("vipoma", "reasonable"),
])
def test_symptoms_of_a_syndrome_are_not_a_sign_of_bulk(syndrome, captem):
    a = assess(make_patient(**UNRESECTABLE, **PROGRESSIVE, **PNET, functional_syndrome=syndrome))
    o = {x["id"]: x for x in a["options"]}
    assert o["capecitabine_temozolomide"]["verdict"] == captem
    lead = a["plan"]["steps"][0]["options"][0]
    assert (lead == "capecitabine_temozolomide") == (captem == "preferred"), a["plan"]["steps"][0]["options"]


def _g3(ki67=None):
    # a MEN1 gastric NET reported as G3, unilobar liver disease of unknown resectability, progressing after
    # embolization (rc12): the plan rests on assumptions, and its index decides PRRT's place
    doc = {"primary": {"site": "stomach", "resected": True},
           "pathology": {"differentiation": "well", "reported_grade": "G3", "ki67_percent": ki67},
           "liver": {"timing": "metachronous", "lobes": "unilobar"}, "sstr_imaging": "positive",
           "course": {"status": "progressive"}, "prior_therapies": [{"therapy": "tae", "outcome": "progression"}]}
    return assess(validate_patient(doc))


def test_a_net_reported_g3_without_its_index_is_planned_within_netter2_range():
    plan = _g3()["plan"]
    assert plan["pathway"] == "net_g3"
    assert "prrt" in plan["steps"][0]["options"], plan["steps"][0]
    assert "Ki-67 assumed 30 %" in plan["steps"][0]["reason"]
    # the branch that is not liver surgery keeps PRRT beside chemotherapy
    assert any("prrt" in b["steps"][0]["options"] for b in plan["branches"]), plan["branches"]


def test_a_net_g3_index_above_55_keeps_prrt_out_of_the_first_step():
    plan = _g3(60)["plan"]
    assert "prrt" not in plan["steps"][0]["options"], plan["steps"][0]
