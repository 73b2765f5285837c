"""Caveats never vanish (issue 19, item 4).

Every gate that holds appears on its option, binding or not; when several gates hold the most severe
decides and its reason leads; an option's condition names the strictest requirement; requirement texts
state the threshold applied; a patient with no active option left gets best supportive care."""
import random
import re

import polars as pl
import pytest

from nelm.assessment import assess
from nelm.engine import evaluate, evaluate_frame, patients_frame
from nelm.knowledge import load, rule_column
from nelm.knowledge.ruleset import Rule
from nelm.patient import COLUMN_FIELDS, flatten, validate_patient
from nelm.testing import FIELD_VALUES, make_patient, patient_dict, random_patient_dict

KB = load()
UNRESECTABLE = {"liver.burden_percent": 30, "liver.lesion_count": 20, "liver.largest_lesion_cm": 3.0,
                "liver.lobes": "bilobar", "liver.pattern": "dominant_with_satellites",
                "liver.resectable_fraction_percent": 20}
PROGRESSIVE = {"course.status": "progressive", "course.stable_months": 0, "course.progression_within_12_months": True}


def options(**changes):
    a = assess(make_patient(**changes))
    return a, {o["id"]: o for o in a["options"]}


def gates(opt) -> list[Rule]:
    return [r for r in opt.rules if isinstance(r, Rule) and r.gate]


# ------------------------------------------------------------------ the cases of the issue

def test_a_whipple_shows_on_embolization_and_ablation_even_when_another_gate_decides():
    base = {**UNRESECTABLE, **PROGRESSIVE, "liver.biliary_enteric_bypass": True}
    _, o = options(**base, **{"liver.child_pugh": "C", "liver.liver_function": "impaired"})
    for i in ("tae", "tace", "thermal_ablation", "sirt"):
        assert o[i]["verdict"] == "contraindicated", i
        assert o[i]["reasons"][0]["rule"] == "decompensated_liver"
        note = [r for r in o[i]["reasons"] if r["rule"] == "biliary_bypass"]
        assert note and note[0]["kind"] == "note", i


def test_the_most_severe_gate_decides_and_leads():
    """'contraindicated, decompensated liver' rather than 'not recommended, ECOG 3'."""
    _, o = options(**UNRESECTABLE, **PROGRESSIVE, ecog=3, **{"liver.child_pugh": "C", "liver.liver_function": "impaired"})
    for i in ("tae", "tace", "sirt", "thermal_ablation"):
        assert o[i]["verdict"] == "contraindicated"
        assert o[i]["reasons"][0]["rule"] == "decompensated_liver"
        assert "poor_performance_status" in [r["rule"] for r in o[i]["reasons"]]


def test_gates_are_expanded_most_severe_first():
    for opt in KB.options:
        sev = [r.severity for r in gates(opt)]
        assert sev == sorted(sev), opt.id


DISEASE = {**UNRESECTABLE, **PROGRESSIVE}
PNET = {**DISEASE, "primary.site": "pancreas", "pathology.ki67_percent": 12}


@pytest.mark.parametrize("base,changes,option,field,requirement", [
    ({}, {"liver.child_pugh": ...}, "liver_resection", "liver.child_pugh", "Child-Pugh A"),
    ({}, {"liver.bilirubin_mg_dl": ...}, "liver_resection", "liver.bilirubin_mg_dl", "bilirubin at most 2 mg/dL"),
    (DISEASE, {"labs.egfr_ml_min": ...}, "prrt", "labs.egfr_ml_min", "eGFR above 50 mL/min"),
    (PNET, {"ecog": ...}, "sunitinib", "ecog", "performance status ECOG 0-1"),
    (DISEASE, {"liver.lung_shunt_percent": ...}, "sirt", "liver.lung_shunt_percent",
     "lung shunt fraction at most 10 % for full activity"),
    (PNET, {"labs.neutrophils_10e9_per_l": ...}, "capecitabine_temozolomide", "labs.neutrophils_10e9_per_l",
     "neutrophils at least 1.5 ×10⁹/L"),
])
def test_a_condition_names_the_strictest_requirement(base, changes, option, field, requirement):
    _, o = options(**base, **changes)
    cond = {c["field"]: c["requirement"] for c in o[option].get("conditions", [])}
    assert cond.get(field) == requirement, o[option]["verdict"]


def test_the_renal_prrt_requirement_says_the_threshold_it_applies():
    g = next(r for r in next(x for x in KB.options if x.id == "prrt").rules if r.id == "renal_failure_prrt")
    assert "< 30" in g.when and "30" in g.requirement and "50" not in g.requirement
    assert "default" in g.reason


