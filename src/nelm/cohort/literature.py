"""The centre's curves beside the published ones (:mod:`nelm.outcomes`).

Which published cohorts apply is decided exactly as for one patient's assessment
(:func:`nelm.outcomes.attach_outcomes`): for each patient's treatment option, the entries of
``knowledge/outcomes.yaml`` whose condition (with the trial's eligibility) holds, or, when
none does, the option's general entries whose eligibility holds — evaluated column-wise
with the same compiled conditions (:func:`nelm.outcomes.matching.matcher`). For a group of
patients, each published cohort of the chosen endpoint is listed with the share of the
group's patients it applies to; cohorts that apply to at least :data:`DRAW_SHARE` of them
(at most :data:`MAX_DRAWN`, the most applicable first) are drawn beside the centre's curve,
labelled as reconstructed (the published curves are reconstructed from reported medians
and rates, not from patient data).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

DRAW_SHARE = 0.25
MAX_DRAWN = 2


def match_exprs(kb: Any) -> list[pl.Expr]:
    from ..outcomes.matching import matcher

    return matcher(kb).exprs


def cohorts_shown(frame: pl.DataFrame, kb: Any) -> dict[str, np.ndarray]:
    """Per published cohort, the rows (patients) to whom it applies under their treatment."""
    from ..outcomes.matching import entry_column, load_spec, matcher

    spec = load_spec()
    names = matcher(kb).names
    n = frame.height
    shown: dict[str, np.ndarray] = {}
    treatment = frame["treatment"].to_numpy() if "treatment" in frame.columns else np.full(n, None)

    def hit(col: str | None) -> np.ndarray:
        if col is None:
            return np.ones(n, dtype=bool)
        return frame[col].fill_null(False).to_numpy().astype(bool)

    for option, entries in spec.options.items():
        rows = treatment == option
        if not rows.any():
            continue
        specific_any = np.zeros(n, dtype=bool)
        specific: list[tuple[str, np.ndarray]] = []
        for i, e in enumerate(entries):
            if e.when is not None:
                h = hit(names.get(entry_column(option, i))) & rows
                specific.append((e.cohort, h))
                specific_any |= h
        for cohort, h in specific:
            shown[cohort] = shown.get(cohort, np.zeros(n, dtype=bool)) | h
        for i, e in enumerate(entries):
            if e.when is None:
                h = hit(names.get(entry_column(option, i))) & rows & ~specific_any
                shown[e.cohort] = shown.get(e.cohort, np.zeros(n, dtype=bool)) | h
    return shown


def beside(frame: pl.DataFrame, group: pl.Series, kb: Any, endpoint: str) -> dict[str, list[dict[str, Any]]]:
    """Per group label, the published cohorts of ``endpoint`` that apply to its patients."""
    from ..outcomes import cohort_arms
    from ..outcomes.matching import load_spec

    spec = {c.id: c for c in load_spec().cohorts}
    arms = cohort_arms(kb)
    shown = cohorts_shown(frame, kb)
    out: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(group.drop_nulls().unique().to_list(), key=str):
        mask = (group == g).fill_null(False).to_numpy()
        size = int(mask.sum())
        items = []
        for cohort, rows in shown.items():
            if spec[cohort].endpoint != endpoint:
                continue
            k = int((rows & mask).sum())
            if not k:
                continue
            first = arms[cohort][0] if arms[cohort] else None
            items.append({
                "cohort": cohort, "title": spec[cohort].title,
                "source": first["source"] if first else None,
                "source_label": first["source_label"] if first else None,
                "patients": k, "share": k / size if size else 0.0,
                "arms": [{"label": a["label"], "arm": a["arm"], "median_months": a["median_months"],
                          "median_not_reached": a["median_not_reached"], "method": a["method"],
                          "curve": [list(p) for p in a["curve"]]} for a in arms[cohort]],
            })
        items.sort(key=lambda x: -x["share"])
        for i, it in enumerate(items):
            it["drawn"] = it["share"] >= DRAW_SHARE and i < MAX_DRAWN
        out[str(g)] = items
    return out
