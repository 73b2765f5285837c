"""The published cohorts beside a group are the ones each patient's own assessment shows
under the patient's treatment (the same outcomes.yaml matching, column-wise), and the
figures label them as reconstructed."""
from __future__ import annotations

import polars as pl

from nelm.assessment import assess
from nelm.cohort.literature import cohorts_shown, match_exprs
from nelm.cohort.registry import read_registry
from nelm.knowledge import load
from nelm.patient import validate_patient
from nelm.screen.layout import SCHEMA, row_document


def test_column_wise_matching_equals_the_per_patient_assessment(small_csv):
    kb = load()
    reg = read_registry(small_csv, kb, extra=match_exprs(kb))
    shown = cohorts_shown(reg.frame, kb)
    layout_cols = [c for c in SCHEMA if c in reg.frame.columns]
    checked = 0
    for i, row in enumerate(reg.frame.select(layout_cols + ["treatment"]).iter_rows(named=True)):
        treatment = row.pop("treatment")
        doc = row_document(row)
        assessment = assess(validate_patient(doc), outcomes="summary")
        option = next(o for o in assessment["options"] if o["id"] == treatment)
        expected = {x["cohort"] for x in option["outcomes"]}
        got = {cohort for cohort, rows in shown.items() if rows[i]}
        assert got == expected, (i + 1, treatment, got, expected)
        checked += 1
    assert checked == reg.frame.height == 120


def test_matched_figure_draws_the_published_arms_as_reconstructed(small_csv):
    from nelm.cohort.analysis import analyse

    result = analyse(small_csv, design="mayo2011")
    svg = result.figures["matched"]
    assert "published, reconstructed" in svg and "Mayo et al. 2011" in svg
    assert "At risk" in svg
    # every published arm drawn in its own line style (dashes), not only its own colour
    assert svg.count("stroke-dasharray") >= 3
    assert pl.Series(result.report["literature"]["Surgery"]).len() > 0
