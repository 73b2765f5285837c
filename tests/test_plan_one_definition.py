"""The plan's decision has one definition (issue 22 item 1): the one-patient planner (``nelm.plan``)
and the screen's columns (``nelm.screen.columns``, the expressions the SQL view runs too) both read
the plan program of ``nelm.engine.plan_program``. A change to a pathway is therefore followed by both:
here, today's step of the pancreatic pathway with two options swapped changes the lead of the plan
and of the columns alike, while nothing else of the knowledge base changes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from nelm.assessment import plan_of
from nelm.engine import evaluate_both_passes, patients_frame
from nelm.knowledge import load
from nelm.patient import flatten, validate_patient
from nelm.screen.columns import plan_outputs

KB = load()
# a G2 pancreatic NET progressing on the analogue: capecitabine-temozolomide and everolimus are both
# preferred today, and the pathway's order puts chemotherapy first
PATIENT = validate_patient(json.loads(
    (Path(__file__).parent / "vignettes" / "blind8" / "b03_pnet_ki67_20_g2_progressive_on_ssa.json").read_text())["patient"])


def _swapped(kb, pathway: str, first: str, second: str):
    """The knowledge base with two options of a pathway's first ``now`` step in the other order (and
    its own content hash, so that nothing compiled for the real one answers for it)."""
    pws = []
    for pw in kb.pathways:
        if pw.id == pathway:
            i = next(i for i, s in enumerate(pw.steps) if s.when == "now")
            ids = [o if isinstance(o, str) else o.id for o in pw.steps[i].options]
            a, b = ids.index(first), ids.index(second)
            options = list(pw.steps[i].options)
            options[a], options[b] = options[b], options[a]
            steps = list(pw.steps)
            steps[i] = steps[i].model_copy(update={"options": options})
            pw = pw.model_copy(update={"steps": steps})
        pws.append(pw)
    return dataclasses.replace(kb, pathways=pws, sha256=kb.sha256 + "+swapped")


def _leads(kb) -> tuple[str | None, str | None, str | None]:
    """The plan's leading option and status, and the columns' leading option, for the patient."""
    plan = plan_of(PATIENT, kb)
    frame = patients_frame([flatten(PATIENT)])
    _, filled = evaluate_both_passes(frame, kb)
    columns = plan_outputs(frame, filled, kb).row(0, named=True)
    return plan["steps"][0]["options"][0], plan["status"], columns["plan.leading"]


def test_a_changed_step_order_changes_the_plan_and_the_columns_alike(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NELM_CACHE", "0")   # (the swapped knowledge base is compiled, never stored)
    lead, status, column = _leads(KB)
    assert (lead, status, column) == ("capecitabine_temozolomide", "determined", "capecitabine_temozolomide")
    lead, status, column = _leads(_swapped(KB, "pancreatic_g1g2", "capecitabine_temozolomide", "everolimus"))
    assert (lead, status, column) == ("everolimus", "determined", "everolimus")


def test_a_changed_rule_of_the_plan_program_changes_the_plan_and_the_columns_alike(monkeypatch: pytest.MonkeyPatch):
    """The rule that ranks a step's options (established care before a trial, preferred before
    reasonable, then the pathway's order) is written once, in the plan program: with it changed to
    read each step backwards, the plan and the columns lead with the same other option. (Before the
    planner read the program, it ranked with a rule of its own and kept its lead here.)"""
    from nelm.engine import plan_program

    monkeypatch.setenv("NELM_CACHE", "0")
    before, _, _ = _leads(KB)
    forwards = plan_program.trial_last

    def backwards(step):
        ranked = forwards(step)
        return sorted(ranked, key=lambda t: (t[2] == plan_program.TRIAL, t[0], -ranked.index(t)))

    monkeypatch.setattr(plan_program, "trial_last", backwards)
    # (a knowledge base of its own content hash: the programs compiled for the real one do not answer for it)
    lead, _, column = _leads(dataclasses.replace(KB, sha256=KB.sha256 + "+backwards"))
    assert lead == column != before, (before, lead, column)