def test_no_active_option_left_means_best_supportive_care():
    """Child-Pugh C with ECOG 3 got 'the next line' and CLARINET FORTE."""
    progressed = [{"therapy": "ssa", "outcome": "progression", "ongoing": True}]
    a, o = options(**UNRESECTABLE, **PROGRESSIVE, ecog=3, prior_therapies=progressed,
                   **{"liver.child_pugh": "C", "liver.liver_function": "impaired"})
    plan = a["plan"]
    assert plan["pathway"] == "best_supportive_care"
    assert plan["steps"][0]["intent"] == "symptom_control" and "Best supportive care" in plan["steps"][0]["reason"]
    assert "CLARINET FORTE" not in plan["steps"][0]["reason"]
    assert not [s for s in plan["steps"] if s["when"] == "at_progression"]
    a, _ = options(**UNRESECTABLE, **PROGRESSIVE, ecog=3, sstr_imaging="negative",
                   **{"liver.child_pugh": "C", "liver.liver_function": "impaired"})
    assert a["plan"]["pathway"] == "best_supportive_care" and a["plan"]["steps"][0]["options"] == []
    assert "Best supportive care" in a["plan"]["steps"][0]["reason"]


# ------------------------------------------------------------------ properties

@pytest.fixture(scope="module")
def patients():
    rng = random.Random(1919)
    docs = [random_patient_dict(rng, share) for share in (0.0, 0.2) for _ in range(250)]
    return [validate_patient(d) for d in docs]


def test_every_gate_that_holds_appears_on_its_option(patients):
    for p in patients:
        ev = evaluate(p, KB)
        shown = {o["id"]: {r["rule"] for r in o["reasons"]} for o in assess(p)["options"]}
        for opt in KB.options:
            for r in gates(opt):
                if ev.verdicts[rule_column(opt.id, r.id)] is True:
                    assert r.id in shown[opt.id], (opt.id, r.id)


_NUMBER_WITH_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:mL/min|mg/dL|×10⁹/L|%)")


def _sql_numbers(sql: str, seen: set[str] | None = None) -> set[float]:
    """Numeric literals of a condition, through the derived variables it reads."""
    seen = set() if seen is None else seen
    out = {float(x) for x in re.findall(r"(?<![\w.'])\d+(?:\.\d+)?(?![\w.'])", sql)}
    for d in KB.derived:
        if d.name not in seen and re.search(rf"\b{d.name}\b", sql):
            seen.add(d.name)
            out |= _sql_numbers(d.sql, seen)
    return out


def test_no_requirement_states_a_threshold_other_than_the_one_applied():
    for opt in KB.options:
        for r in opt.rules:
            if not isinstance(r, Rule) or not r.requirement:
                continue
            texts = r.requirement.values() if isinstance(r.requirement, dict) else [r.requirement]
            applied = _sql_numbers(r.when)
            for t in texts:
                stated = {float(x) for x in _NUMBER_WITH_UNIT.findall(t)}
                assert stated <= applied, (opt.id, r.id, t, applied)


def _record_numbers(rec) -> set[float]:
    out: set[float] = set()
    for text in [rec.population, rec.intervention, rec.summary or ""] + [c.text for c in rec.criteria or []]:
        out |= {float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text)}
    for o in rec.outcomes:
        out |= {float(v) for v in (o.value, o.ci_low, o.ci_high) if v is not None}
    return out


def test_gate_reasons_state_only_applied_or_sourced_thresholds():
    for opt in KB.options:
        applied = set().union(*[_sql_numbers(r.when) for r in gates(opt)] or [set()])
        for r in gates(opt):
            text = re.sub(r"\{[^}]*\}", "", r.reason)
            stated = {float(x) for x in _NUMBER_WITH_UNIT.findall(text)}
            sourced = set().union(*[_record_numbers(KB.evidence[s]) for s in r.sources])
            assert stated <= applied | sourced, (opt.id, r.id, stated - applied - sourced)


def _trips(option: str, rule: str, field: str) -> set:
    """The values of one check field (the rest as in an ordinary patient) for which a rule holds."""
    col = next(c for c, f in COLUMN_FIELDS.items() if f == field)
    values = FIELD_VALUES.get(field) or []
    docs = []
    for v in values:
        doc = patient_dict(**UNRESECTABLE, **PROGRESSIVE, **{field: v})
        if field == "liver.child_pugh" and v != "A":
            doc["liver"]["liver_function"] = "impaired"
        docs.append(doc)
    frame = evaluate_frame(patients_frame([flatten(validate_patient(d)) for d in docs]), KB)
    held = frame.filter(pl.col(rule_column(option, rule)) == True)  # noqa: E712
    return set(held[col].to_list())


def test_the_gate_named_first_for_a_check_is_the_strictest():
    """Among the gates of one option that state a requirement for the same check, the one read first for the
    condition (gates.yaml's order) trips on every value any later one trips on."""
    checks = {c.field for c in KB.checks}
    for opt in KB.options:
        by_field: dict[str, list[Rule]] = {}
        for r in sorted(gates(opt), key=lambda r: r.rank):
            for field in checks:
                if field in FIELD_VALUES and r.requirement and r.requirement_for(field) and any(
                        COLUMN_FIELDS.get(c) == field for c in KB.roots[rule_column(opt.id, r.id)]):
                    by_field.setdefault(field, []).append(r)
        for field, rules in by_field.items():
            for first, later in zip(rules, rules[1:]):
                assert _trips(opt.id, first.id, field) >= _trips(opt.id, later.id, field), (opt.id, field, first.id, later.id)
