"""The plan's shortcuts give what the long way gives (issue 18 item 8: a plan with branches
within the one-assessment budget). No timings here: benchmarks/bench_plan.py measures."""
from __future__ import annotations

import json
import random

from nelm import plan as plan_module
from nelm.assessment import assess
from nelm.consistency import contradicts, refusals
from nelm.engine import row_program
from nelm.knowledge import load
from nelm.patient import flatten_document, patched_row
from nelm.testing import FIELD_VALUES, sparse_patients

KB = load()
PROGRAM = row_program(KB)


def _patients(seed: int, n: int) -> list:
    return [p for _, p in sparse_patients(seed, n)]


def _candidate_values(rng: random.Random) -> dict:
    """Values as the planner fills them in: assumptions, their alternatives and what follows,
    and any field of the handled kinds with a random value (None among them)."""
    a = rng.choice(KB.assumptions)
    values = {a.field: rng.choice([a.assumed, a.alternative, *a.also_alternatives])} | dict(a.also)
    for _ in range(rng.randrange(4)):
        field = rng.choice(sorted(FIELD_VALUES))
        if "." in field or isinstance(FIELD_VALUES[field], (list, tuple)):
            pool = FIELD_VALUES[field]
            values[field] = rng.choice([None, *pool]) if isinstance(pool, (list, tuple)) else pool
    for field, pool in (("liver.resectable", [True, False, None]), ("liver.resectable_fraction_percent", [None, 40, 100]),
                        ("extrahepatic.peritoneal_carcinomatosis", [None, "none", "limited_resectable"]),
                        ("extrahepatic.symptomatic", [None, True, False]), ("functional_syndrome", [None, "none", "carcinoid"]),
                        ("carcinoid_heart_disease", [None, "none"]), ("course.status", [None, "stable", "progressive"])):
        if rng.random() < 0.2:
            values[field] = rng.choice(pool)
    if rng.random() < 0.3:
        values["extrahepatic.present"] = rng.choice([None, True, False])
    if rng.random() < 0.3:
        values["extrahepatic.sites"] = rng.choice([None, [], ["bone"], ["lung", "peritoneum"]])
    if rng.random() < 0.3:
        values["prior_therapies"] = rng.choice(["progression", "response", "stable", "intolerance", None, [
            {"therapy": "ssa", "outcome": "progression", "months_to_progression": None, "ongoing": False},
            {"therapy": "everolimus", "outcome": None, "months_to_progression": None, "ongoing": True}]])
    return {k: v for k, v in values.items() if not isinstance(v, dict)}


def test_patched_rows_are_the_flattened_documents():
    """A what-if patient's row patched from the patient's own row is the row of the document
    with those values set, and the consistency checks that read the patched columns refuse
    it exactly when all the checks refuse the document."""
    rng = random.Random(81)
    patched = refused = 0
    for patient in _patients(80, 150):
        base = patient.model_dump()
        base_row = flatten_document(base)
        assert not contradicts(base_row)
        for _ in range(12):
            values = _candidate_values(rng)
            as_set = plan_module._as_set(base, values)
            data = plan_module._document(base, values)
            assert (as_set is None) == (data is None)
            if data is None:
                continue
            got = patched_row(base, base_row, as_set)
            if got is None:
                continue
            row, changed = got
            want = flatten_document(data)
            assert list(row) == list(want) and row == want, values
            assert all(type(row[c]) is type(want[c]) for c in row)
            assert {c for c in row if row[c] != base_row[c]} <= changed
            assert contradicts(row, changed) == bool(refusals(want)), values
            got_inputs, want_inputs = PROGRAM.patched_inputs(PROGRAM.inputs(base_row), row, changed), PROGRAM.inputs(want)
            assert list(got_inputs) == list(want_inputs) and got_inputs == want_inputs
            assert all(type(got_inputs[c]) is type(want_inputs[c]) for c in want_inputs)
            patched += 1
            refused += contradicts(row, changed)
    assert patched > 1000 and refused > 20


def test_plans_are_the_same_without_the_patched_rows(monkeypatch):
    """The whole assessment is the same when every what-if patient is built as a document."""
    patients = _patients(82, 40)
    fast = [json.dumps(assess(p, outcomes="summary"), sort_keys=True) for p in patients]
    monkeypatch.setattr(plan_module, "patched_row", lambda doc, row, values: None)
    slow = [json.dumps(assess(p, outcomes="summary"), sort_keys=True) for p in patients]
    assert fast == slow


