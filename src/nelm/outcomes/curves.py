"""Survival curves reconstructed from what a source reports (medians and landmark rates).

No patient-level data exist for any of the cohorts: a source gives a median and a few
rates at fixed times. We draw the simplest parametric curve through them and say
which one:

* one reported point (a median, or a single rate): an exponential, S(t) = exp(-h t),
  i.e. a constant hazard, exact through that point;
* two points: a Weibull S(t) = exp(-(t/λ)^k), exact through both;
* three or more: a Weibull fitted by least squares on log(-log S) against log t; if
  that misses a point by more than :data:`TOLERANCE`, a Weibull fitted by least
  squares on the survival scale; if that still misses, a monotone piecewise
  exponential through every point (log S linear in t between reported points, i.e.
  a constant hazard per interval).

A reported survival of 0 (everyone had died or progressed by a time) admits no
parametric shape: the curve falls linearly from the previous point to 0, and the
method says so. A median "not reached" gives no point. Curves start at (0, 1), are
sampled at most :data:`MAX_STEP` months apart and stop at the last reported time, or
at 1.5 × the median when medians are all the source gives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import numpy as np

TOLERANCE = 0.02        # a curve passes through every reported point within this
# the sampled curve's values are rounded to 4 decimals: a model is accepted only with this
# much room left, so that the curve as drawn and stored still passes within TOLERANCE
_MODEL_TOLERANCE = TOLERANCE - 1e-4
MAX_STEP = 3.0          # months between samples, at most
MEDIAN_ONLY_SPAN = 1.5  # draw medians-only curves to this multiple of the median

ENDPOINTS: dict[str, dict[str, Any]] = {
    "os": {"label": "overall survival", "median": "os_median", "rate": "os_rate"},
    "pfs": {"label": "progression-free survival", "median": "pfs_median", "rate": "pfs_rate"},
    "ttp": {"label": "time to progression", "median": "ttp_median", "rate": None},
}

_MONTHS = {"months": 1.0, "years": 12.0}


class CurveError(ValueError):
    """What a source reports cannot make a survival curve (a data problem, said plainly)."""


@dataclass(frozen=True)
class Point:
    months: float
    value: float          # survival proportion, 0-1
    kind: str             # "median" or "rate"
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"months": _r(self.months, 3), "value": _r(self.value, 4), "kind": self.kind}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Reported:
    points: list[Point]
    median_months: float | None = None
    median_not_reached: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Fit:
    method: str
    curve: list[list[float]]
    model: str                       # "exponential", "weibull", "piecewise"
    params: dict[str, float] = field(default_factory=dict)
    max_error: float = 0.0


def _r(x: float, nd: int) -> float:
    return float(round(float(x), nd))


# --------------------------------------------------------------------------- reading a record

def reported_points(outcomes: Iterable[Any], endpoint: str, arm: str) -> Reported:
    """The medians and rates of one arm for one endpoint, as survival points.

    ``outcomes`` are a record's outcomes (objects with endpoint, arm, value, unit,
    time_point_months, not_reached, note). Raises :class:`CurveError` when the arm
    reports nothing usable or reports contradictory points (e.g. the two bounds of a
    range at the same time).
    """
    spec = ENDPOINTS[endpoint]
    points: list[Point] = []
    rep = Reported(points=points)
    for o in outcomes:
        if o.arm != arm or o.endpoint not in (spec["median"], spec["rate"]):
            continue
        if getattr(o, "bound", None) or getattr(o, "value_high", None) is not None:
            continue  # '>60 %' or '60-80 %' is not a point a curve may pass through
        if o.endpoint == spec["median"]:
            if o.not_reached or o.value is None:
                rep.median_not_reached = True
                continue
            if o.unit not in _MONTHS:
                raise CurveError(f"{endpoint} median of arm {arm!r} is in {o.unit}, not months or years")
            months = float(o.value) * _MONTHS[o.unit]
            rep.median_months = months
            points.append(Point(months, 0.5, "median", o.note))
        else:
            if o.unit != "percent" or o.value is None or o.time_point_months is None:
                raise CurveError(f"{endpoint} rate of arm {arm!r} must be a percentage at a time point")
            points.append(Point(float(o.time_point_months), float(o.value) / 100.0, "rate", o.note))
        if o.note:
            rep.notes.append(o.note)
    if not points:
        raise CurveError(f"arm {arm!r} reports no {spec['label']} median or rate that can be drawn")
    points.sort(key=lambda p: (p.months, -p.value))
    for a, b in zip(points, points[1:]):
        if math.isclose(a.months, b.months):
            if not math.isclose(a.value, b.value, abs_tol=1e-9):
                raise CurveError(f"arm {arm!r}: two different values at {a.months:g} months "
                                 f"({a.value:g} and {b.value:g}); a range is not a curve")
        elif b.value > a.value + 1e-12:
            raise CurveError(f"arm {arm!r}: survival rises from {a.value:g} at {a.months:g} months "
                             f"to {b.value:g} at {b.months:g} months")
    if any(p.months <= 0 for p in points):
        raise CurveError(f"arm {arm!r}: a reported point at time 0 or before")
    # the same point reported twice (e.g. a median and a 50 % rate) is kept once
    dedup: list[Point] = []
    for p in points:
        if dedup and math.isclose(dedup[-1].months, p.months):
            continue
        dedup.append(p)
    rep.points = dedup
    return rep


# --------------------------------------------------------------------------- models

def _weibull(t: np.ndarray, lam: float, k: float) -> np.ndarray:
    import numpy as np

    return np.exp(-np.power(np.maximum(t, 0.0) / lam, k))


def _max_error(fn, pts: list[Point]) -> float:
    import numpy as np

    t = np.array([p.months for p in pts])
    s = np.array([p.value for p in pts])
    return float(np.max(np.abs(fn(t) - s)))


def _fmt_pts(pts: list[Point]) -> str:
    def one(p: Point) -> str:
        what = "median" if p.kind == "median" else f"{p.value * 100:g} %"
        return f"{what} at {p.months:g} months"
    return ", ".join(one(p) for p in pts)


def _piecewise(pts: list[Point]):
    """Monotone interpolation: log S linear between knots; linear S into a zero."""
    import numpy as np

    knots_t = [0.0] + [p.months for p in pts]
    knots_s = [1.0] + [p.value for p in pts]

    def fn(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        out = np.empty_like(t)
        for i, ti in enumerate(t):
            j = int(np.searchsorted(knots_t, ti, side="right")) - 1
            j = min(max(j, 0), len(knots_t) - 2)
            t0, t1, s0, s1 = knots_t[j], knots_t[j + 1], knots_s[j], knots_s[j + 1]
            f = 0.0 if t1 == t0 else min(max((ti - t0) / (t1 - t0), 0.0), 1.0)
            if s1 <= 0.0 or s0 <= 0.0:
                out[i] = s0 + (s1 - s0) * f
            else:
                out[i] = s0 * (s1 / s0) ** f
        return out
    return fn


def fit(reported: Reported) -> Fit:
    """Choose and fit the curve for one arm (see the module docstring for the rules).

    Fitting needs numpy (and sometimes scipy); assessments read the stored result
    instead (:mod:`.fitted`), so only a changed knowledge base fits again."""
    import numpy as np

    pts = reported.points
    only_medians = all(p.kind == "median" for p in pts)
    t_end = max(p.months for p in pts)
    if only_medians:
        t_end *= MEDIAN_ONLY_SPAN
    interior = all(0.0 < p.value < 1.0 for p in pts)
    desc = _fmt_pts(pts)
    fn = None
    params: dict[str, float] = {}

    if interior and len(pts) == 1:
        p = pts[0]
        h = -math.log(p.value) / p.months
        fn = lambda t, h=h: np.exp(-h * np.asarray(t, dtype=float))  # noqa: E731
        params = {"hazard_per_month": h}
        model = "exponential"
        if p.kind == "median":
            method = (f"exponential (constant hazard) from the reported median of {p.months:g} months only; "
                      f"the shape is assumed, drawn to {MEDIAN_ONLY_SPAN:g}× the median")
        else:
            method = (f"exponential (constant hazard) through the single reported rate ({desc}); "
                      "the shape is assumed, nothing drawn beyond the reported time")
    elif interior and len(pts) == 2 and pts[1].value < pts[0].value:
        (t1, s1), (t2, s2) = ((p.months, p.value) for p in pts)
        k = (math.log(-math.log(s2)) - math.log(-math.log(s1))) / (math.log(t2) - math.log(t1))
        lam = t1 / (-math.log(s1)) ** (1.0 / k)
        fn = lambda t, lam=lam, k=k: _weibull(np.asarray(t, dtype=float), lam, k)  # noqa: E731
        params = {"lambda_months": lam, "k": k}
        model = "weibull"
        method = f"Weibull S(t)=exp(-(t/λ)^k) exact through the two reported points ({desc}); λ={lam:.1f} months, k={k:.2f}"
    elif interior and len(pts) >= 3 and all(b.value < a.value for a, b in zip(pts, pts[1:])):
        t = np.array([p.months for p in pts])
        s = np.array([p.value for p in pts])
        k, b = np.polyfit(np.log(t), np.log(-np.log(s)), 1)
        if k > 0:
            lam = float(np.exp(-b / k))
            cand = lambda x, lam=lam, k=k: _weibull(np.asarray(x, dtype=float), lam, float(k))  # noqa: E731
            if _max_error(cand, pts) <= _MODEL_TOLERANCE:
                fn, params, model = cand, {"lambda_months": lam, "k": float(k)}, "weibull"
                method = (f"Weibull S(t)=exp(-(t/λ)^k) fitted by least squares on log(-log S) against log t "
                          f"through {desc}; λ={lam:.1f} months, k={float(k):.2f}")
            else:
                from scipy.optimize import least_squares

                res = least_squares(lambda q: _weibull(t, math.exp(q[0]), math.exp(q[1])) - s,
                                    x0=[math.log(lam), math.log(float(k))])
                lam2, k2 = math.exp(res.x[0]), math.exp(res.x[1])
                cand2 = lambda x, lam=lam2, k=k2: _weibull(np.asarray(x, dtype=float), lam, k)  # noqa: E731
                if _max_error(cand2, pts) <= _MODEL_TOLERANCE:
                    fn, params, model = cand2, {"lambda_months": lam2, "k": k2}, "weibull"
                    method = (f"Weibull S(t)=exp(-(t/λ)^k) fitted by least squares on the survival scale through "
                              f"{desc} (the log(-log S) regression missed a point by more than {TOLERANCE:g}); "
                              f"λ={lam2:.1f} months, k={k2:.2f}")
    if fn is None:
        fn = _piecewise(pts)
        model = "piecewise"
        zero = any(p.value <= 0.0 for p in pts)
        positive = [p for p in pts if p.value > 0.0]
        why = ("a reported survival of 0 admits no parametric curve" if zero
               else f"no Weibull passes within {TOLERANCE:g} of every point" if len(pts) >= 3
               else "the reported points admit no Weibull")
        parts = []
        if positive:
            parts.append("constant hazard (log-linear survival) between reported points")
        if zero:
            parts.append("a straight fall to 0 at the time by which every patient had had the event; "
                         "the true shape before that time is unknown")
        method = f"monotone piecewise interpolation through {desc} ({why}): " + "; ".join(parts)
    grid = np.arange(0.0, t_end, min(MAX_STEP, t_end / 40.0))
    grid = np.unique(np.concatenate([grid, [p.months for p in pts], [t_end]]))
    grid = grid[grid <= t_end + 1e-9]
    values = np.clip(fn(grid), 0.0, 1.0)
    values[0] = 1.0
    values = np.minimum.accumulate(values)          # guard rounding: non-increasing
    curve: list[list[float]] = []
    for t, v in zip(grid, values):
        tt, vv = _r(t, 3), _r(v, 4)
        if curve and curve[-1][0] == tt:
            continue
        curve.append([tt, vv])
    err = _max_error(lambda x: np.interp(x, [c[0] for c in curve], [c[1] for c in curve]), pts)
    return Fit(method=method, curve=curve, model=model, params=params, max_error=err)


def evaluate(curve: list[list[float]], months: float) -> float:
    """Survival read off a sampled curve (linear between samples)."""
    import numpy as np

    return float(np.interp(months, [c[0] for c in curve], [c[1] for c in curve]))
