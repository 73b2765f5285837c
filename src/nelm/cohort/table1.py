"""Table 1: characteristics by group, with standardized mean differences.

Numbers: mean (SD) and median [IQR]; categories (and numbers with few distinct values, such
as ECOG): n (%) per value, the percentages of the patients whose value is known; unknown is
its own line (n), never left out. The SMD of a number is the difference of means over the
pooled SD (sqrt of the mean of the two variances); of a category value, the difference of
proportions over sqrt of the mean of p(1-p) (Austin 2009). With more than two groups the
largest SMD over the pairs is shown, and the table says so. |SMD| > 0.1 is the usual mark
of imbalance.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl

from .covariates import Covariate, column
from .registry import value_label

DEFAULT = ("age_years", "ecog", "primary.site", "classification.who_grade", "classification.category",
           "classification.frilling_type", "classification.burden_band", "liver.timing", "symptomatic",
           "derived.hormonal_syndrome", "derived.extrahepatic_disease")
FEW_VALUES = 6


def smd_numeric(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return 0.0 if pooled == 0 else float((np.mean(a) - np.mean(b)) / pooled)


def smd_share(p: float, q: float) -> float | None:
    pooled = np.sqrt((p * (1 - p) + q * (1 - q)) / 2)
    return 0.0 if pooled == 0 else float((p - q) / pooled)


def _max_abs(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return None if not got else max(got, key=abs)


def table1(frame: pl.DataFrame, group: pl.Series, covariates: list[Covariate],
           order: list[str] | None = None) -> dict[str, Any]:
    """Rows of the table; ``group`` is the group label per row (nulls are not in any group),
    the columns in ``order`` (default: sorted)."""
    groups = order or sorted(group.drop_nulls().unique().to_list(), key=str)
    masks = {g: (group == g).fill_null(False).to_numpy() for g in groups}
    rows: list[dict[str, Any]] = [{"variable": "Patients", "level": None, "kind": "count",
                                   "values": {str(g): f"{int(m.sum())}" for g, m in masks.items()}, "smd": None}]
    for c in covariates:
        s = column(frame, c)
        label = c.label
        distinct = s.drop_nulls().n_unique()
        numeric = s.dtype.is_numeric() and s.dtype != pl.Boolean and c.level is None and distinct > FEW_VALUES
        if numeric:
            x = s.cast(pl.Float64).to_numpy()
            vals, pairs = {}, []
            for g, m in masks.items():
                v = x[m & ~np.isnan(x)]
                vals[str(g)] = ("—" if not len(v) else
                                f"{np.mean(v):.1f} ({np.std(v, ddof=1) if len(v) > 1 else 0:.1f}); "
                                f"{np.median(v):.1f} [{np.percentile(v, 25):.1f}–{np.percentile(v, 75):.1f}]")
            for g1, g2 in itertools.combinations(groups, 2):
                a, b = x[masks[g1]], x[masks[g2]]
                pairs.append(smd_numeric(a[~np.isnan(a)], b[~np.isnan(b)]))
            rows.append({"variable": label, "level": "mean (SD); median [IQR]", "kind": "number",
                         "values": vals, "smd": _max_abs(pairs)})
            unknown = s.is_null().to_numpy()
            rows.append({"variable": label, "level": "unknown", "kind": "unknown",
                         "values": {str(g): str(int((unknown & m).sum())) for g, m in masks.items()}, "smd": None})
        else:
            levels = sorted(s.drop_nulls().unique().to_list(), key=lambda v: (str(type(v)), v))
            known = {g: int((m & s.is_not_null().to_numpy()).sum()) for g, m in masks.items()}
            rows.append({"variable": label, "level": None, "kind": "header", "values": {}, "smd": None})
            for lv in levels:
                hit = (s == lv).fill_null(False).to_numpy()
                vals, shares = {}, {}
                for g, m in masks.items():
                    k = int((hit & m).sum())
                    shares[g] = k / known[g] if known[g] else None
                    vals[str(g)] = f"{k} ({100 * shares[g]:.1f} %)" if known[g] else "0"
                pairs = [smd_share(shares[a], shares[b]) for a, b in itertools.combinations(groups, 2)
                         if shares[a] is not None and shares[b] is not None]
                rows.append({"variable": label, "level": value_label(c.name, lv), "kind": "level",
                             "values": vals, "smd": _max_abs(pairs)})
            unknown = (s.is_null()).to_numpy()
            rows.append({"variable": label, "level": "unknown", "kind": "unknown",
                         "values": {str(g): str(int((unknown & m).sum())) for g, m in masks.items()}, "smd": None})
    return {"groups": [str(g) for g in groups], "rows": rows,
            "smd_note": "SMD: standardized mean difference" + (
                "; with more than two groups, the largest over the pairs of groups" if len(groups) > 2 else "")}