def test_the_lean_view_is_the_plan_view():
    """A what-if's lean view (no missing data listed, the facts affecting an option worked out
    when asked) has plan_view's options, and for every option the fields of its missing-data
    entries."""
    from nelm.engine import evaluate, plan_view
    from nelm.patient import flatten

    from nelm.engine import LeanOptions
    from nelm.engine.document import _own

    rng = random.Random(83)
    for patient in _patients(83, 120):
        ev = evaluate(flatten(patient), KB, verdicts_only=True)
        full = plan_view(ev, KB, conditions=False)
        lean = plan_view(evaluate(flatten(patient), KB, verdicts_only=True), KB, conditions=False, missing=False)
        assert lean["options"] == full["options"]
        # the planner's what-ifs: each option built when first read, in any order, what is
        # asked about first or not at all
        by_id = LeanOptions(evaluate(flatten(patient), KB, verdicts_only=True), KB)
        order = [o["id"] for o in full["options"]]
        rng.shuffle(order)
        for oid in order[: rng.randrange(len(order))]:
            want = {m["field"] for m in full["missing_data"] if oid in m["affects"]}
            if rng.random() < 0.5:
                assert by_id.affected(oid) == want
            # (the planner's options are shared and read only: no reasons, the verdicts a tuple)
            assert _own(by_id[oid]) == next(o for o in full["options"] if o["id"] == oid)
        for o in full["options"]:
            want = {m["field"] for m in full["missing_data"] if o["id"] in m["affects"]}
            assert lean["affected"](o["id"]) == want == by_id.affected(o["id"])
            assert _own(by_id[o["id"]]) == o
            assert by_id[o["id"]]["reasons"] == () and isinstance(by_id[o["id"]].get("possible_verdicts", ()), tuple)


def test_brief_options_are_the_brief_assessment_s():
    """The options the working plan words its steps from, each worked out when first read,
    are those of the brief assessment; a verdict is there without working the option out."""
    from nelm.engine import assessment_from, brief_options, evaluate

    for patient in _patients(84, 60):
        ev = evaluate(patient, KB)
        want = {o["id"]: o for o in assessment_from(ev, patient, KB, brief=True)["options"]}
        got = brief_options(ev, patient, KB)
        assert list(got) == list(want)
        for oid, o in got.items():
            assert o["verdict"] == want[oid]["verdict"] and o._work is not None
            assert o.get("conditions", []) == want[oid].get("conditions", [])
            assert dict(o) == want[oid]
        # from the patient's document (the plan's what-ifs), and with the facts pass added to
        # a verdicts-only evaluation: the same options
        from nelm.engine import with_facts
        from nelm.patient import flatten

        lean = evaluate(flatten(patient), KB, verdicts_only=True)
        again = brief_options(with_facts(lean, flatten(patient), KB), patient.model_dump(), KB)
        for v in again.values():
            v.get("reasons")    # worked out in full
        assert {k: dict(v) for k, v in again.items()} == want


def test_later_steps_read_the_same_verdicts_evaluated_when_read(monkeypatch):
    """The verdicts expected at a later kind of step are evaluated when a step first reads
    them: the plans are those of evaluating every kind up front, and some kinds are never read."""
    patients = _patients(85, 60)
    built: list = []
    lazy_future = plan_module._Planner.future

    def spied(self, *args):
        out = lazy_future(self, *args)
        built.extend(out.values())
        return out

    monkeypatch.setattr(plan_module._Planner, "future", spied)
    lazy = [json.dumps(assess(p, outcomes="summary"), sort_keys=True) for p in patients]
    assert any(e._got is None for e in built) and any(e._got is not None for e in built)
    # the long way: each kind's what-if evaluated up front (the working plan's verdicts where
    # the event contradicts the record)
    def eager_future(self, *args):
        out = {}
        for k, e in lazy_future(self, *args).items():
            got = self.verdicts(e._then)
            out[k] = self.state(e._values)[2] if got is None else {o.id: got[o.id] for o in KB.options}
        return out

    monkeypatch.setattr(plan_module._Planner, "future", eager_future)
    eager = [json.dumps(assess(p, outcomes="summary"), sort_keys=True) for p in patients]
    assert lazy == eager


