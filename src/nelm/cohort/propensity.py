"""Propensity score, 1:1 nearest-neighbour matching with a caliper, and balance.

The score is the probability of the treated group given the covariates, from a logistic
regression (statsmodels ``Logit``, maximum likelihood). Matching is greedy 1:1 nearest
neighbour on the logit of the score, without replacement, treated patients taken in a
random order (seeded, so the same input gives the same pairs), within a caliper of
:data:`CALIPER_SD` standard deviations of the logit of the score (Austin 2011, the usual
choice; ``caliper_sd`` changes it). Balance is the standardized mean difference of every
term of the model before and after matching (|SMD| < 0.1 is the usual target).
Patients with an unknown covariate have no score and are not matched (counted).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .covariates import Term
from .table1 import smd_numeric, smd_share

CALIPER_SD = 0.2
BALANCE_LIMIT = 0.1


def propensity_scores(matrix: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    import statsmodels.api as sm

    X = sm.add_constant(matrix, has_constant="add")
    model = sm.Logit(treated.astype(float), X)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit(disp=0, maxiter=200)
    except Exception as exc:  # perfect separation, singular matrix: name it
        raise ValueError(f"the propensity model could not be fitted ({type(exc).__name__}: {exc}); "
                         "a covariate may separate the groups perfectly or repeat another") from exc
    ps = np.clip(res.predict(X), 1e-9, 1 - 1e-9)
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    info = {"model": "logistic regression (statsmodels Logit)", "converged": bool(res.mle_retvals.get("converged", True)),
            "fit_notes": notes,
            "pseudo_r2": float(res.prsquared), "scored": int(len(treated)), "scored_treated": int(treated.sum())}
    return ps, info


def greedy_match(logit: np.ndarray, treated: np.ndarray, caliper: float, seed: int = 0) -> list[tuple[int, int]]:
    """Pairs (treated index, control index): nearest unused control on ``logit`` within
    ``caliper``, treated taken in a seeded random order."""
    t_idx = np.nonzero(treated)[0]
    c_idx = np.nonzero(~treated)[0]
    order = np.argsort(logit[c_idx], kind="stable")
    c_sorted = c_idx[order]
    c_vals = logit[c_sorted]
    m = len(c_sorted)
    # next unused control to the right / left of a position (path-compressed pointers)
    right = np.arange(m + 1)
    left = np.arange(-1, m)  # left[j + 1] = j

    def find_right(j: int) -> int:
        root = j
        while right[root] != root:
            root = right[root]
        while right[j] != root:
            right[j], j = root, right[j]
        return root

    def find_left(j: int) -> int:  # j in -1..m-1, stored at j + 1
        root = j
        while left[root + 1] != root:
            root = left[root + 1]
        while left[j + 1] != root:
            left[j + 1], j = root, left[j + 1]
        return root

    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    for t in rng.permutation(t_idx):
        x = logit[t]
        pos = int(np.searchsorted(c_vals, x))
        r = find_right(pos) if pos <= m else m
        lft = find_left(pos - 1)
        best, dist = -1, np.inf
        if r < m and abs(c_vals[r] - x) < dist:
            best, dist = r, abs(c_vals[r] - x)
        if lft >= 0 and abs(c_vals[lft] - x) < dist:
            best, dist = lft, abs(c_vals[lft] - x)
        if best < 0 or dist > caliper:
            continue
        pairs.append((int(t), int(c_sorted[best])))
        right[best] = best + 1
        left[best + 1] = best - 1
    return pairs


def balance(matrix: np.ndarray, terms: list[Term], treated: np.ndarray, matched: np.ndarray,
            logit: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    columns = [(t.label, matrix[:, i]) for i, t in enumerate(terms)] + [("Logit of the propensity score", logit)]
    for label, x in columns:
        binary = set(np.unique(x).tolist()) <= {0.0, 1.0}

        def smd(mask_t: np.ndarray, mask_c: np.ndarray) -> float | None:
            a, b = x[mask_t], x[mask_c]
            if not len(a) or not len(b):
                return None
            return smd_share(float(a.mean()), float(b.mean())) if binary else smd_numeric(a, b)

        before = smd(treated, ~treated)
        after = smd(treated & matched, ~treated & matched)
        rows.append({"term": label, "binary": binary,
                     "treated_before": float(x[treated].mean()) if treated.any() else None,
                     "control_before": float(x[~treated].mean()) if (~treated).any() else None,
                     "treated_after": float(x[treated & matched].mean()) if (treated & matched).any() else None,
                     "control_after": float(x[~treated & matched].mean()) if (~treated & matched).any() else None,
                     "smd_before": before, "smd_after": after,
                     "balanced_after": after is not None and abs(after) < BALANCE_LIMIT})
    return rows
