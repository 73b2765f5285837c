"""Choices in pathways.yaml (`choices`): one option of several, named in a step by a rule written once.

A step lists `embolization`; the loader (nelm.knowledge.plans) puts bland embolization (TAE) and
chemoembolization (TACE) in that place, each under its own condition joined to the one the step gives the
choice. Every reader of the pathways sees only the expanded options, so the rule must stay in one place.
"""
import re

import pytest

from nelm.knowledge import KNOWLEDGE_DIR, load
from nelm.knowledge.plans import PathwaysFile
from nelm.yamlio import read_yaml

RAW = read_yaml(KNOWLEDGE_DIR / "pathways.yaml")
KB = load()


def _raw_id(option) -> str:
    return option if isinstance(option, str) else option["id"]


def _read(options) -> list:
    """Options as (id, condition), a bare id for one without a condition."""
    return [o if isinstance(o, str) else (o.id, o.if_) for o in options]


def _one_step(*options) -> dict:
    """pathways.yaml's own choices, with one pathway whose one step lists these options."""
    return {"choices": RAW["choices"], "assumptions": [],
            "pathways": [{"id": "test_pathway", "label": "a test pathway", "when": "net_g1g2", "sources": ["esmo2020"],
                          "nothing_now": {"reason": "none", "sources": ["esmo2020"]},
                          "steps": [{"when": "at_progression", "options": list(options), "reason": "a test step",
                                     "sources": ["esmo2020"]}]}]}


def _expanded(*options) -> list:
    return _read(PathwaysFile.model_validate(_one_step(*options)).pathways[0].steps[0].options)


def test_embolization_becomes_bland_or_chemoembolization_in_its_place():
    assert _expanded("prrt", "embolization", "sirt") == [
        "prrt", ("tae", "bland_embolization_first"), ("tace", "NOT bland_embolization_first"), "sirt"]


def test_the_condition_a_step_gives_embolization_is_joined_to_each_option_s_own():
    assert _expanded({"id": "embolization", "if": "hormonal_syndrome"}, "ebrt") == [
        ("tae", "hormonal_syndrome AND bland_embolization_first"),
        ("tace", "hormonal_syndrome AND NOT bland_embolization_first"), "ebrt"]


def test_a_condition_with_or_is_bracketed_so_that_it_keeps_its_meaning():
    assert _expanded({"id": "embolization", "if": "hormonal_syndrome OR symptomatic"}) == [
        ("tae", "(hormonal_syndrome OR symptomatic) AND bland_embolization_first"),
        ("tace", "(hormonal_syndrome OR symptomatic) AND NOT bland_embolization_first")]


@pytest.mark.parametrize("beside", ["tae", "tace", {"id": "tace", "if": "hormonal_syndrome"}])
def test_a_step_naming_embolization_and_one_of_its_options_is_refused_with_the_step_named(beside):
    with pytest.raises(ValueError, match=r"pathway test_pathway step 1 \(at_progression\) names "
                                         r"'ta(e|ce)' beside 'embolization'"):
        PathwaysFile.model_validate(_one_step("prrt", "embolization", beside))


def test_an_option_named_twice_is_refused():
    with pytest.raises(ValueError, match=r"pathway test_pathway step 1 \(at_progression\) names 'prrt' twice"):
        PathwaysFile.model_validate(_one_step("prrt", "everolimus", "prrt"))


def test_a_choice_option_without_its_condition_is_refused():
    data = _one_step("embolization")
    data["choices"] = [{**RAW["choices"][0], "options": [{"id": "tae"}, {"id": "tace", "if": "true"}]}]
    with pytest.raises(ValueError, match="choice embolization: option"):
        PathwaysFile.model_validate(data)


def test_the_knowledge_base_reads_the_expanded_steps():
    thoracic = next(pw for pw in KB.pathways if pw.id == "thoracic_carcinoid")
    persist = next(s for s in thoracic.steps if s.when == "if_symptoms_persist")
    assert _read(persist.options) == [
        ("telotristat", "functional_syndrome = 'carcinoid'"), ("interferon_alpha", "functional_syndrome = 'carcinoid'"),
        ("tae", "hormonal_syndrome AND bland_embolization_first"),
        ("tace", "hormonal_syndrome AND NOT bland_embolization_first"),
        ("prrt", "hormonal_syndrome"), ("ebrt", "extrahepatic_symptomatic")]
    named = [(pw.id, i) for pw in KB.pathways for i, s in enumerate(pw.steps)
             for o in s.options if (o if isinstance(o, str) else o.id) == "embolization"]
    assert named == [], "a choice's id reached the planner unexpanded"


def test_no_step_spells_a_choice_out_by_hand():
    """The rule stays written once: steps name the choice, never its options under its conditions."""
    assert RAW["choices"], "pathways.yaml defines no choice"
    for choice in RAW["choices"]:
        own = {o["id"] for o in choice["options"]}
        # the names the choice's conditions read (bland_embolization_first), SQL keywords aside
        deciding = {w for o in choice["options"] for w in re.findall(r"\b[a-z][a-z0-9_]*\b", o["if"])}
        steps = [(pw["id"], i + 1, s) for pw in RAW["pathways"] for i, s in enumerate(pw["steps"])]
        assert any(choice["id"] in map(_raw_id, s["options"]) for *_, s in steps), f"no step names {choice['id']!r}"
        pairs = [(pw, n) for pw, n, s in steps if own <= set(map(_raw_id, s["options"]))]
        assert pairs == [], f"name {choice['id']!r} in these steps in place of {sorted(own)}"
        spelled = [(pw, n, o["id"]) for pw, n, s in steps for o in s["options"]
                   if not isinstance(o, str) and deciding & set(re.findall(r"\b[a-z][a-z0-9_]*\b", o.get("if") or ""))]
        assert spelled == [], f"these options repeat the condition of the choice {choice['id']!r}"