def test_an_unknown_pathway_could_offer_what_its_candidates_could():
    """The plan passes over an unknown pathway unless one of its ``now`` candidates could still
    lead today (plan_program.could_offer, run here on one patient's row as the planner runs it);
    the answer is the long way's: any candidate whose step and own condition are not certainly
    false with a verdict that may be preferred or reasonable."""
    from nelm.engine import LeanOptions, evaluate
    from nelm.engine import plan_program
    from nelm.knowledge import pathway_column
    from nelm.patient import flatten

    def long_way(pw, row, options):
        out = set()
        for i, step in enumerate(pw.steps):
            if step.when != "now" or step.joins or (step.if_ and row[pathway_column(pw.id, i)] is False):
                continue
            for o in step.options:
                oid, cond = (o, None) if isinstance(o, str) else (o.id, o.if_)
                if cond and row[pathway_column(pw.id, i, oid)] is False:
                    continue
                verdicts = options[oid].get("possible_verdicts") or (options[oid]["verdict"],)
                if {"preferred", "reasonable"} & set(verdicts):
                    out.add(oid)
        return out

    w = plan_program.row_world()
    names = [f"could{j}" for j in range(len(KB.pathways))]
    could = plan_program.compile_row(KB, {n: plan_program.could_offer(w, pw) for n, pw in zip(names, KB.pathways)}, names)
    asked = unknown = offered = 0
    for patient in _patients(86, 200):
        ev = evaluate(flatten(patient), KB, verdicts_only=True)
        options = LeanOptions(ev, KB)
        for pw, got in zip(KB.pathways, could(ev.verdicts, None)):
            if ev.verdicts[pathway_column(pw.id)] is None:
                unknown += 1
            assert got == bool(long_way(pw, ev.verdicts, options))
            asked += 1
            offered += got
    assert unknown > 50 and 0 < offered < asked


def test_a_pathways_now_steps_are_its_own():
    """A pathway's ``now`` steps, worked out once per pathway object (plan_program.today_steps,
    and now_steps: those that can open the plan); a changed pathway (another object) is worked
    out afresh, not answered from the table of the one it was copied from."""
    from nelm.engine.plan_program import now_steps, today_steps

    def long_way(pw):
        return tuple((i, s) for i, s in enumerate(pw.steps) if s.when == "now")

    joining = 0
    for pw in KB.pathways:
        assert today_steps(pw) == long_way(pw)
        assert now_steps(pw) == tuple((i, s) for i, s in long_way(pw) if not s.joins)
        joining += len(today_steps(pw)) - len(now_steps(pw))
    assert joining > 0
    pw = next(p for p in KB.pathways if len(today_steps(p)) > 1)
    before = today_steps(pw)
    shorter = pw.model_copy(update={"steps": [s for i, s in enumerate(pw.steps) if i != before[0][0]]})
    assert today_steps(shorter) == long_way(shorter) != before


def test_a_branch_is_settled_again_from_the_record_not_from_the_working_plan():
    """A shortcut not taken (BENCHMARKS.md, session 14): each branch is settled again from the
    patient's record with its one fact changed, not from the working plan's settled values with
    that fact flipped. Which assumption a fact takes can hang on the changed fact: here, once
    disease outside the liver is found, its sites unknown, the deposits are assumed not
    removable (pathways.yaml), where the working plan, with no such disease, assumed them
    removable. Settled from the working plan's values, the branch would lead with resection
    like the working plan, and the assumption 'no disease outside the liver' would be dropped
    as one that cannot change the lead."""
    from nelm.engine import assessment_from, evaluate
    from nelm.patient import validate_patient

    # a resected appendiceal NET, one liver lobe, judged resectable; no staging outside the liver
    patient = validate_patient({
        "ecog": 1, "primary": {"site": "appendix", "resected": True}, "pathology": {"mitoses_per_10hpf": 40},
        "symptomatic": False, "functional_control": "refractory", "labs": {"neutrophils_10e9_per_l": 0.8},
        "liver": {"lobes": "unilobar", "portal_vein_thrombosis": False, "resectable": True, "bilirubin_mg_dl": 1.5,
                  "biliary_enteric_bypass": False},
        "course": {"progression_within_12_months": True}, "extrahepatic": {"symptomatic": False}})
    plan = assess(patient, outcomes="summary")["plan"]
    assert plan["steps"][0]["options"][0] == "liver_resection"
    present = next(a for a in plan["assumptions"] if a["field"] == "extrahepatic.present")
    assert present["assumed"] is False
    branch = plan["branches"][present["branch"]]
    assert branch["steps"][0]["options"][0] == "ssa"
    # (the working plan assumes the deposits removable, had there been any)
    assert next(a for a in plan["assumptions"] if a["field"] == "extrahepatic.resectable")["assumed"] is True

    # the working plan's values with the one fact flipped: the deposits stay removable, and
    # the patient with those facts filled in leads with resection
    ev = evaluate(patient, KB)
    planner = plan_module._Planner(patient, ev, assessment_from(ev, patient, KB), KB)
    work = planner.settle({})
    assert work["values"]["extrahepatic.resectable"] is True
    flipped = {f: v for f, v in work["values"].items() if f not in ("extrahepatic.present", "extrahepatic.sites")}
    flipped["extrahepatic.present"] = True
    filled = validate_patient(plan_module._document(patient.model_dump(), flipped))
    assert assess(filled, outcomes="summary")["plan"]["steps"][0]["options"][0] == "liver_resection"
    # settled again from the record, the same fact gives the branch's lead
    again = planner.settle({"extrahepatic.present": True})
    assert again["values"]["extrahepatic.resectable"] is False
    assert again["steps"][0]["options"][0] == "ssa"
