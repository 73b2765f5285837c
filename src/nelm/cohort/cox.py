"""Cox proportional hazards (lifelines ``CoxPHFitter``) with the Schoenfeld check.

Hazard ratios with 95 % confidence intervals and Wald p-values per term; the
proportional-hazards assumption is tested on the scaled Schoenfeld residuals
(``lifelines.statistics.proportional_hazard_test``, rank-transformed time, as
``check_assumptions`` does), and every term with p < 0.05 is warned about. With
``cluster`` (the matched pairs) the variance is the robust sandwich estimator clustered
on it (lifelines ``cluster_col``).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .covariates import Term
from .survival import _num

PH_ALPHA = 0.05


def fit_cox(durations: np.ndarray, events: np.ndarray, matrix: np.ndarray, terms: list[Term], *,
            cluster: np.ndarray | None = None) -> dict[str, Any]:
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    keys = [f"x{i}" for i in range(len(terms))]
    df = pd.DataFrame(matrix, columns=keys)
    df["T"] = durations
    df["E"] = events.astype(int)
    kwargs: dict[str, Any] = {}
    if cluster is not None:
        df["cluster"] = cluster
        kwargs = {"cluster_col": "cluster", "robust": True}
    constant = [k for k in keys if df[k].nunique() < 2]
    warn: list[str] = []
    if constant:
        labels = [t.label for k, t in zip(keys, terms) if k in constant]
        warn.append("left out of the Cox model because it does not vary among the analysed patients: " + "; ".join(labels))
        df = df.drop(columns=constant)
    used = [(k, t) for k, t in zip(keys, terms) if k not in constant]
    if not used:
        return {"n": int(len(df)), "events": int(df["E"].sum()), "terms": [], "warnings": warn, "ph_test": [],
                "robust": cluster is not None}
    cph = CoxPHFitter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cph.fit(df, duration_col="T", event_col="E", **kwargs)
    except Exception as exc:  # lifelines' ConvergenceError (separation, too few events): said, not hidden
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warn.append(f"the model could not be fitted ({first}); no hazard ratio is reported")
        return {"n": int(len(df)), "events": int(df["E"].sum()), "terms": [], "warnings": warn, "ph_test": [],
                "robust": cluster is not None, "concordance": None}
    for w in caught:
        msg = str(w.message).strip().splitlines()[0]
        if "convergence" in msg.lower() or "collinear" in msg.lower() or "variance" in msg.lower():
            warn.append(f"lifelines: {msg}")
    s = cph.summary
    out_terms = []
    for k, t in used:
        r = s.loc[k]
        out_terms.append({"term": t.key, "label": t.label, "covariate": t.covariate,
                          "hr": _num(r["exp(coef)"]), "ci_low": _num(r["exp(coef) lower 95%"]),
                          "ci_high": _num(r["exp(coef) upper 95%"]), "p": _num(r["p"]),
                          "coef": _num(r["coef"]), "se": _num(r["se(coef)"])})
    ph = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = proportional_hazard_test(cph, df, time_transform="rank")
        for k, t in used:
            p = _num(test.summary.loc[k, "p"])
            ph.append({"term": t.key, "label": t.label, "p": p, "violated": p is not None and p < PH_ALPHA})
            if p is not None and p < PH_ALPHA:
                warn.append(f"proportional hazards doubtful for {t.label} (Schoenfeld residuals, p = {p:.3g}): "
                            "its hazard ratio is an average over follow-up; consider stratifying on it")
    except Exception as exc:  # a degenerate fit: say the check could not be made
        warn.append(f"the proportional-hazards check could not be computed: {exc}")
    return {"n": int(len(df)), "events": int(df["E"].sum()), "terms": out_terms,
            "concordance": _num(cph.concordance_index_), "robust": cluster is not None,
            "ph_test": ph, "warnings": warn}
