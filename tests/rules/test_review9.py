"""Board review 9: two knowledge defects found on published patients (REVIEW9.md).

1. A surgeon's judgement that all hepatic disease can be removed (``liver.resectable: true``)
   left the removable share unknown, so the curative-resection reason read "All ENETS criteria
   for curative resection are met (removable share of the hepatic tumour unknown, grade G1)"
   (rc82, rc83 on its assumption, rc86) and the ENETS checklist item quoted "removable share of
   hepatic tumour unknown". The contract defines the two fields as one fact (true <-> 100 %);
   ``follows.yaml`` filled the judgement from a 100 % share but not the share from the
   judgement. It now does both.
2. Reasons written around a number ("with the liver {burden} % involved", "with {share} % of
   the hepatic tumour removable", "liver involvement of {burden} %") read as broken sentences
   when the number is unknown and the reason is shown as a possibility ("with the liver unknown
   involved", "Symptomatic G1/G2 disease with unknown of the hepatic tumour removable",
   "with liver involvement of unknown"; rc81, rc83). They now name the quantity and give its
   value in brackets, which reads the same whether it is known or not.
"""
import re

from nelm import follows
from nelm.assessment import assess
from nelm.patient import validate_patient

# rc86: a young man, grade 1 NET, one liver lesion, DOTANOC liver-only, the surgeon removes it
RC86 = {"age_years": 26, "primary": {"site": "unknown_primary", "resected": False},
        "pathology": {"differentiation": "well", "reported_grade": "G1"},
        "liver": {"lesion_count": 1, "lobes": "unilobar", "pattern": "single", "resectable": True},
        "extrahepatic": {"present": False}, "sstr_imaging": "positive"}

# rc83: three small lesions (largest 2.4 cm), Ki-67 4 %, nothing else known
RC83 = {"primary": {"site": "unknown_primary", "resected": False}, "pathology": {"ki67_percent": 4},
        "liver": {"lesion_count": 3, "largest_lesion_cm": 2.4}}

# rc81: an elderly man, presacral G2 NET, recurrent liver disease and peritoneal seeding after a hepatectomy
RC81 = {"age_years": 82, "primary": {"site": "other", "resected": False},
        "pathology": {"differentiation": "well", "reported_grade": "G2"}, "liver": {"timing": "metachronous"},
        "extrahepatic": {"present": True, "sites": ["peritoneum"]}, "sstr_imaging": "positive",
        "prior_therapies": [{"therapy": "liver_resection", "outcome": "progression", "months_to_progression": 48}]}


def _assess(doc):
    return assess(validate_patient(doc))


def _option(a, oid):
    return next(o for o in a["options"] if o["id"] == oid)


def test_the_surgeons_judgement_that_all_is_removable_is_a_removable_share_of_100_percent():
    a = _assess(RC86)
    resection = _option(a, "liver_resection")
    assert resection["verdict"] == "preferred"
    text = " ".join(r["text"] for r in resection["reasons"])
    assert "removable share of the hepatic tumour 100 %" in text, text
    assert "removable share of the hepatic tumour unknown" not in text, text
    item = a["criteria"]["enets_curative_resection"]["items"][0]
    assert "removable share of hepatic tumour 100 %" in item["reason"], item["reason"]
    assert a["plan"]["steps"][0]["options"][0] == "liver_resection"


def test_the_share_follows_only_from_a_known_judgement_and_never_overrides_a_recorded_share():
    recs = {r.id: r for r in follows.records()}
    rec = recs["whole_share_from_the_judgement"]
    assert rec.column == "liver_resectable_fraction_percent" and rec.value == 100
    # a recorded share is kept as recorded (a record never overwrites what the document gives)
    doc = {**RC86, "liver": {**RC86["liver"], "resectable": None, "resectable_fraction_percent": 100}}
    text = " ".join(r["text"] for r in _option(_assess(doc), "liver_resection")["reasons"])
    assert "100 %" in text
    # an unresectable judgement does not invent a share
    doc = {**RC86, "liver": {**RC86["liver"], "resectable": False}}
    a = _assess(doc)
    assert "removable share of hepatic tumour unknown" in a["criteria"]["enets_curative_resection"]["items"][0]["reason"]


_BROKEN = re.compile(r"\bunknown of\b|\bof unknown\b|liver unknown involved|with a removable share of unknown"
                     r"|\(unknown involvement\)")


def _all_reasons(a):
    return [(o["id"], r["text"]) for o in a["options"] for r in o["reasons"]]


def test_reasons_about_an_unknown_burden_or_share_read_as_sentences():
    for doc in (RC81, RC83):
        a = _assess(doc)
        broken = [(oid, t) for oid, t in _all_reasons(a) if _BROKEN.search(t)]
        assert not broken, broken


def test_a_known_burden_is_still_quoted_with_its_unit():
    doc = {"ecog": 1, "primary": {"site": "jejunum_ileum", "resected": True},
           "pathology": {"differentiation": "well", "ki67_percent": 3},
           "liver": {"resectable": False, "lobes": "bilobar", "pattern": "disseminated", "burden_percent": 60},
           "extrahepatic": {"present": False}, "sstr_imaging": "positive", "functional_syndrome": "none",
           "symptomatic": False, "course": {"status": "progressive"},
           "prior_therapies": [{"therapy": "ssa", "outcome": "progression"}]}
    a = _assess(doc)
    prrt = " ".join(r["text"] for r in _option(a, "prrt")["reasons"])
    assert "hepatic tumour burden 60 %" in prrt, prrt
