"""The stored curve fits (knowledge/fitted_curves.json) are current and reproduce the sources.

If this fails after editing outcomes.yaml, an evidence record or curves.py, regenerate
the file with `make fitted` and commit it.
"""
from __future__ import annotations

import json

import pytest

from nelm.outcomes import cohort_arms, fitted
from nelm.outcomes.curves import TOLERANCE, evaluate
from nelm.outcomes.matching import load_spec

REGENERATE = "knowledge/fitted_curves.json is stale: run `make fitted` and commit the file"


def test_stored_fits_are_current_for_the_knowledge_base():
    data = json.loads(fitted.FITTED_FILE.read_text(encoding="utf-8"))
    assert data["inputs_sha256"] == fitted.inputs_sha256(), REGENERATE
    assert fitted.stored() is not None


def test_stored_fits_equal_a_fresh_fit():
    """Refit everything (numpy/scipy) and compare with the file, field by field."""
    fresh = fitted.fit_all()
    stored = fitted.stored()
    assert stored is not None, REGENERATE
    assert set(stored) == set(fresh), REGENERATE
    for k, f in fresh.items():
        s = stored[k]
        assert (s.model, s.method, s.curve) == (f.model, f.method, f.curve), k
        assert s.params == pytest.approx(f.params, rel=1e-12), k
        assert s.max_error == pytest.approx(f.max_error, abs=1e-12), k


def test_every_cohort_arm_has_a_stored_fit():
    stored = fitted.stored()
    assert stored is not None, REGENERATE
    for c in load_spec().cohorts:
        for a in c.arms:
            assert fitted.key(c.id, a.arm) in stored, (c.id, a.arm)


def test_stored_curves_reproduce_the_reported_points(kb):
    stored = fitted.stored()
    for cohort, arms in cohort_arms(kb).items():
        for arm in arms:
            f = stored[fitted.key(cohort, arm["arm"])]
            assert arm["curve"] == f.curve
            assert f.max_error <= TOLERANCE, (cohort, arm["arm"], f.max_error)
            for p in arm["reported"]:
                assert abs(evaluate(f.curve, p["months"]) - p["value"]) <= TOLERANCE, (cohort, arm["arm"], p)


def test_a_stale_file_is_not_used(tmp_path, monkeypatch):
    stale = json.loads(fitted.FITTED_FILE.read_text(encoding="utf-8")) | {"inputs_sha256": "0" * 64}
    path = tmp_path / "fitted_curves.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    monkeypatch.setattr(fitted, "FITTED_FILE", path)
    fitted.stored.cache_clear()
    try:
        assert fitted.stored() is None
    finally:
        monkeypatch.undo()
        fitted.stored.cache_clear()
