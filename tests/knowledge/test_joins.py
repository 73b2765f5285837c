"""Steps that only join today's treatment (`joins: true` in pathways.yaml): the analogue continued as
the backbone beside the next line, telotristat with the analogue. They join the first step that
offers something and never open a plan alone, in the per-case plan and in the plan columns alike
(both read the plan program, nelm.engine.plan_program: tests/test_plan_one_definition.py)."""
from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from nelm.assessment import assess
from nelm.knowledge import load
from nelm.knowledge.plans import Pathway
from nelm.patient import validate_patient

KB = load()

# an unresectable small-intestinal NET G2, SSTR-positive, that progressed on the analogue, with no
# hormonal syndrome: PRRT (NETTER-1) is the next line, the analogue beside it
PROGRESSED_ON_SSA = {
    "age_years": 64, "ecog": 1,
    "primary": {"site": "jejunum_ileum", "resected": True},
    "pathology": {"differentiation": "well", "ki67_percent": 6},
    "functional_syndrome": "none", "symptomatic": False,
    "liver": {"lobes": "bilobar", "pattern": "disseminated", "lesion_count": 12, "resectable": False,
              "liver_function": "normal", "bilirubin_mg_dl": 0.7, "child_pugh": "A"},
    "extrahepatic": {"present": False},
    "sstr_imaging": "positive", "sstr_uptake_krenning": 3, "fdg_pet": "negative",
    "course": {"status": "progressive"},
    "labs": {"egfr_ml_min": 80, "platelets_10e9_per_l": 220, "neutrophils_10e9_per_l": 4.0},
    "prior_therapies": [{"therapy": "ssa", "outcome": "progression", "ongoing": True}],
}


def _first(doc: dict) -> dict:
    return assess(validate_patient(doc))["plan"]["steps"][0]


def _with(doc: dict, **paths) -> dict:
    doc = copy.deepcopy(doc)
    for dotted, value in paths.items():
        node = doc
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return doc


@pytest.mark.parametrize("pw", KB.pathways, ids=lambda pw: pw.id)
def test_a_joining_step_follows_a_step_that_can_open_the_plan(pw):
    for i, step in enumerate(pw.steps):
        if step.joins:
            assert step.when == "now" and step.combine == "together"
            assert any(s.when == "now" and not s.joins for s in pw.steps[:i]), (pw.id, i)


def test_the_model_refuses_a_joining_step_with_nothing_to_join():
    pw = KB.pathways[0].model_dump(by_alias=True)
    pw["steps"] = [dict(pw["steps"][0], joins=True)] + pw["steps"][1:]
    with pytest.raises(ValidationError, match="joins"):
        Pathway.model_validate(pw)


def test_the_backbone_joins_the_next_line():
    step = _first(PROGRESSED_ON_SSA)
    assert step["options"][0] == "prrt" and "ssa" in step["add_on"], step
    assert "backbone" in step["reason"]


def test_with_no_other_line_the_analogue_is_a_bridge_not_a_backbone():
    # ECOG 3 rules out PRRT and the drugs; the analogue after progression on it stands alone, and its
    # step says why (a bridge), not that it goes beside a next line the plan does not name
    step = _first(_with(PROGRESSED_ON_SSA, ecog=3))
    assert step["options"] == ["ssa"] and step["add_on"] == []
    own = step["reason"].split(" For this patient:")[0]   # (the analogue's own reason follows it)
    assert "bridge" in own and "beside the next line" not in own
    assert "clarinet_forte" in step["sources"]


def test_a_controlled_syndrome_keeps_the_analogue_alone_for_its_own_sake():
    doc = _with(PROGRESSED_ON_SSA, ecog=3, functional_syndrome="carcinoid", functional_control="controlled",
                symptomatic=True)
    step = _first(doc)
    assert step["options"] == ["ssa"]
    assert "bridge" not in step["reason"]


def test_telotristat_never_opens_a_plan_alone():
    # a refractory carcinoid syndrome whose analogue was not tolerated: telotristat is given with the
    # analogue (TELESTAR), so it is not the plan's first step on its own
    doc = _with(PROGRESSED_ON_SSA, ecog=3, functional_syndrome="carcinoid", functional_control="refractory",
                symptomatic=True)
    doc["prior_therapies"] = [{"therapy": "ssa", "outcome": "intolerance", "ongoing": False}]
    step = _first(doc)
    assert step["options"] != ["telotristat"], step
    assert not step["options"] or step["options"][0] != "telotristat"
