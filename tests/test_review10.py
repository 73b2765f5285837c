"""Board review 10 (benchmarks/real_cases/REVIEW10.md): what it found, each held by a test that failed before."""
from __future__ import annotations

from nelm.assessment import assess
from nelm.patient import validate_patient
from nelm.summary import plan_view


def _plan(doc: dict) -> dict:
    return assess(validate_patient(doc))["plan"]


def test_a_line_stopped_with_its_outcome_unrecorded_leaves_the_disease_progressing():
    # D10 (rc03): a rectal NET recurring after liver resections, the analogue given before with no outcome and not
    # said to continue: the plan assumed it stopped at progression and, at once, the disease stable
    doc = {"primary": {"site": "rectum", "resected": True}, "pathology": {"differentiation": "well"},
           "symptomatic": True, "liver": {"timing": "metachronous"}, "sstr_imaging": "positive",
           "prior_therapies": [{"therapy": "liver_resection", "outcome": "progression"}, {"therapy": "ssa"}]}
    plan = _plan(doc)
    statements = {a["field"]: a["statement"] for a in plan["assumptions"]}
    assert "course.status" not in statements or "stable" not in statements["course.status"], statements
    assert plan["steps"][0]["options"][0] == "prrt", plan["steps"][0]   # after the analogue: NETTER-1


def test_a_refractory_syndrome_never_given_the_analogue_is_not_said_to_have_failed_on_it():
    # D3 (rc91, rc95): refractory is "despite an SSA or standard syndrome therapy" (contract)
    doc = {"primary": {"site": "pancreas", "resected": False}, "pathology": {"differentiation": "well"},
           "functional_syndrome": "other", "functional_control": "refractory", "symptomatic": True,
           "liver": {"resectable": False}, "prior_therapies": []}
    a = assess(validate_patient(doc))
    texts = [r["text"] for o in a["options"] for r in o["reasons"]] + [s["reason"] for s in a["plan"]["steps"]]
    assert not [t for t in texts if "not controlled on the somatostatin analogue" in t]
    assert any("started if not yet given" in t for t in texts)


def test_a_merged_branch_reads_as_alternatives():
    # D7: "If at most five liver metastases, a single liver metastasis and the surgeon judges all removable" read as
    # one impossible liver; each condition alone leads to the branch's plan
    doc = {"primary": {"site": "other", "resected": False}, "pathology": {"differentiation": "well"},
           "liver": {"timing": "synchronous", "lesion_count": 1, "pattern": "single", "lobes": "unilobar"}}
    a = assess(validate_patient(doc))
    merged = [b for b in a["plan"]["branches"] if len(b["if"]) > 1]
    assert merged, a["plan"]["branches"]
    shown = plan_view(a)["branches"]
    for b, view in zip(a["plan"]["branches"], shown):
        if len(b["if"]) > 1:
            labels = [c["label"] for c in b["if"]]
            assert view["if"] == ", ".join(labels[:-1]) + " or " + labels[-1], view["if"]


def test_an_untreated_syndrome_keeps_embolization_open_while_the_liver_disease_progresses():
    # D12 (pr55): the rule says embolization follows "when the liver disease progresses", yet it held it "not
    # recommended" for progressing disease too
    from nelm.testing import make_patient

    base = {"primary.site": "jejunum_ileum", "pathology.differentiation": "well", "pathology.ki67_percent": 5,
            "functional_syndrome": "carcinoid", "functional_control": "untreated", "symptomatic": True,
            "sstr_imaging": "positive", "prior_therapies": [], "liver.resectable": False,
            "liver.resectable_fraction_percent": 20}

    def rules_of(**course):
        a = assess(make_patient(**base, **course))
        return {r.get("rule") for o in a["options"] if o["id"] in ("tae", "tace") for r in o["reasons"]
                if r.get("kind") == "decisive"}

    assert "untreated_syndrome_analogue_first" in rules_of(**{"course.status": "stable",
                                                               "course.progression_within_12_months": False})
    assert "untreated_syndrome_analogue_first" not in rules_of(**{"course.status": "progressive",
                                                                   "course.progression_within_12_months": True})
