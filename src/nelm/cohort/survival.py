"""Kaplan–Meier estimates and the log-rank test (lifelines).

Per group: n, events, the median with its 95 % confidence interval (lifelines'
``median_survival_times`` over the exponential Greenwood bands), and the survival at 1, 3,
5 and 10 years with the band's interval — a rate past the group's last follow-up is not
estimated (``null``), never extrapolated. A group with fewer than :data:`MIN_EVENTS`
events is warned about, and still shown.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

MIN_EVENTS = 10
LANDMARK_YEARS = (1, 3, 5, 10)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def kaplan_meier(durations: np.ndarray, events: np.ndarray, label: str) -> tuple[Any, dict[str, Any]]:
    """The fitted ``KaplanMeierFitter`` and its summary."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    kmf = KaplanMeierFitter(label=label)
    kmf.fit(durations, event_observed=events)
    ci = median_survival_times(kmf.confidence_interval_)
    lo, hi = (_num(v) for v in np.asarray(ci).ravel()[:2])
    median = _num(kmf.median_survival_time_)
    last = float(np.max(durations)) if len(durations) else 0.0
    rates = []
    bands = kmf.confidence_interval_survival_function_
    for years in LANDMARK_YEARS:
        t = 12.0 * years
        if t > last:
            rates.append({"years": years, "months": t, "survival": None, "ci_low": None, "ci_high": None,
                          "note": "beyond the last follow-up"})
            continue
        row = bands.loc[:t].iloc[-1]
        rates.append({"years": years, "months": t, "survival": _num(kmf.survival_function_at_times(t).iloc[0]),
                      "ci_low": _num(row.iloc[0]), "ci_high": _num(row.iloc[1])})
    summary = {"group": label, "n": int(len(durations)), "events": int(np.sum(events)),
               "median_months": median, "median_ci": [lo, hi],
               "median_reached": median is not None, "rates": rates,
               "follow_up_max_months": last}
    return kmf, summary


def logrank(durations: np.ndarray, events: np.ndarray, groups: np.ndarray) -> dict[str, Any] | None:
    """Log-rank test across the groups (two or more); None with fewer than two."""
    from lifelines.statistics import logrank_test, multivariate_logrank_test

    labels = sorted(set(groups.tolist()), key=str)
    if len(labels) < 2:
        return None
    if len(labels) == 2:
        a, b = (groups == labels[0]), (groups == labels[1])
        res = logrank_test(durations[a], durations[b], event_observed_A=events[a], event_observed_B=events[b])
    else:
        res = multivariate_logrank_test(durations, groups, events)
    return {"test": "log-rank", "groups": [str(g) for g in labels], "chi2": _num(res.test_statistic),
            "df": int(getattr(res, "degrees_of_freedom", len(labels) - 1)), "p": _num(res.p_value)}
