"""Plans resting on assumed facts, settled column-wise (nelm.screen.settle), equal the
per-case planner's (nelm.assessment.plan_status_of) on every row, not a sample.

The rows are those one evaluation leaves open (certain_plans: status NULL): plans resting
on assumptions, plans blocked by a fact no record lets a plan assume, and rows with no
pathway. Sparse tables reach every branch of the settling: several rounds, the facts that
follow from an assumed one, the other values of an assumed fact, a therapy's unrecorded
outcome, and filled-in facts that together contradict the record (filled one at a time).
"""
from __future__ import annotations

import polars as pl
import pytest

from nelm.assessment import plan_status_of
from nelm.engine import evaluate_both_passes
from nelm.knowledge import load
from nelm.patient import validate_patient
from nelm.screen import settle
from nelm.screen.columns import certain_plans
from nelm.screen.flat import engine_frame
from nelm.screen.layout import row_document
from nelm.screen.synth import synthesize


def _open_rows(n: int, seed: int, unknown: float, guideline: str | None = None) -> pl.DataFrame:
    kb = load(guideline)
    lay = synthesize(n, seed=seed, unknown_fraction=unknown).with_row_index("__row", offset=1)
    eng = engine_frame(lay)
    _, _, rows = certain_plans(lay, eng, evaluate_both_passes(eng, kb)[1], kb)
    return lay[rows]


OTHER = next(g for g in load().manifest.guidelines if g != load().manifest.default_guideline)


@pytest.mark.parametrize("seed,unknown,guideline", [(21, 0.15, None), (22, 0.35, None), (25, 0.25, OTHER)])
def test_settled_column_wise_equals_per_case_on_every_row(seed, unknown, guideline, monkeypatch):
    kb = load(guideline)
    rows = _open_rows(700, seed, unknown, guideline)
    one_at_a_time = []
    real = settle._one_at_a_time
    monkeypatch.setattr(settle, "_one_at_a_time", lambda w, *rest: one_at_a_time.append(w.height) or real(w, *rest))
    got = settle.settle_plans(rows, kb)
    assert got.height == rows.height > 150
    statuses = set(got["plan.status"].to_list())
    assert {"conditional", "determined"} <= statuses, statuses
    if unknown > 0.3:
        assert "undetermined" in statuses and sum(one_at_a_time) > 0   # every way of settling is reached
    docs = rows.drop("__row").iter_rows(named=True)
    for i, doc in enumerate(docs):
        expected = plan_status_of(validate_patient(row_document(doc)), kb)
        assert (got["plan.status"][i], got["plan.leading"][i]) == expected, (i, doc)


def test_an_assumed_fact_whose_other_value_leads_elsewhere_makes_the_plan_conditional():
    """The settling's last step on its own: a row whose plan assumes a fact is conditional when
    that fact's other value leads elsewhere; the seed worlds are the record with that value."""
    kb = load()
    rows = _open_rows(400, 23, 0.25)
    base = settle._base(rows, kb)
    history = engine_frame(rows).select(settle.HISTORY_COLUMNS)
    work = settle._run(base.with_columns(pl.int_range(0, rows.height, dtype=pl.Int64).alias(settle._W)), kb, history).sort(settle._W)
    assumed = work.filter(pl.col("settled") & (pl.col("assumed") != 0))
    assert assumed.height > 20
    seeds = settle._alternatives(base, assumed, kb, history)
    # each seed is its row's record with one assumed fact set to another value, nothing else filled in
    assert seeds.height >= assumed.height
    assert (seeds[settle._ASSUMED] == 0).all() and (seeds[settle._FIXED] != 0).all()


def test_screen_settles_column_wise_from_settle_from_rows_and_per_case_below(monkeypatch):
    """assess_batch hands the open rows to the column-wise settling from columns.SETTLE_FROM rows
    on and to the per-case planner below: the same columns either way."""
    import nelm.screen.columns as columns

    lay = synthesize(300, seed=24, unknown_fraction=0.25).with_row_index("__row", offset=1)
    monkeypatch.setattr(columns, "SETTLE_FROM", 10**9)
    per_case, n1 = columns.assess_batch(lay, load())
    monkeypatch.setattr(columns, "SETTLE_FROM", 1)
    settled, n2 = columns.assess_batch(lay, load())
    assert n1 == n2 > 50
    assert per_case.equals(settled)


def test_rows_with_nothing_to_assume_end_in_the_first_round_as_the_planner_ends_them():
    """fills_nothing marks the open rows whose blocking facts no record lets a plan assume;
    nelm screen settles them column-wise however few they are (one reading of the first
    evaluation): their status and lead are the per-case planner's, and the rows it leaves
    unmarked are exactly those the settling fills something in for."""
    kb = load()
    rows = _open_rows(3000, 26, 0.0)
    eng = engine_frame(rows)
    first = settle._evaluate(eng, kb)
    quick = settle.fills_nothing(rows, kb, first)
    assert 20 < int(quick.sum()) <= rows.height
    got = settle.settle_plans(rows.filter(quick), kb)
    assert set(got["plan.status"].to_list()) == {"undetermined"}
    docs = rows.filter(quick).drop("__row").iter_rows(named=True)
    for i, doc in enumerate(docs):
        expected = plan_status_of(validate_patient(row_document(doc)), kb)
        assert (got["plan.status"][i], got["plan.leading"][i]) == expected, (i, doc)
    if (~quick).any():
        # an unmarked row is one the settling goes on with: the first round picks a record for it
        rest = settle._base(rows.filter(~quick), kb)
        st, picks = settle._round(rest.with_columns(pl.col(settle._BASE).alias(settle._W)), first.filter(~quick),
                                  settle.records_by_field(kb))
        assert not settle._finished_now(st, picks, last=False).any()
