"""Reconstructed curves: through every reported point, and survival functions."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nelm.evidence import Outcome
from nelm.outcomes import cohort_arms
from nelm.outcomes.curves import (MAX_STEP, MEDIAN_ONLY_SPAN, TOLERANCE, CurveError, Point, Reported,
                                  evaluate, fit, reported_points)
from nelm.outcomes.matching import load_spec


def all_arms(kb):
    return [(cid, arm) for cid, arms in cohort_arms(kb).items() for arm in arms]


def assert_survival_function(curve):
    assert curve[0] == [0.0, 1.0], "a curve starts at (0, 1)"
    for (t0, s0), (t1, s1) in zip(curve, curve[1:]):
        assert t1 > t0
        assert t1 - t0 <= MAX_STEP + 1e-9, f"gap {t0}->{t1} exceeds {MAX_STEP} months"
        assert s1 <= s0, f"survival rises at {t1} months"
    assert all(0.0 <= s <= 1.0 for _, s in curve)


def test_every_cohort_arm_is_drawn(kb):
    spec = load_spec()
    built = cohort_arms(kb)
    for c in spec.cohorts:
        assert [a["arm"] for a in built[c.id]] == [a.arm for a in c.arms], c.id


def test_curves_pass_through_their_reported_points(kb):
    for cid, arm in all_arms(kb):
        assert arm["reported"], cid
        for p in arm["reported"]:
            got = evaluate(arm["curve"], p["months"])
            assert abs(got - p["value"]) <= TOLERANCE, (cid, arm["arm"], p, got)


def test_curves_are_survival_functions(kb):
    for cid, arm in all_arms(kb):
        assert_survival_function(arm["curve"])
        assert arm["reconstructed"] is True
        assert arm["method"], cid


def test_curves_stop_where_the_data_stop(kb):
    for cid, arm in all_arms(kb):
        last = max(p["months"] for p in arm["reported"])
        end = arm["curve"][-1][0]
        if all(p["kind"] == "median" for p in arm["reported"]):
            assert end == pytest.approx(last * MEDIAN_ONLY_SPAN, abs=1e-3), cid
        else:
            assert end == pytest.approx(last, abs=1e-3), (cid, arm["arm"])


def test_reported_points_are_read_from_the_record(kb):
    for cid, arm in all_arms(kb):
        rec = kb.evidence[arm["source"]]
        outs = [o for o in rec.outcomes if o.arm == arm["arm"]]
        for p in arm["reported"]:
            if p["kind"] == "median":
                assert any(o.endpoint.endswith("_median") and o.value is not None
                           and math.isclose(o.value * (12 if o.unit == "years" else 1), p["months"]) for o in outs)
            else:
                assert any(o.endpoint.endswith("_rate") and math.isclose(o.value / 100, p["value"])
                           and math.isclose(o.time_point_months, p["months"]) for o in outs), (cid, p)


def test_endpoints_are_named_and_not_mixed(kb):
    labels = {"os": "overall survival", "pfs": "progression-free survival", "ttp": "time to progression"}
    for cid, arms in cohort_arms(kb).items():
        assert len({a["endpoint"] for a in arms}) == 1, cid
        for a in arms:
            assert a["endpoint"] == labels[a["endpoint_code"]]
            rec = kb.evidence[a["source"]]
            used = {o.endpoint for o in rec.outcomes if o.arm == a["arm"]
                    and o.endpoint in (f"{a['endpoint_code']}_median", f"{a['endpoint_code']}_rate")}
            assert used, (cid, a["arm"])


def test_median_only_comparisons_are_exponential_and_say_so(kb):
    # surgery vs IAT (Mayo 2011) reports medians only
    for cid in ("mayo2011_matched", "mayo2011_symptomatic_over25", "mayo2011_asymptomatic_over25"):
        arms = cohort_arms(kb)[cid]
        assert len(arms) == 2
        for a in arms:
            assert a["model"] == "exponential"
            assert "exponential" in a["method"] and "median" in a["method"]
            assert [p["kind"] for p in a["reported"]] == ["median"]


def test_not_reached_median_draws_only_to_the_landmark(kb):
    arms = {a["arm"]: a for a in cohort_arms(kb)["clarinet_pfs"]}
    lan = arms["lanreotide"]
    assert lan["median_not_reached"] and lan["median_months"] is None
    assert all(p["kind"] == "rate" for p in lan["reported"])
    assert lan["curve"][-1][0] == max(p["months"] for p in lan["reported"])


def test_mayo2010_three_points_weibull(kb):
    (arm,) = cohort_arms(kb)["mayo2010_resection"]
    assert arm["model"] == "weibull"
    assert len(arm["reported"]) == 3
    assert "least squares" in arm["method"]


def test_all_dead_by_a_time_is_drawn_without_a_parametric_shape(kb):
    (arm,) = cohort_arms(kb)["kouvaraki_os_above75"]
    assert arm["model"] == "piecewise"
    assert arm["curve"][-1][1] == 0.0
    assert "unknown" in arm["method"]


# --------------------------------------------------------------------------- the fitting itself

def _pts(*pairs):
    return Reported(points=[Point(t, s, "rate") for t, s in pairs])


def test_exponential_from_a_median_only():
    f = fit(Reported(points=[Point(20.0, 0.5, "median")], median_months=20.0))
    assert f.model == "exponential"
    assert f.curve[-1][0] == pytest.approx(30.0)
    assert evaluate(f.curve, 20.0) == pytest.approx(0.5, abs=1e-4)
    assert evaluate(f.curve, 40.0) == pytest.approx(f.curve[-1][1])  # nothing drawn beyond 1.5 × median


def test_weibull_exact_through_two_points():
    lam, k = 50.0, 1.3
    s = [math.exp(-(t / lam) ** k) for t in (20.0, 60.0)]
    f = fit(_pts((20.0, s[0]), (60.0, s[1])))
    assert f.model == "weibull"
    assert f.params["lambda_months"] == pytest.approx(lam, rel=1e-6)
    assert f.params["k"] == pytest.approx(k, rel=1e-6)


def test_weibull_least_squares_recovers_exact_weibull_points():
    lam, k = 80.0, 0.8
    pts = [(t, math.exp(-(t / lam) ** k)) for t in (12.0, 36.0, 60.0, 96.0)]
    f = fit(_pts(*pts))
    assert f.model == "weibull"
    assert f.params["k"] == pytest.approx(k, rel=1e-6)
    assert f.max_error < 1e-3


def test_falls_back_to_piecewise_when_no_weibull_fits():
    # a fall, a plateau, a fall: no single Weibull passes within 0.02
    f = fit(_pts((10.0, 0.95), (20.0, 0.5), (30.0, 0.48), (40.0, 0.05)))
    assert f.model == "piecewise"
    assert "piecewise" in f.method
    assert f.max_error <= 1e-4


def test_contradictory_or_rising_points_are_refused():
    ranges = [Outcome(endpoint="os_rate", arm="a", value=v, unit="percent", time_point_months=60) for v in (40, 60)]
    with pytest.raises(CurveError, match="range"):
        reported_points(ranges, "os", "a")
    rising = [Outcome(endpoint="os_rate", arm="a", value=40, unit="percent", time_point_months=12),
              Outcome(endpoint="os_rate", arm="a", value=60, unit="percent", time_point_months=24)]
    with pytest.raises(CurveError, match="rises"):
        reported_points(rising, "os", "a")
    with pytest.raises(CurveError, match="no overall survival"):
        reported_points([Outcome(endpoint="pfs_median", arm="a", value=9, unit="months")], "os", "a")


def test_years_are_converted_to_months():
    rep = reported_points([Outcome(endpoint="os_median", arm="a", value=3.5, unit="years")], "os", "a")
    assert rep.median_months == pytest.approx(42.0)
    assert rep.points == [Point(42.0, 0.5, "median")]


def test_not_reached_gives_no_point():
    outs = [Outcome(endpoint="pfs_median", arm="a", value=None, not_reached=True, unit="months"),
            Outcome(endpoint="pfs_rate", arm="a", value=70, unit="percent", time_point_months=24)]
    rep = reported_points(outs, "pfs", "a")
    assert rep.median_not_reached and rep.median_months is None
    assert [p.kind for p in rep.points] == ["rate"]


@st.composite
def survival_points(draw):
    n = draw(st.integers(1, 5))
    times = sorted(draw(st.lists(st.floats(0.5, 200.0), min_size=n, max_size=n, unique=True)))
    values = sorted(draw(st.lists(st.floats(0.0, 0.99), min_size=n, max_size=n)), reverse=True)
    times = [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 0.05]
    values = values[:len(times)]
    return [Point(round(t, 2), round(v, 3), "rate") for t, v in zip(times, values)]


@settings(max_examples=150, deadline=None)
@given(survival_points())
def test_any_monotone_set_of_points_gives_a_survival_function_through_them(points):
    f = fit(Reported(points=points))
    assert_survival_function(f.curve)
    for p in points:
        assert abs(evaluate(f.curve, p.months) - p.value) <= TOLERANCE, (f.method, p)
    assert f.curve[-1][0] == pytest.approx(points[-1].months, abs=1e-3)
